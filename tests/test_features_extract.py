"""``robustrec features extract``: real MiniLM rows of lfm2k reproduced, EfficientNet-Lite0 features of real
hm photos (on a 24-item subset), masks, fill, sidecar, encoder checks, resume, and bad input."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError, DataError
from robustrec.features import registry as encoders_module
from robustrec.features.extract import extract_features, plan_extraction
from robustrec.features.sidecar import check_encoder, encoder_for, read_sidecar

N_SUBSET = 24


def make_hm_subset(root, shared_datasets, n_items=N_SUBSET, name="hm"):
    """A dataset folder `root/name` with hm items 0..n-1: real photos (linked), their real texts (some
    items have none) and a small planted .inter covering every item."""
    hm = os.path.join(shared_datasets, "hm")
    folder = root / name
    (folder / "images").mkdir(parents=True)
    for i in range(n_items):
        os.symlink(os.path.join(hm, "images", f"{i}.jpg"), folder / "images" / f"{i}.jpg")
    with open(os.path.join(hm, "hm.items.jsonl"), encoding="utf-8") as handle:
        lines = [line for line in handle if json.loads(line)["itemID"] < n_items]
    (folder / f"{name}.items.jsonl").write_text("".join(lines), encoding="utf-8")
    rows = [(u, i, 0) for i in range(n_items) for u in (i % 5, (i + 1) % 5)] + [(0, 1, 1), (1, 2, 2)]
    (folder / f"{name}.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{x}\n" for u, i, x in rows))
    return folder


class HashTextEncoder:
    """A fast deterministic stand-in text encoder (rows seeded by the text's hash)."""

    modality, encoder_id, version, dim, preprocessing = "text", "fake:hash", "1", 8, {"text": "as is"}

    def encode(self, batch):
        return np.stack([np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16))
                         .standard_normal(self.dim).astype(np.float32) for t in batch])


class InterruptOnBatch:
    """Wraps an encoder; raises `exc` when batch number `at` (1-based) is encoded."""

    def __init__(self, inner, at=2, exc=KeyboardInterrupt):
        self.inner, self.at, self.exc, self.calls = inner, at, exc, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, batch):
        self.calls += 1
        if self.calls == self.at:
            raise self.exc()
        return self.inner.encode(batch)


@pytest.fixture(scope="session")
def image_encoder():
    return encoders_module.make_encoder("image")


@pytest.fixture(scope="session")
def text_encoder():
    return encoders_module.make_encoder("text")


@pytest.fixture(scope="session")
def hm_source(tmp_path_factory, shared_datasets):
    return make_hm_subset(tmp_path_factory.mktemp("hm-subset"), shared_datasets)


@pytest.fixture(scope="session")
def hm_extracted(tmp_path_factory, hm_source, image_encoder, text_encoder):
    """Image + text features of the subset (fill mean, batch 8) in an --out-dir folder."""
    out = tmp_path_factory.mktemp("features-out")
    plan = plan_extraction(hm_source.parent, "hm", None, out)
    results = extract_features(plan, {"image": image_encoder, "text": text_encoder}, batch_size=8)
    return out / "hm", results


def listing(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, dirs, files in os.walk(path) for f in files + dirs)


def test_lfm2k_text_path_reproduces_the_stored_minilm_rows(shared_datasets, text_encoder):
    from robustrec.features.content import load_content

    folder = os.path.join(shared_datasets, "lfm2k")
    stored = np.load(os.path.join(folder, "text_feat.npy"))
    texts = load_content(__import__("pathlib").Path(folder), "lfm2k", stored.shape[0], "text").sources
    sample = sorted(np.random.default_rng(0).choice(sorted(texts), size=40, replace=False).tolist())
    rows = text_encoder.encode([texts[i] for i in sample])
    reference = stored[sample]
    cosine = (rows * reference).sum(1) / np.linalg.norm(rows, axis=1) / np.linalg.norm(reference, axis=1)
    assert rows.shape == (40, 384) and cosine.min() > 0.9999


def test_hm_photos_give_finite_1280_rows_and_masks(hm_extracted, hm_source):
    out, results = hm_extracted
    image, image_mask = np.load(out / "image_feat.npy"), np.load(out / "image_mask.npy")
    text, text_mask = np.load(out / "text_feat.npy"), np.load(out / "text_mask.npy")
    assert image.dtype == np.float32 and image.shape == (N_SUBSET, 1280) and np.isfinite(image).all()
    assert image_mask.dtype == bool and image_mask.all() and len({r.tobytes() for r in image}) == N_SUBSET
    with_text = {json.loads(line)["itemID"] for line in (hm_source / "hm.items.jsonl").read_text().splitlines()}
    assert 0 < len(with_text) < N_SUBSET
    assert text.shape == (N_SUBSET, 384) and text_mask.tolist() == [i in with_text for i in range(N_SUBSET)]
    mean = text[text_mask].astype(np.float64).mean(0).astype(np.float32)
    assert np.array_equal(text[~text_mask], np.tile(mean, ((~text_mask).sum(), 1)))  # --fill mean
    assert not (out / ".features.partial").exists()
    for entry in ("hm.inter", "hm.items.jsonl", "images"):  # a trainable dataset folder
        assert (out / entry).is_symlink() and os.path.samefile(out / entry, hm_source / entry)
    assert {r.modality: r.covered for r in results} == {"image": N_SUBSET, "text": len(with_text)}


def test_sidecar_records_encoder_preprocessing_and_coverage(hm_extracted):
    out, _ = hm_extracted
    sidecar = read_sidecar(out)
    assert sidecar["format"] == 1 and set(sidecar["modalities"]) == {"image", "text"}
    image, text = sidecar["modalities"]["image"], sidecar["modalities"]["text"]
    assert image["encoder"] == "efficientnet-lite0" and image["dim"] == 1280
    assert "weights sha256:57934424" in image["encoder_version"]  # the hash in the weight file's name
    assert image["preprocessing"]["center_crop"] == [224, 224]
    assert image["preprocessing"]["normalize"] == {"mean": [127.0] * 3, "std": [128.0] * 3}
    assert (image["items"], image["covered"], image["skipped"], image["fill"]) == (N_SUBSET, N_SUBSET, {"unreadable": 0}, "mean")
    assert text["encoder"] == "sentence-transformers:all-MiniLM-L6-v2" and text["dim"] == 384
    assert text["preprocessing"]["max_tokens"] == 256 and text["covered"] == int(np.load(out / "text_mask.npy").sum())
    for modality, entry in sidecar["modalities"].items():
        assert entry["feat_sha256"] == hashlib.sha256((out / f"{modality}_feat.npy").read_bytes()).hexdigest()


def test_rerun_is_bitwise_equal_and_fill_zeros(tmp_path, hm_source, hm_extracted, image_encoder, text_encoder):
    out, _ = hm_extracted
    plan = plan_extraction(hm_source.parent, "hm", ["image", "text"], tmp_path, fill="zeros")
    extract_features(plan, {"image": image_encoder, "text": text_encoder}, batch_size=8)
    again = tmp_path / "hm"
    assert (again / "image_feat.npy").read_bytes() == (out / "image_feat.npy").read_bytes()
    mask = np.load(again / "text_mask.npy")
    text, text_mean_fill = np.load(again / "text_feat.npy"), np.load(out / "text_feat.npy")
    assert np.array_equal(text[mask], text_mean_fill[mask]) and not text[~mask].any()
    assert read_sidecar(again)["modalities"]["text"]["fill"] == "zeros"


def test_sidecar_check_rebuilds_the_encoder_and_refuses_a_mismatch(tmp_path, hm_extracted, image_encoder):
    out, _ = hm_extracted
    assert encoder_for(out, "image").encoder_id == "efficientnet-lite0"
    copy = tmp_path / "copy"
    copy.mkdir()
    sidecar = read_sidecar(out)
    sidecar["modalities"]["image"]["encoder_version"] = "efficientnet-lite-pytorch 9.9, weights sha256:0"
    sidecar["modalities"]["image"]["dim"] = 1024
    (copy / "features.json").write_text(json.dumps(sidecar))
    with pytest.raises(ConfigError, match="does not match.*encoder_version.*dim 1280 now, 1024 recorded"):
        check_encoder(copy, "image", image_encoder)
    with pytest.raises(ConfigError, match="does not match"):
        encoder_for(copy, "image")
    with pytest.raises(DataError, match="records no audio encoder"):
        encoder_for(out, "audio")


def test_transformers_vision_model_from_a_local_folder(tmp_path, hm_source):
    from transformers import ViTConfig, ViTModel
    from transformers.utils import logging as hf_logging

    import torch

    torch.manual_seed(0)
    folder = tmp_path / "tiny-vit"
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8)
    ViTModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    hf_logging.set_verbosity_error()
    encoder = encoders_module.make_encoder("image", str(folder))
    assert encoder.dim == 32 and encoder.encoder_id == f"transformers:{folder}"
    plan = plan_extraction(hm_source.parent, "hm", ["image"], tmp_path / "out")
    extract_features(plan, {"image": encoder}, batch_size=16)
    features = np.load(tmp_path / "out" / "hm" / "image_feat.npy")
    assert features.shape == (N_SUBSET, 32) and np.isfinite(features).all()
    rebuilt = encoder_for(tmp_path / "out" / "hm", "image")
    assert np.allclose(rebuilt.encode([_photo(hm_source, 3)]), features[3:4], atol=1e-5)  # batch of 1 vs 16


def _photo(folder, item):
    from PIL import Image

    with Image.open(folder / "images" / f"{item}.jpg") as image:
        return image.convert("RGB")


def test_resume_after_interrupt_equals_an_uninterrupted_run(tmp_path, hm_source, hm_extracted, image_encoder):
    out, _ = hm_extracted
    plan = plan_extraction(hm_source.parent, "hm", ["image"], tmp_path)
    with pytest.raises(KeyboardInterrupt):
        extract_features(plan, {"image": InterruptOnBatch(image_encoder)}, batch_size=8)
    partial = tmp_path / "hm" / ".features.partial" / "image"
    assert sorted(p.name for p in partial.glob("chunk-*")) == ["chunk-000000.npz"]
    assert not (tmp_path / "hm" / "image_feat.npy").exists()
    results = extract_features(plan_extraction(hm_source.parent, "hm", ["image"], tmp_path),
                               {"image": image_encoder}, batch_size=8)
    assert results[0].encoded_now == N_SUBSET - 8  # the first chunk was reused
    assert (tmp_path / "hm" / "image_feat.npy").read_bytes() == (out / "image_feat.npy").read_bytes()
    assert not (tmp_path / "hm" / ".features.partial").exists()


def test_other_settings_start_the_partial_over(tmp_path, hm_source):
    plan = plan_extraction(hm_source.parent, "hm", ["text"], tmp_path)
    with pytest.raises(KeyboardInterrupt):
        extract_features(plan, {"text": InterruptOnBatch(HashTextEncoder())}, batch_size=4)
    results = extract_features(plan, {"text": HashTextEncoder()}, batch_size=5)  # other chunking: start over
    assert results[0].encoded_now == results[0].covered


# ---- the command line: bad input is one line, exit != 0, and nothing written ----

def test_cli_extracts_with_progress_summary_and_ctrl_c_note(capsys, tmp_path, hm_source, monkeypatch):
    from rich.console import Console

    import robustrec.cli.features as features_cli
    from robustrec.cli.interrupt import Interrupted

    monkeypatch.setattr(features_cli, "console", Console(width=160, force_terminal=False))

    monkeypatch.setattr(encoders_module, "make_encoder",
                        lambda m, n, **kw: InterruptOnBatch(HashTextEncoder(), exc=Interrupted))
    args = ["features", "extract", "--dataset", "hm", "--data-dir", hm_source.parent, "--out-dir", tmp_path,
            "--modalities", "text", "--batch-size", "4"]
    code, out, err = run_cli(capsys, *args)
    assert code == 130 and err.startswith("interrupted; encoded items kept in") and "(text 4/" in err
    assert "rerun the same command to resume" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setattr(encoders_module, "make_encoder", lambda m, n, **kw: HashTextEncoder())
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    for fragment in ("text", "fake:hash", "items/s", "fill", "mean", f"/{N_SUBSET}"):
        assert fragment in out
    assert not (tmp_path / "hm" / ".features.partial").exists()


def test_cli_corrupt_image_is_skipped_and_counted(capsys, tmp_path, shared_datasets):
    source = make_hm_subset(tmp_path / "src", shared_datasets, n_items=6)
    (source / "images" / "2.jpg").unlink()
    (source / "images" / "2.jpg").write_bytes(b"not a jpeg at all")
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", source.parent,
                             "--out-dir", tmp_path / "out", "--modalities", "image", "--fill", "zeros", "-q")
    assert code == 0, err
    assert "skipped 1 image item(s), rows filled: 2 (unreadable image" in out
    folder = tmp_path / "out" / "hm"
    mask, features = np.load(folder / "image_mask.npy"), np.load(folder / "image_feat.npy")
    assert mask.tolist() == [True, True, False, True, True, True] and not features[2].any()
    entry = read_sidecar(folder)["modalities"]["image"]
    assert (entry["covered"], entry["skipped"], entry["fill"]) == (5, {"unreadable": 1}, "zeros")


def test_cli_all_images_corrupt_is_an_error_and_writes_nothing(capsys, tmp_path, shared_datasets):
    source = make_hm_subset(tmp_path / "src", shared_datasets, n_items=3)
    for i in range(3):
        (source / "images" / f"{i}.jpg").unlink()
        (source / "images" / f"{i}.jpg").write_bytes(b"\xff\xd8garbage")
    before = listing(tmp_path)
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", source.parent,
                           "--out-dir", tmp_path / "out", "--modalities", "image", "-q")
    assert_one_line_error(code, out, err, "no image of dataset 'hm' could be read")
    assert listing(tmp_path) == before


@pytest.mark.parametrize("extra, fragment", [
    (["--modalities", "image,audio"], "unknown modality 'audio'; valid: image, text"),
    (["--image-encoder", "/nonexistent"], "cannot load image encoder '/nonexistent': no such folder"),
    (["--image-encoder", "no-such-vision-model"], "cannot load image encoder 'no-such-vision-model' offline"),
    (["--text-encoder", "/nonexistent"], "cannot load text encoder '/nonexistent'"),
    (["--image-encoder", "efficientnet-lite3"], "has no offline weights"),
    (["--fill", "median"], "Invalid value for '--fill'"),
])
def test_cli_bad_flags_write_nothing(capsys, tmp_path, hm_source, extra, fragment):
    code, _, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", hm_source.parent,
                           "--out-dir", tmp_path / "out", *extra)
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_cli_missing_package_names_the_extra(capsys, tmp_path, hm_source, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", hm_source.parent,
                           "--out-dir", tmp_path / "out", "--modalities", "image")
    assert_one_line_error(code, out, err, "pip install 'robustrec[features]'")
    assert not (tmp_path / "out").exists()


def test_cli_dataset_without_content_writes_nothing(capsys, tmp_path, shared_datasets):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(os.path.join(shared_datasets, "lfm2k", "lfm2k.inter"), bare / "bare.inter")
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "bare", "--data-dir", tmp_path)
    assert_one_line_error(code, out, err, "has no item content")
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "lfm2k", "--data-dir", shared_datasets,
                           "--out-dir", tmp_path / "out", "--modalities", "image")
    assert_one_line_error(code, out, err, "dataset 'lfm2k' has no image content")
    assert listing(tmp_path) == ["bare", "bare/bare.inter"]


def test_cli_existing_output_needs_overwrite(capsys, tmp_path, hm_source, monkeypatch):
    monkeypatch.setattr(encoders_module, "make_encoder", lambda m, n, **kw: HashTextEncoder())
    source = tmp_path / "hm"
    shutil.copytree(hm_source, source, symlinks=True)
    args = ["features", "extract", "--dataset", "hm", "--data-dir", tmp_path, "--modalities", "text", "-q"]
    assert run_cli(capsys, *args)[0] == 0  # in place: the folder is writable
    before = {p: p.read_bytes() for p in source.glob("*.npy")} | {source / "features.json": (source / "features.json").read_bytes()}
    code, out, err = run_cli(capsys, *args)
    assert_one_line_error(code, out, err, f"{source / 'text_feat.npy'} already exists; pass --overwrite")
    assert {p: p.read_bytes() for p in before} == before
    assert run_cli(capsys, *args, "--overwrite", "--fill", "zeros")[0] == 0
    assert read_sidecar(source)["modalities"]["text"]["fill"] == "zeros"


def test_cli_read_only_source_needs_out_dir(capsys, tmp_path, hm_source):
    source = tmp_path / "hm"
    shutil.copytree(hm_source, source, symlinks=True)
    before = listing(tmp_path)
    source.chmod(0o555)
    try:
        code, out, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", tmp_path)
    finally:
        source.chmod(0o755)
    assert_one_line_error(code, out, err, "is not writable; write the features elsewhere with --out-dir")
    assert listing(tmp_path) == before
