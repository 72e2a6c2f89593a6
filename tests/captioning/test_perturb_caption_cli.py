"""`robustrec perturb caption` end to end: tiny dataset with images and texts, real MiniLM features,
captions from a tiny random BLIP-2, tiny trained models, report, compare, and bad input."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from cli_helpers import assert_one_line_error, cli_code, run_cli  # noqa: E402

from conftest import write_png  # noqa: E402

N_USERS, N_ITEMS = 40, 60
COLOURS = ("red", "blue", "green", "yellow")
THINGS = ("bottle", "blanket", "rattle", "bib", "stroller", "teether")


def _write_dataset(folder: Path) -> None:
    """tiny.inter (6 train, 1 valid, 1 test per user), images/, tiny.items.jsonl, MiniLM text_feat.npy."""
    from robustrec.features.text import SentenceTextEncoder
    from robustrec.data.content import build_item_text

    (folder / "images").mkdir(parents=True)
    labels = [0] * 6 + [1, 2]
    rows = ["userID\titemID\tx_label"] + [f"{u}\t{(u + 3 * j) % N_ITEMS}\t{labels[j]}"
                                          for u in range(N_USERS) for j in range(8)]
    (folder / "tiny.inter").write_text("\n".join(rows) + "\n")
    records = []
    for i in range(N_ITEMS):
        colour, thing = COLOURS[i % 4], THINGS[i % 6]
        write_png(folder / "images" / f"{i}.png", (60 * (i % 4), 40 * (i % 6), 200), size=32)
        records.append({"itemID": i, "title": f"{colour.title()} {thing}", "brand": f"Brand{i % 3}",
                        "categories": ["Baby", thing.title()], "description": f"A {colour} {thing}. Washable."})
    (folder / "tiny.items.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    texts = [build_item_text(r) for r in records]
    np.save(folder / "text_feat.npy", SentenceTextEncoder().encode(texts))
    np.save(folder / "image_feat.npy", np.random.default_rng(0).standard_normal((N_ITEMS, 8)).astype(np.float32))


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_blip2_dir):
    """(data dir, checkpoint paths, captioner id) shared by the tests below."""
    root = tmp_path_factory.mktemp("caption-e2e")
    data_dir = root / "data"
    _write_dataset(data_dir / "tiny")

    def call(*args):
        assert cli_code(*args) == 0, args

    blip2 = _words_only_blip2(tiny_blip2_dir, root / "tiny-blip2-words")
    call("captions", "generate", "--dataset", "tiny", "--data-dir", data_dir, "--checkpoint", blip2,
         "--device", "cpu", "--batch-size", "8", "--max-new-tokens", "4")
    ckpt = root / "ckpt"
    runs = []
    for model, mg in (("vbpr", False), ("vbpr", True), ("lightgcn", False)):
        name = f"{model}-tiny" + ("-mg" if mg else "")
        call("train", "--model", model, "--dataset", "tiny", "--data-dir", data_dir, "--epochs", "3",
             "--batch-size", "64", "--lr", "0.01", "--checkpoint-dir", ckpt, "--name", name, "-q", "--mg" if mg else "--no-mg")
        runs.append(ckpt / name)
    return data_dir, runs, f"blip2:{blip2.name}"


def _words_only_blip2(source: Path, folder: Path) -> Path:
    """The tiny random BLIP-2 with the output rows of its special tokens zeroed: left alone it tends
    to emit only <s>, i.e. empty captions (and empty captions are never injected)."""
    import torch
    from transformers import Blip2ForConditionalGeneration

    shutil.copytree(source, folder)
    model = Blip2ForConditionalGeneration.from_pretrained(folder)
    with torch.no_grad():
        weight = model.get_output_embeddings().weight
        weight[:4] = 0  # <pad> <s> </s> <unk>: logit 0, below the best word's
        weight[model.config.image_token_index] = 0
    model.save_pretrained(folder)
    return folder


def _one_line_error(result, fragment, report_dir):
    """A one-line refusal that wrote no report."""
    assert_one_line_error(*result, fragment)
    assert not report_dir.exists() or not list(report_dir.iterdir())


def test_perturb_caption_report_and_compare(world, tmp_path, capsys, monkeypatch):
    data_dir, runs, captioner = world
    monkeypatch.setenv("COLUMNS", "220")
    code, out, err = run_cli(capsys, "perturb", "caption", *runs, "--captioner", captioner, "--rate", "0,0.5",
                             "--repeats", "2", "--report-dir", tmp_path, "--csv", "-q")
    assert code == 0, err
    (path,) = tmp_path.glob("caption-tiny-*.json")
    report = json.loads(path.read_text())
    assert report["kind"] == "caption" and report["settings"]["strength_name"] == "rate"
    assert report["settings"]["captioner"] == captioner and report["settings"]["position"] == "random-sentence"
    assert report["settings"]["encoder_check"]["mean_cosine"] > 0.99
    vbpr, vbpr_mg, lightgcn = report["checkpoints"]
    zero, half = vbpr["levels"]
    assert all(t["metrics"] == vbpr["clean"] and t["changed_items"] == 0 for t in zero["trials"])
    changed = [t["changed_items"] for t in half["trials"]]
    assert all(0 < c <= report["settings"]["items_with_caption"] for c in changed)
    assert [t["changed_items"] for t in vbpr_mg["levels"][1]["trials"]] == changed
    assert lightgcn["levels"] == [] and lightgcn["unaffected"].startswith("unaffected by construction")
    assert report["mg_gains"]
    assert "unaffected by construction" in out and "items changed per trial" in out
    code, out, err = run_cli(capsys, "compare", path)
    assert code == 0, err
    assert "caption on tiny" in out and "Mirror Gradient gain" in out and "unaffected" in out


@pytest.mark.parametrize("flags, fragment", [
    (["--rate", "1.5"], "--rate must be in [0, 1]"),
    (["--rate", "-0.01"], "--rate must be in [0, 1]"),
    (["--position", "middle"], "--position must be one of"),
    (["--captioner", "blip2:someone-else"], "robustrec captions generate"),
])
def test_bad_flags(world, tmp_path, capsys, flags, fragment):
    _, runs, captioner = world
    args = ["--captioner", captioner, *flags] if "--captioner" not in flags else flags
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], *args, "--report-dir", tmp_path, "-q"),
                    fragment, tmp_path)


def test_cache_of_another_captioner_or_dataset(world, tmp_path, capsys):
    from robustrec.captioning.cache import CaptionCache

    data_dir, runs, captioner = world
    cache = next((data_dir / "tiny" / "captions").glob("*.json"))
    reports = tmp_path / "reports"
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captions", cache, "--captioner",
                            "blip2:other", "--report-dir", reports, "-q"), "made by captioner", reports)
    other = tmp_path / "other.json"
    payload = json.loads(cache.read_text())
    CaptionCache(other, captioner, "elsewhere", payload["fingerprint"]).flush()
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captions", other, "--captioner", captioner,
                            "--report-dir", reports, "-q"), "is for dataset 'elsewhere'", reports)
    CaptionCache(other, captioner, "tiny", "sha-of-older-data").flush()
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captions", other, "--captioner", captioner,
                            "--report-dir", reports, "-q"), "fingerprint mismatch", reports)


def test_missing_item_text_and_images(world, tmp_path, capsys):
    data_dir, runs, captioner = world
    folder = data_dir / "tiny"
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(folder / "tiny.items.jsonl", moved / "tiny.items.jsonl")
    try:
        _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captioner", captioner,
                                "--report-dir", tmp_path / "r", "-q"), "tiny.items.jsonl not found", tmp_path / "r")
    finally:
        shutil.move(moved / "tiny.items.jsonl", folder / "tiny.items.jsonl")
    shutil.move(folder / "images", moved / "images")
    try:
        _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captioner", "blip2:not-generated",
                                "--report-dir", tmp_path / "r", "-q"), "no item images", tmp_path / "r")
    finally:
        shutil.move(moved / "images", folder / "images")


def test_encoder_dimension_mismatch(world, tmp_path, capsys, monkeypatch):
    from robustrec.features.text import SentenceTextEncoder

    _, runs, captioner = world
    monkeypatch.setattr(SentenceTextEncoder, "dim", property(lambda self: 768))
    # an empty text cache: rows cached by earlier tests come from the real (384-d) encoder, whose
    # identity the patch does not change, and would give the width without asking the encoder
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captioner", captioner, "--report-dir",
                            tmp_path / "r", "--cache-dir", tmp_path / "c", "-q"),
                    "768-d vectors but the models' text features are 384-d", tmp_path / "r")
    assert not (tmp_path / "c").exists()


def test_checkpoints_on_different_data(world, tmp_path, capsys):
    _, runs, captioner = world
    other = tmp_path / "other-data"
    shutil.copytree(runs[1], other)
    meta = json.loads((other / "data.json").read_text())
    meta.update(fingerprint="0123456789abcdef", interactions_fingerprint="0123456789abcdef")
    (other / "data.json").write_text(json.dumps(meta))
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], other, "--captioner", captioner,
                            "--report-dir", tmp_path / "r", "-q"), "different data", tmp_path / "r")


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and mtime."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def _caption_report(capsys, runs, captioner, report_dir, *flags):
    code, out, err = run_cli(capsys, "perturb", "caption", *runs, "--captioner", captioner, "--rate", "0.5",
                             "--repeats", "2", "--report-dir", report_dir, "-q", *flags)
    assert code == 0, err
    (path,) = report_dir.glob("caption-tiny-*.json")
    return json.loads(path.read_text()), out


def test_warm_text_cache_reproduces_the_cold_report_without_loading_the_encoder(world, tmp_path, capsys,
                                                                                 monkeypatch):
    from robustrec.features.text import SentenceTextEncoder

    data_dir, runs, captioner = world
    before = _tree(data_dir)
    for path in [data_dir, *data_dir.rglob("*")]:  # a read-only data dir (root ignores modes; the tree check does not)
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        cold, _ = _caption_report(capsys, runs[:2], captioner, tmp_path / "cold", "--cache-dir", tmp_path / "c")
        monkeypatch.setattr(SentenceTextEncoder, "_load", lambda self: pytest.fail("the warm run loaded MiniLM"))
        warm, _ = _caption_report(capsys, runs[:2], captioner, tmp_path / "warm", "--cache-dir", tmp_path / "c")
    finally:
        for path in [data_dir, *data_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert _tree(data_dir) == before  # nothing written into the data folder
    (cache_file,) = (tmp_path / "c" / "text-embeddings").iterdir()
    assert cold["settings"]["text_cache"]["file"] == warm["settings"]["text_cache"]["file"] == str(cache_file)
    distinct = cold["settings"]["reencoding"]["distinct_texts"]
    assert cold["settings"]["text_cache"]["texts_encoded"] == distinct > 16  # edited texts + the 16 checked
    assert cold["settings"]["text_cache"]["encoder_loaded"] is True
    assert warm["settings"]["text_cache"] == {**cold["settings"]["text_cache"], "rows_reused": distinct,
                                              "texts_encoded": 0, "encoder_loaded": False}
    assert warm["settings"]["encoder_check"] == cold["settings"]["encoder_check"]
    assert warm["settings"]["encoder_check"]["mean_cosine"] > 0.99
    for a, b in zip(cold["checkpoints"], warm["checkpoints"], strict=True):
        assert a["clean"] == b["clean"] and a["levels"] == b["levels"]  # bitwise: JSON floats compare exactly
    assert any(t["metrics"] != cold["checkpoints"][0]["clean"] for t in cold["checkpoints"][0]["levels"][0]["trials"])


def test_corrupt_text_cache_warns_in_one_line_and_is_rebuilt(world, tmp_path, capsys):
    from robustrec.features.text_cache import cache_path

    _, runs, captioner = world
    path = cache_path(tmp_path / "c", "tiny", "sentence-transformers:all-MiniLM-L6-v2")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x00garbage")
    report, out = _caption_report(capsys, runs[:1], captioner, tmp_path / "r1", "--cache-dir", tmp_path / "c")
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "unreadable text-embedding cache" in warnings[0], out
    assert report["settings"]["text_cache"]["rows_reused"] == 0
    report, out = _caption_report(capsys, runs[:1], captioner, tmp_path / "r2", "--cache-dir", tmp_path / "c")
    assert "warning:" not in out and report["settings"]["text_cache"]["texts_encoded"] == 0


def test_no_text_cache_writes_no_cache(world, tmp_path, capsys):
    _, runs, captioner = world
    report, _ = _caption_report(capsys, runs[:1], captioner, tmp_path / "r", "--cache-dir", tmp_path / "c",
                                "--no-text-cache")
    assert report["settings"]["text_cache"] is None and not (tmp_path / "c").exists()
    assert report["settings"]["reencoding"]["texts_encoded"] == report["settings"]["reencoding"]["distinct_texts"]


def test_cache_dir_that_is_a_file(world, tmp_path, capsys):
    _, runs, captioner = world
    (tmp_path / "f").write_text("x")
    _one_line_error(run_cli(capsys, "perturb", "caption", runs[0], "--captioner", captioner, "--cache-dir",
                            tmp_path / "f", "--report-dir", tmp_path / "r", "-q"), "--cache-dir", tmp_path / "r")
