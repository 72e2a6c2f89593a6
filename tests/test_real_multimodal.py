"""Every multimodal model on real content: lfm2k's real MiniLM text and VGGish audio features.

To keep the suite fast the models train on lfm2k's first 400 users (all 1,425 artists and their
real feature rows kept); the full set is timed by ``benchmarks/bench_training.py``.
"""

import numpy as np
import pytest
import torch

from robustrec.data import load_dataset
from robustrec.data.dataset import InteractionData
from robustrec.models import available_models, build_model
from robustrec.training import TrainConfig, Trainer

#: the multimodal models that train (the content kNN baseline has nothing to learn: tests/test_baselines.py)
MULTIMODAL = [n for n, c in available_models().items() if c.multimodal and c.trainable]


@pytest.fixture(scope="module")
def lfm_subset(shared_datasets):
    full = load_dataset("lfm2k", shared_datasets, ["text", "audio"])
    keep = 400
    cut = [m[:keep] for m in (full.train, full.valid, full.test)]
    return InteractionData("lfm2k-400", keep, full.n_items, *cut, features=full.features, source=full.source)


def test_lfm2k_features_are_real_and_finite(lfm_subset):
    assert lfm_subset.modalities == ("text", "audio")
    assert lfm_subset.features["text"].shape == (1425, 384) and lfm_subset.features["audio"].shape == (1425, 128)
    # MiniLM rows are unit-normalised sentence embeddings
    norms = np.linalg.norm(lfm_subset.features["text"], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-3)


@pytest.mark.parametrize("name", MULTIMODAL)
@pytest.mark.parametrize("mg", [False, True], ids=["plain", "mg"])
def test_every_multimodal_model_trains_on_lfm2k_text_audio(name, mg, lfm_subset):
    torch.manual_seed(0)
    model = build_model(name, lfm_subset, seed=0)
    assert model.feature_names == ("text", "audio")
    config = TrainConfig(model=name, dataset="lfm2k", epochs=2, patience=5, batch_size=1024, mg=mg, seed=0)
    result = Trainer(config).fit(model, lfm_subset)
    losses = [record.loss for record in result.history]
    assert len(losses) == 2 and all(np.isfinite(losses))
    recall = result.valid.summary()["recall@20"]
    assert np.isfinite(recall) and 0.0 <= recall <= 1.0
    scores = model.eval().full_scores(torch.arange(4))
    assert torch.isfinite(scores).all() and scores.shape == (4, 1425)
