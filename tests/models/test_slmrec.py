"""SLMRec: the SSL augmentations are seeded and differ between tasks."""

import pytest
import torch

from robustrec.errors import ConfigError
from robustrec.models import build_model


def _ssl(model, seed):
    users, items = torch.arange(32), torch.arange(32) % model.n_items
    torch.manual_seed(seed)
    inputs = model._item_inputs()
    return model.ssl_loss(users, items, inputs, model._branches(inputs)).item()


@pytest.mark.parametrize("task", ["FD", "FM", "FD+FM"])
def test_augmented_views_follow_the_torch_seed(small_data, task):
    model = build_model("slmrec", small_data, {"ssl_task": task}, seed=0)
    model.train()
    assert _ssl(model, 1) == _ssl(model, 1)
    draws = {_ssl(model, s) for s in range(6)}
    assert len(draws) > 1


def test_fac_is_deterministic(small_data):
    model = build_model("slmrec", small_data, seed=0)
    assert _ssl(model, 1) == _ssl(model, 2)


def test_unknown_task_rejected(small_data):
    with pytest.raises(ConfigError):
        build_model("slmrec", small_data, {"ssl_task": "XYZ"})
