"""Image edits (``robustrec perturb image``): Pillow edits of real hm product photos, re-encoded with the
encoder recorded in ``features.json`` — the edits themselves, the Perturbation contract, then the CLI
end to end on a small real hm subset (60 articles, their photos, texts and purchases; features made by
``robustrec features extract`` in a temp folder)."""

import json
import os
import re

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, cli_code as _cli, run_cli
from dataset_helpers import write_hm_subset
from robustrec.studies.stress import parse_levels
from robustrec.data import load_dataset
from robustrec.errors import ConfigError, DataError
from robustrec.models import build_model
from robustrec.perturbations.image import EditedPhotoRows, ImageEdit
from robustrec.perturbations.image_edits import check_strength, derangement, edit_photo
from robustrec.studies.image_study import edit_plan, encoder_check, load_photo_inputs

N_ITEMS = 60
STRENGTH = {"blur": 4.0, "jpeg": 10, "crop": 0.5, "color": 0.5, "occlude": 0.25}



@pytest.fixture(scope="module")
def hm(tmp_path_factory, shared_datasets):
    """hm's first 60 articles (real photos linked, real texts, their real purchases), features
    extracted with `robustrec features extract`, and 1-epoch runs: vbpr, its MG twin, bprmf, bm3
    and vbpr on text alone."""
    root = tmp_path_factory.mktemp("hm-image")
    write_hm_subset(root / "data" / "hm", shared_datasets, N_ITEMS)
    assert _cli("features", "extract", "--dataset", "hm", "--data-dir", root / "data", "-q", "--threads", "1") == 0
    ck = root / "ck"
    for args in (["--model", "vbpr"], ["--model", "vbpr", "--mg"], ["--model", "bprmf"], ["--model", "bm3"],
                 ["--model", "vbpr", "--modalities", "text", "--name", "vbpr-text"]):
        assert _cli("train", *args, "--dataset", "hm", "--data-dir", root / "data", "--epochs", "1", "-q",
                    "--threads", "1", "--checkpoint-dir", ck) == 0
    return root


@pytest.fixture(scope="module")
def data(hm):
    return load_dataset("hm", hm / "data")


@pytest.fixture(scope="module")
def photos(data):
    return load_photo_inputs(data)[0]


class CountingEncoder:
    """The recorded encoder, counting what is sent to it."""

    def __init__(self, encoder):
        self.encoder, self.calls, self.photos = encoder, 0, 0
        self.encoder_id, self.dim = encoder.encoder_id, encoder.dim

    def encode(self, batch):
        self.calls += 1
        self.photos += len(batch)
        return self.encoder.encode(batch)


@pytest.fixture(scope="module")
def real_encoder(hm):
    from robustrec.features.sidecar import encoder_for

    return encoder_for(hm / "data" / "hm", "image")


@pytest.fixture
def counting(real_encoder):
    return CountingEncoder(real_encoder)


@pytest.fixture(scope="module")
def vbpr(data):
    return build_model("vbpr", data, seed=0).eval()


def _scores(model):
    with torch.no_grad():
        return model.full_scores(torch.arange(10))


# --- the edits on a real photo ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo(shared_datasets):
    from PIL import Image

    with Image.open(os.path.join(shared_datasets, "hm", "images", "3.jpg")) as image:
        return image.convert("RGB").resize((120, 180))


@pytest.mark.parametrize("edit", sorted(STRENGTH))
def test_each_edit_changes_the_photo_keeps_its_size_and_is_deterministic(edit, photo):
    before = np.asarray(photo).copy()
    out = edit_photo(photo, edit, STRENGTH[edit], np.random.default_rng(1))
    again = edit_photo(photo, edit, STRENGTH[edit], np.random.default_rng(1))
    assert out.size == photo.size and out.mode == "RGB"
    assert not np.array_equal(np.asarray(out), before)
    assert np.array_equal(np.asarray(out), np.asarray(again))
    assert np.array_equal(np.asarray(photo), before)  # the input is never modified
    if edit in ("crop", "occlude"):  # seeded: another generator, another window
        other = edit_photo(photo, edit, STRENGTH[edit], np.random.default_rng(2))
        assert not np.array_equal(np.asarray(out), np.asarray(other))


def test_occlusion_covers_its_share_and_neutral_strengths_change_nothing(photo):
    grey = np.asarray(edit_photo(photo, "occlude", 0.25, np.random.default_rng(0)))
    share = np.all(grey == 128, axis=2).mean()
    assert share == pytest.approx(0.25, abs=0.02)
    for edit, neutral in (("blur", 0.0), ("crop", 1.0), ("color", 1.0), ("occlude", 0.0)):
        same = edit_photo(photo, edit, neutral, np.random.default_rng(0))
        assert np.array_equal(np.asarray(same), np.asarray(photo)), edit


def test_derangement_has_no_fixed_point():
    for count in (2, 3, 10):
        for seed in range(20):
            order = derangement(np.random.default_rng(seed), count)
            assert sorted(order) == list(range(count)) and not np.any(order == np.arange(count))
    assert list(derangement(np.random.default_rng(0), 1)) == [0]


@pytest.mark.parametrize("edit, value, match", [
    ("blur", -1, r"--radius must be in \[0, 100\]"), ("blur", float("nan"), "--radius"),
    ("jpeg", 0, r"--quality must be in \[1, 95\]"), ("jpeg", 96, "--quality"), ("jpeg", 10.5, "whole number"),
    ("crop", 0, r"--crop-fraction must be in \(0, 1\]"), ("crop", 1.2, "--crop-fraction"),
    ("color", -0.1, r"--brightness must be in \[0, 4\]"), ("occlude", 1.5, r"--occlusion must be in \[0, 1\]"),
    ("sharpen", 1, "unknown image edit 'sharpen'; valid edits: blur, jpeg, crop, color, occlude, swap"),
])
def test_strengths_out_of_range_are_config_errors(edit, value, match):
    with pytest.raises(ConfigError, match=match):
        check_strength(edit, value)


def test_edit_plan_from_flags():
    plan, rates = edit_plan("jpeg,blur", "0.1,0.5", {"jpeg": 20, "blur": None}, parse_levels)
    assert plan == [("jpeg", 20), ("blur", 4.0)] and rates == [0.1, 0.5]
    assert edit_plan("swap", None, {}, parse_levels) == ([("swap", None)], [0.1])
    with pytest.raises(ConfigError, match="--radius applies to --edit blur"):
        edit_plan("jpeg", None, {"blur": 2.0}, parse_levels)
    with pytest.raises(ConfigError, match=r"--rate must be in \[0, 1\]"):
        edit_plan("blur", "1.5", {}, parse_levels)


# --- the Perturbation --------------------------------------------------------------------------------
def test_photos_are_the_items_with_a_readable_photo(photos, data):
    assert photos.ids == tuple(range(N_ITEMS)) and data.features["image"].shape == (N_ITEMS, 1280)


def test_rate_zero_and_neutral_strength_are_bitwise_identity_without_encoding(vbpr, photos, counting):
    rows = EditedPhotoRows(counting, photos)
    clean = _scores(vbpr)
    for edit in (ImageEdit("blur", 0.0, 4.0, photos, rows), ImageEdit("blur", 0.5, 0.0, photos, rows),
                 ImageEdit("occlude", 0.5, 0.0, photos, rows), ImageEdit("swap", 0.0, None, photos, rows)):
        same = edit.apply(vbpr, seed=3)
        assert torch.equal(_scores(same).view(torch.int32), clean.view(torch.int32))
        assert edit.trial_record(3) == {"changed_items": 0, "items": []}
    assert counting.calls == 0 and counting.photos == 0


def test_only_edited_rows_change_and_the_input_is_untouched(vbpr, photos, counting, data):
    before = {k: v.clone() for k, v in vbpr.state_dict().items()}
    buffers = {m: t.clone() for m, t in vbpr.features().items()}
    edit = ImageEdit("crop", 0.2, 0.5, photos, EditedPhotoRows(counting, photos))
    copy = edit.apply(vbpr, seed=5)
    changed = edit.changed(5)
    assert len(changed) == 12 and edit.trial_record(5) == {"changed_items": 12, "items": changed.tolist()}
    new, clean = copy.feat_image.numpy(), data.features["image"]
    differs = np.flatnonzero(np.any(new != clean, axis=1))
    assert np.array_equal(differs, changed)
    assert not torch.equal(_scores(copy), _scores(vbpr))
    assert all(torch.equal(before[k], v) for k, v in vbpr.state_dict().items())
    assert all(torch.equal(buffers[m], t) for m, t in vbpr.features().items())
    assert copy.feat_text.data_ptr() == vbpr.feat_text.data_ptr()  # other modalities shared, not copied
    assert counting.photos == 12


def test_equal_seeds_equal_copies(vbpr, photos, real_encoder):
    make = lambda: ImageEdit("occlude", 0.1, 0.25, photos, EditedPhotoRows(real_encoder, photos))  # noqa: E731
    a, b = make().apply(vbpr, 11), make().apply(vbpr, 11)  # separate memos: encoded twice
    assert np.array_equal(a.feat_image.numpy(), b.feat_image.numpy())
    c = make().apply(vbpr, 12)
    assert not np.array_equal(a.feat_image.numpy(), c.feat_image.numpy())
    assert make().trial_record(11) == make().trial_record(11) != make().trial_record(12)


def test_each_trial_is_encoded_once_for_every_checkpoint(data, photos, counting):
    models = [build_model("vbpr", data, seed=0).eval(), build_model("freedom", data, seed=1).eval(),
              build_model("vbpr", data, seed=2).eval()]
    rows = EditedPhotoRows(counting, photos)
    edit = ImageEdit("crop", 0.2, 0.5, photos, rows)
    for seed in (1, 2):
        for model in models:
            edit.apply(model, seed)
    assert counting.calls == 2 and counting.photos == 24  # one call of 12 photos per trial
    blur = ImageEdit("blur", 0.2, 4.0, photos, rows)
    blur.apply(models[0], 1)
    blur.apply(models[1], 1)
    assert counting.calls == 3 and counting.photos == 36


def test_swap_gives_chosen_items_another_chosen_items_photo(vbpr, photos, counting, data):
    edit = ImageEdit("swap", 0.2, None, photos, EditedPhotoRows(counting, photos))
    targets, sources = edit.assignment(4)
    assert sorted(targets) == sorted(sources) and not np.any(targets == sources) and len(targets) == 12
    new = edit.apply(vbpr, 4).feat_image.numpy()
    cosine = np.sum(new[targets] * data.features["image"][sources], axis=1) / (
        np.linalg.norm(new[targets], axis=1) * np.linalg.norm(data.features["image"][sources], axis=1))
    assert cosine.min() > 0.999  # the donor's photo re-encoded: its own row, up to float error
    assert ImageEdit("swap", 1 / N_ITEMS, None, photos).trial_record(4) == {"changed_items": 0, "items": []}


def test_items_are_an_exact_nested_share(photos):
    small, large = ImageEdit("jpeg", 0.1, 10, photos), ImageEdit("jpeg", 0.5, 10, photos)
    assert len(small.changed(7)) == 6 and len(large.changed(7)) == 30
    assert set(small.changed(7)) <= set(large.changed(7))
    assert len(ImageEdit("jpeg", 1.0, 10, photos).trial_record(0)["items"]) == 20  # ids listed: first 20


@pytest.mark.parametrize("model, reason", [
    ("bprmf", "uses no item features"),
    ("bm3", "item features do not enter its scores at inference"),
    ("vbpr-text", "does not use the image modality"),
    ("vbpr", None),
])
def test_unaffected_reasons(data, photos, model, reason):
    name, _, rest = model.partition("-")
    built = build_model(name, data, seed=0, modalities=rest.split("-") if rest else None).eval()
    edit = ImageEdit("blur", 0.5, 4.0, photos)  # no encoder: an unaffected model needs none
    assert edit.unaffected_reason(built) == reason
    if reason is not None:
        assert torch.equal(_scores(edit.apply(built, 0)), _scores(built))


def test_stored_rows_from_another_encoder_are_refused(photos, data):
    class Other:
        encoder_id, dim = "other", 1280

        def encode(self, batch):
            return np.random.default_rng(0).standard_normal((len(batch), 1280)).astype(np.float32)

    with pytest.raises(DataError, match="not made by this encoder/preprocessing"):
        encoder_check(Other(), photos, data.features["image"])


def test_encoder_check_passes_on_extracted_features(real_encoder, photos, data):
    check = encoder_check(real_encoder, photos, data.features["image"])
    assert check["items"] == [0, 29, 59] and check["min_cosine"] > 0.999


# --- the CLI on the real hm subset ------------------------------------------------------------------
def _perturb(capsys, hm, runs, *flags, report_dir, data_dir=None):
    extra = ["--data-dir", data_dir] if data_dir else []
    return run_cli(capsys, "perturb", "image", *(hm / "ck" / r for r in runs), *flags, *extra,
                   "--report-dir", report_dir, "-q", "--threads", "1")


@pytest.fixture(scope="module")
def reports(hm):
    out = hm / "reports"
    assert _cli("perturb", "image", *(hm / "ck" / r for r in ("vbpr-hm", "vbpr-hm-mg", "bprmf-hm")),
                "--edit", "jpeg,blur", "--rate", "0.5", "--repeats", "2", "--report-dir", out, "--csv", "-q",
                "--threads", "1") == 0
    return sorted(out.glob("*.json"))


def test_one_report_per_edit_end_to_end(reports, photos):
    assert len(reports) == 2 and {p.with_suffix(".csv").is_file() for p in reports} == {True}
    loaded = [json.loads(p.read_text()) for p in reports]
    by_edit = {r["settings"]["edit"]: r for r in loaded}
    assert set(by_edit) == {"jpeg", "blur"}
    for edit, report in by_edit.items():
        settings = report["settings"]
        assert report["kind"] == "image" and settings["strength_name"] == "rate" and settings["levels"] == [0.5]
        assert settings["title"].startswith(f"image: {edit} (") and settings["image_encoder"] == "efficientnet-lite0"
        assert settings["encoder_check"]["min_cosine"] > 0.999 and settings["items_with_photo"] == N_ITEMS
        entries = {e["name"]: e for e in report["checkpoints"]}
        assert entries["bprmf-hm"]["unaffected"] == "unaffected by construction: uses no item features"
        (level,) = entries["vbpr-hm"]["levels"]
        assert [t["changed_items"] for t in level["trials"]] == [30, 30]
        twin = entries["vbpr-hm-mg"]["levels"][0]["trials"]
        assert [t["items"] for t in level["trials"]] == [t["items"] for t in twin]
        assert report["mg_gains"]
    assert by_edit["jpeg"]["settings"]["quality"] == 10 and by_edit["blur"]["settings"]["radius"] == 4.0


def test_compare_renders_image_reports(reports, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(capsys, "compare", *reports)
    assert code == 0, err
    assert "image: jpeg (JPEG quality 10) on hm" in out and "image: blur (Gaussian blur, radius 4) on hm" in out
    assert re.search(r"┃\s+rate\s+┃", out) and "unaffected by construction" in out and "Mirror Gradient gain" in out


def test_rate_zero_on_the_cli_is_the_clean_model(hm, tmp_path, capsys):
    code, out, err = _perturb(capsys, hm, ["vbpr-hm"], "--edit", "occlude", "--rate", "0", "--repeats", "2",
                              report_dir=tmp_path)
    assert code == 0, err
    (path,) = tmp_path.glob("image-*-hm-*.json")
    entry = json.loads(path.read_text())["checkpoints"][0]
    assert all(t["metrics"] == entry["clean"] for t in entry["levels"][0]["trials"])
    assert json.loads(path.read_text())["settings"]["encoder_check"] is None  # nothing was encoded


@pytest.mark.parametrize("edit", ["swap", "crop", "color"])
def test_other_edits_on_the_cli(hm, tmp_path, capsys, edit):
    code, out, err = _perturb(capsys, hm, ["vbpr-hm"], "--edit", edit, "--rate", "0.2", "--repeats", "1",
                              report_dir=tmp_path)
    assert code == 0, err
    (path,) = tmp_path.glob("image-*-hm-*.json")
    report = json.loads(path.read_text())
    assert report["settings"]["edit"] == edit and report["settings"]["title"].startswith(f"image: {edit} (")
    assert [t["changed_items"] for t in report["checkpoints"][0]["levels"][0]["trials"]] == [12]


def test_checkpoints_without_image_are_reported_unaffected_and_said_so(hm, tmp_path, capsys):
    code, out, err = run_cli(capsys, "perturb", "image", hm / "ck" / "bm3-hm", hm / "ck" / "vbpr-text",
                             "--report-dir", tmp_path, "--threads", "1", "--repeats", "1")
    assert code == 0, err
    assert "no given checkpoint's scores read image features" in " ".join(out.split())
    (path,) = tmp_path.glob("*.json")
    assert all(e["unaffected"] for e in json.loads(path.read_text())["checkpoints"])


def _copy_dataset(hm, target, drop=(), sidecar=None):
    """A copy of the hm subset folder (files linked) without ``drop``, with ``sidecar`` edited."""
    source, folder = hm / "data" / "hm", target / "hm"
    folder.mkdir(parents=True)
    for entry in source.iterdir():
        if entry.name not in drop and entry.name != "features.json":
            os.symlink(entry.resolve(), folder / entry.name)
    recorded = json.loads((source / "features.json").read_text())
    (folder / "features.json").write_text(json.dumps(sidecar(recorded) if sidecar else recorded))
    return target


def _other_version(recorded):
    recorded["modalities"]["image"]["encoder_version"] = "efficientnet-lite-pytorch 0.0.1, weights sha256:0"
    return recorded


def _other_sha(recorded):
    recorded["modalities"]["image"]["feat_sha256"] = "0" * 64
    return recorded


def _no_image_entry(recorded):
    del recorded["modalities"]["image"]
    return recorded


@pytest.mark.parametrize("runs, flags, copy, fragment", [
    (["vbpr-hm"], ["--edit", "blur,sharpen"], None, "unknown image edit 'sharpen'; valid edits: blur, jpeg, crop"),
    (["vbpr-hm"], ["--edit", ""], None, "--edit needs at least one edit"),
    (["vbpr-hm"], ["--rate", "1.5"], None, "--rate must be in [0, 1]"),
    (["vbpr-hm"], ["--rate", "0.1,x"], None, "--rate must be a number"),
    (["vbpr-hm"], ["--radius", "-2"], None, "--radius must be in [0, 100]"),
    (["vbpr-hm"], ["--edit", "jpeg", "--quality", "0"], None, "--quality must be in [1, 95]"),
    (["vbpr-hm"], ["--edit", "crop", "--crop-fraction", "0"], None, "--crop-fraction must be in (0, 1]"),
    (["vbpr-hm"], ["--edit", "color", "--brightness", "9"], None, "--brightness must be in [0, 4]"),
    (["vbpr-hm"], ["--edit", "occlude", "--occlusion", "2"], None, "--occlusion must be in [0, 1]"),
    (["vbpr-hm"], ["--edit", "jpeg", "--radius", "2"], None, "--radius applies to --edit blur"),
    (["vbpr-hm"], ["--repeats", "0"], None, "--repeats must be >= 1"),
    (["vbpr-hm"], [], {"sidecar": _other_version}, "the image encoder available now does not match"),
    (["vbpr-hm"], [], {"sidecar": _other_sha}, "is not the file"),
    (["vbpr-hm"], [], {"sidecar": _no_image_entry}, "image edits need features made by `robustrec features extract`"),
    (["vbpr-hm"], [], {"drop": ("images",)}, "image edits need item photos"),
    (["vbpr-text"], [], {"drop": ("image_feat.npy", "image_mask.npy")}, "has no image features"),
])
def test_bad_input_is_one_line_and_writes_nothing(hm, tmp_path, capsys, runs, flags, copy, fragment):
    data_dir = _copy_dataset(hm, tmp_path / "data", **copy) if copy else None
    assert_one_line_error(*_perturb(capsys, hm, runs, *flags, report_dir=tmp_path / "r", data_dir=data_dir), fragment)
    assert not (tmp_path / "r").exists()
