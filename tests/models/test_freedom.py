"""FREEDOM specifics: the frozen kNN graph and the degree-sensitive edge dropout."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.models.graph import sym_normalize
from robustrec.models.knn import cosine_top_k, knn_adjacency


def _dense(csr_tensor):
    return csr_tensor.to_dense().numpy()


def test_cosine_top_k_matches_brute_force_and_includes_self():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(203, 7)).astype(np.float32))
    got = cosine_top_k(x, 5, block=32)  # several blocks, ragged last one
    unit = x / x.norm(dim=1, keepdim=True)
    expected = torch.topk(unit @ unit.T, 5, dim=1).indices
    assert torch.equal(got.sort(1).values, expected.sort(1).values)
    assert (got == torch.arange(203)[:, None]).any(1).all()


def test_knn_graph_has_k_neighbours_per_row_each_weighted_one_over_k():
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(50, 6)).astype(np.float32))
    graph = knn_adjacency(x, 4)
    assert (np.diff(graph.indptr) == 4).all()
    assert np.allclose(graph.data, 0.25)


def test_item_graph_depends_only_on_feature_content(small_data):
    a = build_model("freedom", small_data, seed=0)
    b = build_model("freedom", small_data, seed=1)
    assert np.array_equal(_dense(a.item_graph), _dense(b.item_graph))
    per_row = np.count_nonzero(_dense(a.item_graph), axis=1)
    assert (per_row >= a.params.knn_k).all()  # union of image and text neighbours


def test_item_graph_rebuilt_when_features_change(small_data):
    model = build_model("freedom", small_data, seed=0)
    before = _dense(model.item_graph)
    rng = np.random.default_rng(0)
    model.set_item_features({m: rng.normal(size=tuple(f.shape)).astype(np.float32)
                             for m, f in model.features().items()})
    assert not np.array_equal(before, _dense(model.item_graph))
    model.set_item_features(small_data.features)
    assert np.array_equal(before, _dense(model.item_graph))


def test_edge_dropout_keeps_a_symmetric_normalised_subgraph(small_data):
    model = build_model("freedom", small_data, seed=0)
    torch.manual_seed(0)
    masked = _dense(model.sample_masked_adjacency())
    n_users = small_data.n_users
    kept = sp.csr_matrix(masked[:n_users, n_users:] != 0).astype(np.float32)
    assert kept.nnz == int(small_data.n_train * (1 - model.params.dropout))
    assert (small_data.train.multiply(kept)).nnz == kept.nnz  # a subset of training edges
    assert np.allclose(masked, masked.T)
    bipartite = sp.bmat([[None, kept], [kept.T, None]])
    assert np.allclose(masked, sym_normalize(bipartite).toarray(), atol=1e-6)


def test_edge_dropout_is_seeded_and_resampled(small_data):
    model = build_model("freedom", small_data, seed=0)
    torch.manual_seed(5)
    first, second = _dense(model.sample_masked_adjacency()), _dense(model.sample_masked_adjacency())
    torch.manual_seed(5)
    assert np.array_equal(first, _dense(model.sample_masked_adjacency()))
    assert not np.array_equal(first, second)


def test_scoring_uses_the_full_graph(small_data):
    model = build_model("freedom", small_data, seed=0).eval()
    users = torch.arange(5)
    with torch.no_grad():
        before = model.full_scores(users)
        model.pre_epoch()
        assert torch.equal(before, model.full_scores(users))


@pytest.mark.parametrize("params", [{"dropout": 1.0}, {"knn_k": 0}, {"mm_image_weight": 1.5}])
def test_invalid_params_rejected(small_data, params):
    with pytest.raises(ConfigError):
        build_model("freedom", small_data, params)
