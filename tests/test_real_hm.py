"""The whole flow on real hm content: photos and texts -> `robustrec features extract` (EfficientNet-Lite0,
MiniLM) -> every multimodal model trains on image+text -> `robustrec perturb noise` on a pair.

To keep the suite fast the dataset is hm's first 240 articles with their real purchases (the other
rows dropped), real photos (linked) and real texts (only some articles have one)."""

import json

import numpy as np
import pytest
import torch

from cli_helpers import cli_code, run_cli
from dataset_helpers import write_hm_subset
from robustrec.data import load_dataset
from robustrec.models import available_models, build_model
from robustrec.training import TrainConfig, Trainer

N_ITEMS = 240
#: the multimodal models that train (the content kNN baseline has nothing to learn: tests/test_baselines.py)
MULTIMODAL = [n for n, c in available_models().items() if c.multimodal and c.trainable]


@pytest.fixture(scope="module")
def hm_root(tmp_path_factory, shared_datasets):
    root = tmp_path_factory.mktemp("hm-real")
    write_hm_subset(root / "hm", shared_datasets, N_ITEMS)
    return root


@pytest.fixture(scope="module")
def hm_features(hm_root):
    """Run the extractor the way a user does (into the dataset folder, which is writable here)."""
    assert cli_code("features", "extract", "--dataset", "hm", "--data-dir", hm_root, "-q") == 0
    return hm_root


def test_extraction_gives_real_image_and_text_features(hm_features):
    data = load_dataset("hm", hm_features)
    assert data.modalities == ("image", "text")
    assert data.features["image"].shape == (N_ITEMS, 1280) and data.features["text"].shape == (N_ITEMS, 384)
    assert data.coverage("image").all()
    with open(hm_features / "hm" / "hm.items.jsonl", encoding="utf-8") as handle:
        with_text = {json.loads(line)["itemID"] for line in handle}
    assert 0 < len(with_text) < N_ITEMS  # real missing text
    assert set(np.flatnonzero(data.coverage("text"))) == with_text
    filled = data.features["text"][~data.coverage("text")]
    assert np.allclose(filled, data.features["text"][data.coverage("text")].mean(axis=0), atol=1e-6)
    sidecar = json.loads((hm_features / "hm" / "features.json").read_text())
    assert sidecar["modalities"]["image"]["encoder"] == "efficientnet-lite0"


@pytest.mark.parametrize("name", MULTIMODAL)
def test_every_multimodal_model_trains_on_hm_image_text(name, hm_features):
    data = load_dataset("hm", hm_features)
    for mg in (False, True):
        model = build_model(name, data, seed=0)
        assert model.feature_names == ("image", "text")
        config = TrainConfig(model=name, dataset="hm", epochs=2, patience=5, batch_size=256, mg=mg, seed=0)
        result = Trainer(config).fit(model, data)
        assert all(np.isfinite(r.loss) for r in result.history) and len(result.history) == 2
        assert torch.isfinite(model.eval().full_scores(torch.arange(3))).all()


def test_cli_train_pair_and_perturb_on_hm(hm_features, tmp_path, capsys):
    ck = tmp_path / "ck"
    for extra in ([], ["--mg"]):
        code, out, err = run_cli(capsys, "train", "--model", "freedom", "--dataset", "hm", "--data-dir", hm_features,
                                 "--epochs", "3", "-q", "--checkpoint-dir", ck, *extra)
        assert code == 0, err
        assert "modalities: image (1280-d), text (384-d, " in out and "items with content" in out
    code, out, err = run_cli(capsys, "perturb", "noise", ck / "freedom-hm", ck / "freedom-hm-mg", "--sigma", "1e-3",
                             "--repeats", "3", "--report-dir", tmp_path / "r", "-q")
    assert code == 0, err
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    assert [e["name"] for e in report["checkpoints"]] == ["freedom-hm", "freedom-hm-mg"]
    assert report["mg_gains"] and report["dataset"]["modalities"]["text"]["covered"] < N_ITEMS
