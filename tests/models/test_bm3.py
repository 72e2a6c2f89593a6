"""BM3: ID-only scoring, negatives ignored, fine-tuned feature tables optional."""

import pytest
import torch

from robustrec.errors import ConfigError
from robustrec.models import build_model


def test_loss_ignores_negatives(small_data):
    model = build_model("bm3", small_data, seed=0)
    users, pos = torch.arange(16), torch.arange(16)
    torch.manual_seed(0)
    a = model.loss(users, pos, torch.zeros(16, dtype=torch.long))
    torch.manual_seed(0)
    b = model.loss(users, pos, torch.arange(16) + 20)
    assert torch.equal(a, b)


def test_tune_features_controls_trainable_tables(small_data):
    tuned = build_model("bm3", small_data, seed=0)
    frozen = build_model("bm3", small_data, {"tune_features": False}, seed=0)
    assert set(tuned.tuned) == set(tuned.feature_names)
    assert len(frozen.tuned) == 0
    assert not any(n.startswith("tuned") for n in frozen.state_dict())


def test_mismatched_dims_rejected(small_data):
    with pytest.raises(ConfigError):
        build_model("bm3", small_data, {"feat_embed_dim": 32})
