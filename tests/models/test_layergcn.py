"""LayerGCN specifics: refined propagation, per-epoch edge pruning, parameter checks."""

import pytest
import torch
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.models.layergcn import propagate_refined


def _dense(csr):
    return csr.to_dense()


def test_propagation_matches_dense_reference(small_data):
    model = build_model("layergcn", small_data, {"n_layers": 3})
    adjacency = _dense(model.adjacency)
    ego = torch.cat([model.user_embedding, model.item_embedding]).detach()
    layer, expected = ego, torch.zeros_like(ego)
    for _ in range(3):
        propagated = adjacency @ layer
        layer = F.cosine_similarity(propagated, ego, dim=-1)[:, None] * propagated
        expected += layer
    got = propagate_refined(model.adjacency, ego, 3)
    assert torch.allclose(got, expected, atol=1e-5)


def test_pre_epoch_prunes_and_renormalises(small_data):
    model = build_model("layergcn", small_data, {"dropout": 0.2})
    torch.manual_seed(0)
    model.pre_epoch()
    pruned = _dense(model.train_adjacency)
    n_edges = small_data.train.nnz
    assert int((pruned > 0).sum()) == 2 * int(n_edges * 0.8)
    assert torch.allclose(pruned, pruned.t())
    binary = (pruned > 0).float()
    degree = binary.sum(1)
    inv = torch.where(degree > 0, degree.clamp_min(1) ** -0.5, torch.zeros_like(degree))
    assert torch.allclose(pruned, inv[:, None] * binary * inv[None, :], atol=1e-6)
    # kept edges are training edges
    full = _dense(model.adjacency) > 0
    assert bool(full[pruned > 0].all())


def test_pruning_is_seeded_by_torch_and_changes_every_epoch(small_data):
    def kept_patterns(seed):
        model = build_model("layergcn", small_data, {"dropout": 0.2})
        torch.manual_seed(seed)
        patterns = []
        for _ in range(3):
            model.pre_epoch()
            patterns.append(model.train_adjacency.col_indices().clone())
        return patterns

    first, again = kept_patterns(1), kept_patterns(1)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])


def test_degree_sensitive_pruning_drops_hub_edges_more(small_data):
    model = build_model("layergcn", small_data, {"dropout": 0.5})
    weights = model.keep_weights
    torch.manual_seed(0)
    kept = torch.zeros(len(weights))
    for _ in range(20):
        kept[torch.multinomial(weights, len(weights) // 2, replacement=False)] += 1
    light = weights >= weights.median()
    assert kept[light].mean() > kept[~light].mean()


def test_zero_dropout_trains_on_full_graph_and_scoring_ignores_pruning(small_data):
    model = build_model("layergcn", small_data, {"dropout": 0.0})
    model.pre_epoch()
    assert model.train_adjacency is model.adjacency
    pruned = build_model("layergcn", small_data, {"dropout": 0.2})
    before = pruned.full_scores(torch.arange(5)).detach()
    pruned.pre_epoch()
    assert torch.equal(before, pruned.full_scores(torch.arange(5)).detach())


@pytest.mark.parametrize("params", [{"dropout": 1.0}, {"dropout": -0.1}, {"n_layers": 0}])
def test_bad_params_rejected(small_data, params):
    with pytest.raises(ConfigError):
        build_model("layergcn", small_data, params)
