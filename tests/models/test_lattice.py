"""LATTICE specifics: the item graph mixes a learned and a frozen kNN graph with λ."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models import build_model


def _dense_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """Brute force: the n × n similarity-weighted top-k graph, D^-1/2 S D^-1/2 left to callers."""
    unit = F.normalize(x, dim=1)
    sim = unit @ unit.T
    top = torch.topk(sim, k, dim=1)
    return torch.zeros_like(sim).scatter_(1, top.indices, top.values).clamp_min(0)


def _sym(s: torch.Tensor) -> torch.Tensor:
    d = s.sum(1)
    inv = torch.where(d > 0, d.rsqrt(), torch.zeros_like(d))
    return inv[:, None] * s * inv[None, :]


def _graph(model) -> torch.Tensor:
    with torch.no_grad():
        pattern, values = model.item_graph()
    return pattern.csr(values).to_dense()


@pytest.mark.parametrize("lam", [0.0, 0.9, 1.0])
def test_item_graph_is_lambda_mix_of_learned_and_frozen(small_data, lam):
    model = build_model("lattice", small_data, {"lambda_coeff": lam, "knn_k": 5}, seed=0)
    with torch.no_grad():
        model.modal_weight.copy_(torch.tensor([0.3, -0.2]))  # unequal weights
        w = torch.softmax(model.modal_weight, 0)
        learned = sum(wi * _dense_knn(model.projections[m](f), 5) for wi, (m, f) in zip(w, model.features().items()))
        frozen = sum(wi * _sym(_dense_knn(f, 5)) for wi, f in zip(w, model.features().values()))
    expected = (1 - lam) * _sym(learned) + lam * frozen
    assert torch.allclose(_graph(model), expected, atol=1e-5)


def test_graph_is_sparse_and_frozen_part_ignores_projections(small_data):
    model = build_model("lattice", small_data, {"lambda_coeff": 1.0}, seed=0)
    pattern, _ = model.item_graph()
    k, n_modalities = model.params.knn_k, len(model.feature_names)
    assert pattern.n_edges <= 2 * n_modalities * k * small_data.n_items  # O(items · k), never n²
    before = _graph(model)
    with torch.no_grad():
        for projection in model.projections.values():
            projection.weight.normal_()
    assert torch.equal(before, _graph(model))  # λ = 1: only the frozen kNN graphs


def test_first_batch_of_an_epoch_trains_the_graph_later_batches_do_not(small_data):
    model = build_model("lattice", small_data, seed=0)
    users, pos, neg = torch.arange(32), torch.arange(32), torch.arange(32) + 40
    model.pre_epoch()
    model.loss(users, pos, neg).backward()
    first = [model.modal_weight.grad, *(p.weight.grad for p in model.projections.values())]
    assert all(g is not None and g.abs().sum() > 0 for g in first)
    model.zero_grad(set_to_none=True)
    model.loss(users, pos, neg).backward()
    assert model.modal_weight.grad is None
    assert all(p.weight.grad is None for p in model.projections.values())
    assert model.item_embedding.grad.abs().sum() > 0


def test_frozen_graph_rebuilt_when_features_change(small_data):
    model = build_model("lattice", small_data, {"lambda_coeff": 1.0}, seed=0)
    before = _graph(model)
    rng = np.random.default_rng(0)
    model.set_item_features({m: rng.normal(size=tuple(f.shape)).astype(np.float32)
                             for m, f in model.features().items()})
    assert not torch.equal(before, _graph(model))
    model.set_item_features(small_data.features)
    assert torch.equal(before, _graph(model))


def test_any_modality_set(small_data):
    model = build_model("lattice", small_data, seed=0, modalities=("text",))
    assert model.feature_names == ("text",) and model.modal_weight.shape == (1,)
    assert torch.isfinite(model.loss(torch.arange(8), torch.arange(8), torch.arange(8) + 9))


def test_bad_lambda_rejected(small_data):
    with pytest.raises(ConfigError, match="lambda_coeff"):
        build_model("lattice", small_data, {"lambda_coeff": 1.5})
