"""Any number of modalities: loading, choosing (--modalities), coverage masks, what a run records,
and the refusals (unknown modality, changed feature file, ID-only models, no modality at all)."""

import json

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from dataset_helpers import write_three_modal
from robustrec.checkpoints import load_model
from robustrec.data import load_dataset
from robustrec.data.dataset import canonical_order
from robustrec.errors import ConfigError, DataError
from robustrec.models import available_models, build_model
from robustrec.models.knn import modality_mix_weights

MULTIMODAL = [n for n, c in available_models().items() if c.multimodal]


def _listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def three_modal(tmp_path, small_data):
    """The small planted dataset as a folder with image, text and a third modality, audio."""
    write_three_modal(tmp_path / "data", small_data)
    return tmp_path / "data"


def test_every_feature_file_is_a_modality(three_modal):
    data = load_dataset("tri", three_modal)
    assert data.modalities == ("image", "text", "audio")
    only = load_dataset("tri", three_modal, ["audio", "text"])
    assert only.modalities == ("text", "audio") and "image" not in only.features
    assert load_dataset("tri", three_modal, []).features == {}
    with pytest.raises(DataError, match="no whisper features.*modalities it has: image, text, audio"):
        load_dataset("tri", three_modal, ["whisper"])
    assert canonical_order(["whisper", "audio", "text", "image"]) == ("image", "text", "audio", "whisper")


@pytest.mark.parametrize("name", MULTIMODAL)
def test_every_multimodal_model_uses_three_modalities(name, three_modal):
    import torch

    data = load_dataset("tri", three_modal)
    model = build_model(name, data, seed=0)
    assert model.feature_names == ("image", "text", "audio")
    users = torch.arange(8)
    assert model.full_scores(users).shape == (8, data.n_items)
    text_audio = build_model(name, data, seed=0, modalities=["audio", "text"])
    assert text_audio.feature_names == ("text", "audio")
    if not model.trainable:  # a fitted baseline (itemknncbf): no loss, no learned weights
        assert not torch.equal(model.full_scores(users), text_audio.full_scores(users))
        return
    loss = model.loss(users, torch.arange(8), torch.arange(8, 16))
    loss.backward()
    assert torch.isfinite(loss)
    # fewer modalities, fewer learned weights (every model has per-modality parts)
    assert sum(p.numel() for p in text_audio.parameters()) < sum(p.numel() for p in model.parameters())


def test_mix_weights_keep_mmrec_image_text_and_share_the_rest():
    assert modality_mix_weights(["image", "text"], 0.1) == {"image": 0.1, "text": 0.9}
    three = modality_mix_weights(["image", "text", "audio"], 0.1)
    assert three["image"] == 0.1 and three["text"] == three["audio"] == pytest.approx(0.45)
    assert modality_mix_weights(["text", "audio"], 0.1) == {"text": 0.5, "audio": 0.5}
    assert modality_mix_weights(["image"], 0.1) == {"image": 1.0}


def test_masks_are_loaded_and_checked(three_modal):
    folder = three_modal / "tri"
    n_items = np.load(folder / "text_feat.npy").shape[0]
    mask = np.ones(n_items, dtype=bool)
    mask[:10] = False
    np.save(folder / "text_mask.npy", mask)
    data = load_dataset("tri", three_modal)
    assert data.coverage("text").sum() == n_items - 10 and data.coverage("image").all()
    assert data.describe()["modalities"]["text"]["covered"] == n_items - 10
    np.save(folder / "text_mask.npy", np.ones(n_items - 1, dtype=bool))
    with pytest.raises(DataError, match="one flag per item"):
        load_dataset("tri", three_modal)
    np.save(folder / "text_mask.npy", np.full(n_items, 2))
    with pytest.raises(DataError, match="must hold booleans"):
        load_dataset("tri", three_modal)


def test_nan_rows_are_refused_with_a_count(three_modal):
    audio = np.load(three_modal / "tri" / "audio_feat.npy")
    audio[[1, 4]] = np.nan
    np.save(three_modal / "tri" / "audio_feat.npy", audio)
    with pytest.raises(DataError, match="NaN or Inf values in 2 row"):
        load_dataset("tri", three_modal)


def test_train_records_modalities_and_refuses_changed_features(three_modal, tmp_path, capsys):
    ckpt = tmp_path / "ck"
    code, out, err = run_cli(capsys, "train", "--model", "vbpr", "--dataset", "tri", "--data-dir", three_modal,
                             "--modalities", "audio,text", "--epochs", "1", "-q", "--checkpoint-dir", ckpt)
    assert code == 0, err
    assert "modalities: text (16-d), audio (12-d)" in out
    run = ckpt / "vbpr-tri"
    assert json.loads((run / "config.json").read_text())["modalities"] == ["text", "audio"]
    recorded = json.loads((run / "data.json").read_text())["modalities"]
    assert sorted(recorded) == ["audio", "text"] and recorded["audio"]["file"] == "audio_feat.npy"
    # a file the run does not read may change or appear: the checkpoint still loads
    image = np.load(three_modal / "tri" / "image_feat.npy")
    np.save(three_modal / "tri" / "image_feat.npy", image[:, :5])
    np.save(three_modal / "tri" / "whisper_feat.npy", np.ones((image.shape[0], 3), np.float32))
    model, data, _ = load_model(run)
    assert model.feature_names == ("text", "audio") and data.modalities == ("text", "audio")
    code, _, err = run_cli(capsys, "evaluate", run)
    assert code == 0, err
    # the audio file it does read changes: refused, naming the file
    audio = np.load(three_modal / "tri" / "audio_feat.npy")
    audio[0] += 1.0
    np.save(three_modal / "tri" / "audio_feat.npy", audio)
    assert_one_line_error(*run_cli(capsys, "evaluate", run), "audio features of tri changed", "audio_feat.npy")
    (three_modal / "tri" / "audio_feat.npy").unlink()
    code, _, err = run_cli(capsys, "perturb", "noise", run, "--report-dir", tmp_path / "r", "-q")
    assert code == 2 and "no audio features" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--model", "vbpr", "--modalities", "video"], "no video features (video_feat.npy not found"),
    (["--model", "vbpr", "--modalities", "Image"], "invalid modality name 'Image'"),
    (["--model", "vbpr", "--modalities", "text,,audio"], "comma-separated"),
    (["--model", "vbpr", "--modalities", "text,text"], "names a modality twice"),
    (["--model", "lightgcn", "--modalities", "text"], "uses no item features"),
])
def test_bad_modalities_are_one_line_errors(three_modal, tmp_path, capsys, args, fragment):
    before = _listing(three_modal)
    assert_one_line_error(*run_cli(capsys, "train", *args, "--dataset", "tri", "--data-dir", three_modal,
                                   "--epochs", "1", "-q", "--checkpoint-dir", tmp_path / "ck"), fragment)
    assert not (tmp_path / "ck").exists() and _listing(three_modal) == before


def test_id_only_models_ignore_feature_files(three_modal, tmp_path, capsys):
    """An ID-only run does not read (or depend on) feature files."""
    code, _, err = run_cli(capsys, "train", "--model", "bprmf", "--dataset", "tri", "--data-dir", three_modal,
                           "--epochs", "1", "-q", "--checkpoint-dir", tmp_path / "ck")
    assert code == 0, err
    run = tmp_path / "ck" / "bprmf-tri"
    assert json.loads((run / "config.json").read_text())["modalities"] == []
    assert json.loads((run / "data.json").read_text())["modalities"] == {}
    (three_modal / "tri" / "text_feat.npy").unlink()
    assert run_cli(capsys, "evaluate", run)[0] == 0


def test_id_and_multimodal_runs_perturb_together(three_modal, tmp_path, capsys):
    ck = tmp_path / "ck"
    for model in ("bprmf", "freedom"):
        code, _, err = run_cli(capsys, "train", "--model", model, "--dataset", "tri", "--data-dir", three_modal,
                               "--modalities", "" if model == "bprmf" else "text,audio", "--epochs", "1", "-q",
                               "--checkpoint-dir", ck)
        assert code == 0, err
    code, _, err = run_cli(capsys, "perturb", "noise", ck / "bprmf-tri", ck / "freedom-tri", "--sigma", "0.01",
                           "--repeats", "2", "--report-dir", tmp_path / "r", "-q")
    assert code == 0, err
    assert len(list((tmp_path / "r").glob("*.json"))) == 1


def test_tiny_catalogue_ranks_fewer_items_than_k(tmp_path, capsys):
    """2 items and K up to 50: the ranking holds the 2 items, the rest of each top-K is empty."""
    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "toy.inter").write_text("userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t0\n1\t0\t2\n")
    code, _, err = run_cli(capsys, "train", "--model", "bprmf", "--dataset", "toy", "--data-dir", tmp_path,
                           "--epochs", "1", "-q", "--checkpoint-dir", tmp_path / "ck")
    assert code == 0, err
    metrics = json.loads((tmp_path / "ck" / "bprmf-toy" / "metrics.json").read_text())
    # each user's one held-out item is the only unseen item: always ranked first
    assert metrics["test"]["recall@50"] == 1.0 and metrics["test"]["precision@5"] == pytest.approx(0.2)


def test_resolve_refuses_empty_list(three_modal):
    data = load_dataset("tri", three_modal)
    with pytest.raises(ConfigError, match="--modalities is empty"):
        build_model("vbpr", data, modalities=[])


def test_inspect_reads_coverage_from_the_mask(three_modal):
    from robustrec.data.inspect import inspect_dataset

    folder = three_modal / "tri"
    text = np.load(folder / "text_feat.npy")
    mask = np.ones(len(text), dtype=bool)
    mask[:30] = False
    text[:30] = text[30:].mean(axis=0)  # filled rows: equal, but not duplicates of real content
    np.save(folder / "text_feat.npy", text)
    np.save(folder / "text_mask.npy", mask)
    summary = {m["modality"]: m for m in inspect_dataset("tri", three_modal)["modalities"]}
    assert summary["text"]["coverage"] == pytest.approx(1 - 30 / len(text))
    assert summary["text"]["duplicate_rows"] == 0 and summary["text"]["mask"] == "text_mask.npy"
    assert summary["audio"]["mask"] is None and summary["audio"]["coverage"] == 1.0
