"""Text edits (``robustrec perturb text``): keyword stuffing, field removal and swap on item records —
the edit rules and the Perturbation contract on hand-made records with a stand-in encoder, then the
CLI end to end on real lfm2k (MiniLM text features without a sidecar) and on a small real hm subset
whose text features `features extract` made (the features.json path)."""

import json
import math
import zlib

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, cli_code as _cli, run_cli
from dataset_helpers import hm_subset_texts_and_purchases
from robustrec.features.text import ItemTextEmbeddings
from robustrec.data.content import build_item_text
from robustrec.data.dataset import InteractionData, interactions_matrix
from robustrec.errors import ConfigError, DataError
from robustrec.models import build_model
from robustrec.perturbations.caption import MemoTextEncoder
from robustrec.perturbations.text_edit import (ItemRecords, TextEdit, drop_field, keyword_ranking, stuff_keywords)
from robustrec.studies.text_study import check_flags, encoder_check

RECORDS = [
    {"itemID": 0, "title": "Red Dress", "categories": ["Dress", "red", "Summer"], "description": "A light dress."},
    {"itemID": 1, "title": "Blue Jeans", "categories": ["Trousers", "Blue"], "description": "Denim. Slim fit."},
    {"itemID": 2, "title": "Red Scarf", "categories": ["Red", "accessories", "winter"]},
    {"itemID": 3, "categories": ["red", "blue", "Summer", "sale"]},
    {"itemID": 4, "title": "Tote", "categories": "accessories", "description": "Canvas bag."},
    {"itemID": 5, "title": "Cap", "categories": ["Blue", "summer", "hats"], "description": "Cotton cap."},
]
N_ITEMS = 10  # items 6..9 have no record: no text, never chosen


class HashEncoder:
    """A stand-in sentence encoder: a fixed pseudo-random 8-d row per distinct text; counts calls."""

    dim, encoder_id = 8, "hash-encoder"

    def __init__(self):
        self.encoded = 0

    def encode(self, texts):
        self.encoded += len(texts)
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)


@pytest.fixture()
def items():
    return ItemRecords.from_mapping({r["itemID"]: r for r in RECORDS}, N_ITEMS)


@pytest.fixture()
def setup(items):
    """(items, encoder, clean text rows, tiny data, vbpr on text+image) — rows of items without text
    are the mean row, as `features extract` fills them."""
    encoder = HashEncoder()
    clean = encoder.encode(list(items.texts))
    clean[~items.has_text] = clean[items.has_text].mean(axis=0)
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(6), 4)
    train = interactions_matrix(users, rng.integers(0, N_ITEMS, len(users)), 6, N_ITEMS)
    test = interactions_matrix(np.arange(6), (np.arange(6) * 3 + 1) % N_ITEMS, 6, N_ITEMS)
    data = InteractionData("tiny", 6, N_ITEMS, train, test, test,
                           {"image": rng.standard_normal((N_ITEMS, 3)).astype(np.float32), "text": clean})
    model = build_model("vbpr", data, seed=0).eval()
    return items, encoder, clean, data, model


def _edit(setup, edit, rate, **kw):
    items, encoder, clean, _, _ = setup
    return TextEdit(edit, rate, items, ItemTextEmbeddings(MemoTextEncoder(encoder), list(items.texts), clean), **kw)


def _scores(model):
    with torch.no_grad():
        return model.full_scores(torch.arange(6))


# --- the edit rules ----------------------------------------------------------------------------------
def test_keyword_ranking_counts_items_case_insensitively_ties_by_string():
    ranking = keyword_ranking(RECORDS)
    # blue, red, summer: 3 items each (tie: string order); shown in their most frequent spelling
    assert ranking == [("Blue", 3), ("red", 3), ("Summer", 3), ("accessories", 2), ("Dress", 1), ("hats", 1),
                       ("sale", 1), ("Trousers", 1), ("winter", 1)]
    # counted once per item; spelling tie: string order
    assert keyword_ranking([{"categories": ["Rock", "rock", " ROCK "]}]) == [("ROCK", 1)]


def test_stuffing_takes_the_top_tags_the_item_lacks_and_never_duplicates():
    tags = [t for t, _ in keyword_ranking(RECORDS)]
    stuffed = stuff_keywords(RECORDS[0], tags, 2)
    assert stuffed["categories"] == ["Blue", "accessories", "Dress", "red", "Summer"]  # in front, own tags kept
    assert stuffed["title"] == "Red Dress" and RECORDS[0]["categories"] == ["Dress", "red", "Summer"]  # a copy
    assert build_item_text(stuffed) == "Red Dress. Blue, accessories, Dress, red, Summer. A light dress."
    assert stuff_keywords(RECORDS[3], tags, 3)["categories"][:3] == ["accessories", "Dress", "hats"]
    assert stuff_keywords({"categories": "Blue"}, tags, 1)["categories"] == ["red", "Blue"]  # string field
    everything = {"categories": tags}
    assert stuff_keywords(everything, tags, 2)["categories"] == tags  # nothing left to add
    for seed in range(20):  # pool: k distinct tags from the top N the item lacks, seeded
        drawn = stuff_keywords(RECORDS[3], tags, 2, pool=6, rng=np.random.default_rng(seed))["categories"][:2]
        assert len(set(drawn)) == 2 and set(drawn) <= {"accessories", "Dress", "hats"}
        again = stuff_keywords(RECORDS[3], tags, 2, pool=6, rng=np.random.default_rng(seed))["categories"][:2]
        assert drawn == again


def test_field_removal_keeps_the_other_fields():
    dropped = drop_field(RECORDS[1], "description")
    assert build_item_text(dropped) == "Blue Jeans. Trousers, Blue" and "description" in RECORDS[1]
    assert build_item_text(drop_field(RECORDS[3], "categories")) == ""  # text was only tags: empty


def test_eligible_items_and_exact_nested_share(items):
    assert list(np.flatnonzero(items.has_text)) == [0, 1, 2, 3, 4, 5]
    assert list(items.eligible("keywords")) == list(items.eligible("swap")) == [0, 1, 2, 3, 4, 5]
    assert list(items.eligible("drop-description")) == [0, 1, 4, 5]
    assert list(items.eligible("drop-categories")) == [0, 1, 2, 3, 4, 5]
    for seed in range(10):
        half = TextEdit("drop-description", 0.5, items).chosen(seed)
        assert len(half) == 2 and set(half) <= {0, 1, 4, 5}  # floor(0.5 * 4 + 0.5)
        low, high = TextEdit("keywords", 0.25, items).chosen(seed), TextEdit("keywords", 0.75, items).chosen(seed)
        assert set(low) <= set(high)  # nested across rates
    assert len(TextEdit("keywords", 1 / 12, items).chosen(0)) == 1  # floor(6/12 + 0.5)
    assert len(TextEdit("keywords", 0.08, items).chosen(0)) == 0


def test_swap_is_a_derangement_of_the_chosen_texts(items):
    for seed in range(10):
        edit = TextEdit("swap", 1.0, items)
        texts = edit.edited_texts(seed)
        assert sorted(texts) == [0, 1, 2, 3, 4, 5]  # every text differs: a derangement, no fixed point
        assert sorted(texts.values()) == sorted(items.texts[:6])  # the multiset of texts is kept
    assert TextEdit("swap", 1 / 6, items).edited_texts(0) == {}  # one chosen item cannot be deranged


def test_keyword_depth_and_pool(items):
    assert items.keyword_depth(2) == 5  # item 3 lacks only accessories, Dress among the first 5
    edit = TextEdit("keywords", 1.0, items, keywords=2, keyword_pool=4)
    assert edit.parameters() == {"edit": "keywords", "rate": 1.0, "keywords": 2, "keyword_pool": 4}
    texts = edit.edited_texts(3)
    assert texts == edit.edited_texts(3) and texts != edit.edited_texts(4)


# --- the Perturbation contract ---------------------------------------------------------------------
@pytest.mark.parametrize("edit", ["keywords", "drop-description", "drop-categories", "swap"])
def test_rate_zero_identity_determinism_input_untouched(setup, edit):
    _, encoder, clean, _, model = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    buffers = {m: t.clone() for m, t in model.features().items()}
    scores = _scores(model)
    zero = _edit(setup, edit, 0.0)
    assert torch.equal(_scores(zero.apply(model, 5)).view(torch.int32), scores.view(torch.int32))
    assert zero.trial_record(5) == {"changed_items": 0, "items": []}
    perturbation = _edit(setup, edit, 0.5)
    a, b = perturbation.apply(model, 5), perturbation.apply(model, 5)
    assert np.array_equal(a.feat_text.numpy(), b.feat_text.numpy())
    assert not torch.equal(_scores(a), scores)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(buffers[m], t) for m, t in model.features().items())
    assert a.feat_text.data_ptr() != model.feat_text.data_ptr()  # a new matrix, never written in place
    assert a.feat_image.data_ptr() == model.feat_image.data_ptr()


@pytest.mark.parametrize("edit", ["keywords", "drop-description", "drop-categories", "swap"])
def test_only_edited_rows_change_and_records_say_which(setup, edit):
    items, encoder, clean, _, model = setup
    perturbation = _edit(setup, edit, 1.0)
    for seed in range(3):
        texts = perturbation.edited_texts(seed)
        rows = perturbation.apply(model, seed).feat_text.numpy()
        changed = np.flatnonzero((rows != clean).any(axis=1))
        assert list(changed) == sorted(texts)
        assert np.array_equal(rows[changed], HashEncoder().encode([texts[i] for i in changed]))
        assert perturbation.trial_record(seed) == {"changed_items": len(texts), "items": sorted(texts)}


def test_edited_texts_are_encoded_once_across_checkpoints(setup):
    items, encoder, clean, _, model = setup
    perturbation, before = _edit(setup, "keywords", 1.0), encoder.encoded
    perturbation.apply(model, 1)
    once = encoder.encoded
    perturbation.apply(model, 1)  # a second checkpoint, same trial seed: nothing re-encoded
    assert once - before == 6 and encoder.encoded == once


@pytest.mark.parametrize("model, reason", [
    ("bprmf", "uses no item features"),
    ("bm3", "item features do not enter its scores at inference"),
    ("vbpr-image", "does not use the text modality"),
    ("vbpr", None),
])
def test_unaffected_reasons(setup, model, reason):
    _, _, _, data, _ = setup
    name, _, rest = model.partition("-")
    built = build_model(name, data, seed=0, modalities=[rest] if rest else None).eval()
    perturbation = _edit(setup, "swap", 1.0)
    assert perturbation.unaffected_reason(built) == reason
    if reason is not None:
        assert torch.equal(_scores(perturbation.apply(built, 0)), _scores(built))


def test_bad_parameters_are_config_errors(items):
    for make, match in ((lambda: TextEdit("stuff", 0.1, items), "choose one of keywords, drop-description"),
                        (lambda: TextEdit("swap", 1.5, items), "--rate must be in"),
                        (lambda: TextEdit("keywords", 0.1, items, keywords=0), "--keywords must be >= 1"),
                        (lambda: TextEdit("keywords", 0.1, items, keywords=3, keyword_pool=2), "--keyword-pool"),
                        (lambda: check_flags("swap", 3, None), "--keywords applies to --edit keywords only")):
        with pytest.raises(ConfigError, match=match):
            make()
    assert check_flags("keywords", None, None) == (3, None)


def test_encoder_check_refuses_features_of_another_encoder(setup):
    items, encoder, clean, _, _ = setup
    assert encoder_check(encoder, items, clean)["min_cosine"] > 0.999
    with pytest.raises(DataError, match="stored text features were not made by hash-encoder"):
        encoder_check(encoder, items, clean[::-1].copy())


# --- real lfm2k: MiniLM text features without a sidecar ---------------------------------------------
@pytest.fixture(scope="module")
def lfm(shared_datasets, tmp_path_factory):
    """1-epoch VBPR on lfm2k text+audio, its MG twin, and BPRMF (ID-only)."""
    ck = tmp_path_factory.mktemp("text-lfm") / "ck"
    for extra in (["--model", "vbpr", "--modalities", "text,audio"], ["--model", "vbpr", "--modalities", "text,audio",
                                                                        "--mg"], ["--model", "bprmf"]):
        assert _cli("train", *extra, "--dataset", "lfm2k", "--data-dir", shared_datasets, "--epochs", "1", "-q",
                    "--threads", "1", "--checkpoint-dir", ck) == 0
    return ck



def _text(capsys, ck, runs, *flags, report_dir):
    return run_cli(capsys, "perturb", "text", *(ck / r for r in runs), *flags, "--report-dir", report_dir, "-q",
                   "--threads", "1")


PAIR = ("vbpr-lfm2k", "vbpr-lfm2k-mg")


def test_lfm2k_keyword_stuffing_end_to_end(lfm, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _text(capsys, lfm, PAIR, "--edit", "keywords", "--rate", "0.05", "--keywords", "3",
                           "--repeats", "2", report_dir=tmp_path / "r")
    assert code == 0, err
    assert "keyword pool (items carrying each tag): rock (662), alternative (572), pop (512)" in out
    assert "rate 0.05: items changed per trial [71, 71]" in out  # floor(0.05 * 1425 + 0.5)
    (path,) = (tmp_path / "r").glob("text-keywords-lfm2k-*.json")
    report = json.loads(path.read_text())
    settings = report["settings"]
    assert report["kind"] == "text" and settings["strength_name"] == "rate" and settings["title"] == "text: keywords"
    assert settings["keyword_pool"][:2] == [["rock", 662], ["alternative", 572]]
    assert settings["eligible_items"] == 1425 and settings["encoder_source"].startswith("--text-encoder")
    assert settings["encoder_check"]["min_cosine"] > 0.999 and settings["reencoding"]["edited_texts_encoded"] <= 142
    entries = {e["name"]: e for e in report["checkpoints"]}
    (level,) = entries["vbpr-lfm2k"]["levels"]
    assert math.isfinite(level["summary"]["recall@5"]["drop_pct"])
    twin = entries["vbpr-lfm2k-mg"]["levels"][0]
    assert [t["items"] for t in level["trials"]] == [t["items"] for t in twin["trials"]]
    assert report["mg_gains"]


def test_lfm2k_drop_categories_and_id_only_model(lfm, tmp_path, capsys):
    code, out, err = _text(capsys, lfm, (*PAIR, "bprmf-lfm2k"), "--edit", "drop-categories", "--rate", "0.1",
                           "--repeats", "2", "--no-text-cache", report_dir=tmp_path / "r")
    assert code == 0, err
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    entries = {e["name"]: e for e in report["checkpoints"]}
    assert entries["bprmf-lfm2k"]["unaffected"] == "unaffected by construction: uses no item features"
    (level,) = entries["vbpr-lfm2k"]["levels"]
    assert [t["changed_items"] for t in level["trials"]] == [143, 143]  # lfm2k text = tags only: all become ""
    assert math.isfinite(level["summary"]["recall@5"]["drop_pct"])
    assert report["settings"]["reencoding"]["edited_texts_encoded"] == 1  # the empty text, once (no text cache)
    assert report["settings"]["text_cache"] is None
    code, out, err = _text(capsys, lfm, ["bprmf-lfm2k"], "--edit", "swap", "--repeats", "1",
                           report_dir=tmp_path / "id")
    assert code == 0 and "all are unaffected by construction" in " ".join(out.split()), err


def test_lfm2k_warm_text_cache_skips_the_encoder_and_leaves_the_shared_data_alone(lfm, shared_datasets, tmp_path,
                                                                                     capsys, monkeypatch):
    from pathlib import Path

    from robustrec.features.text import SentenceTextEncoder

    folder = Path(shared_datasets) / "lfm2k"
    before = {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}
    reports = []
    for name in ("cold", "warm"):
        if name == "warm":
            monkeypatch.setattr(SentenceTextEncoder, "_load", lambda self: pytest.fail("the warm run loaded MiniLM"))
        code, out, err = _text(capsys, lfm, PAIR[:1], "--edit", "keywords", "--rate", "0.05", "--repeats", "2",
                               "--cache-dir", tmp_path / "c", report_dir=tmp_path / name)
        assert code == 0, err
        assert ("from the text cache" in " ".join(out.split())) == (name == "warm"), out
        reports.append(json.loads(next((tmp_path / name).glob("*.json")).read_text()))
    cold, warm = reports
    assert {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")} == before
    assert cold["settings"]["reencoding"]["edited_texts_encoded"] > 0 and cold["settings"]["text_cache"]["encoder_loaded"]
    assert warm["settings"]["reencoding"]["edited_texts_encoded"] == 0
    assert warm["settings"]["text_cache"]["texts_encoded"] == 0 and not warm["settings"]["text_cache"]["encoder_loaded"]
    assert warm["settings"]["text_cache"]["file"].startswith(str(tmp_path / "c" / "text-embeddings"))
    assert warm["settings"]["encoder_check"] == cold["settings"]["encoder_check"]
    assert warm["checkpoints"][0]["levels"] == cold["checkpoints"][0]["levels"]


@pytest.mark.parametrize("runs, flags, fragment", [
    (PAIR, ["--edit", "stuffing"], "unknown --edit 'stuffing'; choose one of keywords, drop-description, "
                                   "drop-categories, swap"),
    (PAIR, ["--edit", "swap", "--rate", "1.5"], "--rate must be in [0, 1]"),
    (PAIR, ["--edit", "swap", "--rate", "-0.1"], "--rate must be in [0, 1]"),
    (PAIR, ["--edit", "keywords", "--keywords", "0"], "--keywords must be >= 1"),
    (PAIR, ["--edit", "keywords", "--keywords", "3", "--keyword-pool", "2"], "--keyword-pool must be >= --keywords"),
    (PAIR, ["--edit", "swap", "--keywords", "2"], "--keywords applies to --edit keywords only"),
    (PAIR, ["--edit", "drop-description"], "no item of dataset 'lfm2k' has a description (its records have artist, "
                                           "categories)"),
    (PAIR, ["--edit", "swap", "--repeats", "0"], "--repeats must be >= 1"),
])
def test_bad_input_is_one_line_and_writes_nothing(lfm, tmp_path, capsys, runs, flags, fragment):
    assert_one_line_error(*_text(capsys, lfm, runs, *flags, report_dir=tmp_path / "r"), fragment)
    assert not (tmp_path / "r").exists()


# --- a small real hm subset: text features by `features extract` (features.json) -------------------
HM_ITEMS = 60


@pytest.fixture(scope="module")
def hm(shared_datasets, tmp_path_factory):
    """hm's first 60 articles (real purchases, real texts), MiniLM text features extracted the way a
    user does; 1-epoch VBPR on text and BPRMF. Beside it: the same data without item texts, and
    without text features."""
    root = tmp_path_factory.mktemp("text-hm")
    folder = root / "data" / "hm"
    folder.mkdir(parents=True)
    texts, inter = hm_subset_texts_and_purchases(shared_datasets, HM_ITEMS)
    for where, with_texts in ((folder, True), (root / "bare" / "hm", False), (root / "nofeat" / "hm", True)):
        where.mkdir(parents=True, exist_ok=True)
        (where / "hm.inter").write_text(inter)
        if with_texts:
            (where / "hm.items.jsonl").write_text(texts, encoding="utf-8")
    assert _cli("features", "extract", "--dataset", "hm", "--data-dir", root / "data", "--modalities", "text",
                "--threads", "1", "-q") == 0
    (root / "bare" / "hm" / "text_feat.npy").symlink_to(folder / "text_feat.npy")
    ck = root / "ck"
    for extra in (["--model", "vbpr", "--modalities", "text"], ["--model", "bprmf"]):
        assert _cli("train", *extra, "--dataset", "hm", "--data-dir", root / "data", "--epochs", "1", "-q",
                    "--threads", "1", "--checkpoint-dir", ck) == 0
    return root, ck


def test_hm_drop_description_uses_the_sidecar_encoder(hm, tmp_path, capsys):
    root, ck = hm
    code, out, err = _text(capsys, ck, ["vbpr-hm"], "--edit", "drop-description", "--rate", "0,0.5", "--repeats", "2",
                           report_dir=tmp_path / "r")
    assert code == 0, err
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    settings = report["settings"]
    with open(root / "data" / "hm" / "hm.items.jsonl", encoding="utf-8") as handle:
        described = sum(1 for line in handle if json.loads(line).get("description"))
    assert settings["eligible_items"] == described and settings["items_with_text"] < HM_ITEMS
    assert settings["encoder_source"].endswith("features.json") and settings["encoder_check"]["min_cosine"] > 0.999
    zero, level = report["checkpoints"][0]["levels"]
    assert all(t["metrics"] == report["checkpoints"][0]["clean"] for t in zero["trials"])  # rate 0: identity
    assert [t["changed_items"] for t in level["trials"]] == [math.floor(0.5 * described + 0.5)] * 2
    assert f"eligible items: {described} of {settings['items_with_text']} with a text ({HM_ITEMS} items)" in \
        " ".join(out.split())


@pytest.mark.parametrize("where, runs, flags, fragment", [
    ("bare", ["vbpr-hm"], ["--edit", "swap"], "dataset 'hm' has no item texts"),
    ("nofeat", ["bprmf-hm"], ["--edit", "swap"], "dataset 'hm' has no text features (text_feat.npy)"),
    ("data", ["vbpr-hm"], ["--edit", "swap", "--text-encoder", "paraphrase-MiniLM-L3-v2"], "differs from the text "
                                                                                         "encoder recorded in"),
])
def test_hm_bad_input(hm, tmp_path, capsys, where, runs, flags, fragment):
    root, ck = hm
    assert_one_line_error(*_text(capsys, ck, runs, *flags, "--data-dir", root / where, report_dir=tmp_path / "r"),
                          fragment)
    assert not (tmp_path / "r").exists()
