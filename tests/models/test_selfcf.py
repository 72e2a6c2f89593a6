"""SelfCF-ed specifics: symmetric edge dropout, no use of negatives, score decomposition."""

import pytest
import torch

from robustrec.errors import ConfigError
from robustrec.models import build_model


def test_edge_dropout_is_symmetric_rescaled_and_seeded(small_data):
    model = build_model("selfcf", small_data)
    full = model.edge_dropout.full.to_dense()
    torch.manual_seed(0)
    dropped = model.edge_dropout(0.4).to_dense()
    assert torch.allclose(dropped, dropped.t())
    kept = dropped > 0
    assert torch.allclose(dropped[kept], full[kept] / 0.6)
    share = kept.sum().item() / (full > 0).sum().item()
    assert 0.5 < share < 0.7
    torch.manual_seed(0)
    assert torch.equal(model.edge_dropout(0.4).to_dense(), dropped)
    assert torch.equal(model.edge_dropout(0.0).to_dense(), full)


def test_loss_ignores_negatives(small_data):
    model = build_model("selfcf", small_data)
    users, pos = torch.tensor([0, 1, 2, 3]), torch.tensor([5, 6, 7, 8])
    losses = []
    for neg in (torch.tensor([1, 2, 3, 4]), torch.tensor([9, 10, 11, 12])):
        torch.manual_seed(3)
        losses.append(model.loss(users, pos, neg))
    assert torch.equal(losses[0], losses[1])


def test_scores_are_predictor_cross_terms(small_data):
    model = build_model("selfcf", small_data).eval()
    users = torch.arange(6)
    with torch.no_grad():
        u_all, i_all = model._encode(model.edge_dropout.full)
        u = u_all[users]
        expected = model.predictor(u) @ i_all.t() + u @ model.predictor(i_all).t()
        assert torch.allclose(model.full_scores(users), expected, atol=1e-5)


def test_loss_gradient_reaches_embeddings_and_predictor(small_data):
    model = build_model("selfcf", small_data)
    model.loss(torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])).backward()
    assert model.user_embedding.grad.abs().sum() > 0
    assert model.predictor.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("params", [{"dropout": 1.0}, {"edge_drop_max": 1.5}])
def test_bad_params_rejected(small_data, params):
    with pytest.raises(ConfigError):
        build_model("selfcf", small_data, params)
