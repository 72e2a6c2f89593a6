"""User–user co-occurrence graph (DualGNN, DRAGON) and the npz cache."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from robustrec.errors import ConfigError
from robustrec import cache
from robustrec.models.user_graph import (cached_neighbours, cooccurrence_counts, neighbour_weights,
                                         top_k_neighbours, user_graph_operator)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREC_CACHE", str(tmp_path))
    cache.clear_memory()
    yield tmp_path
    cache.clear_memory()


def _brute_force_top_k(train, k):
    dense = train.toarray()
    counts = dense @ dense.T
    np.fill_diagonal(counts, 0)
    out = []
    for u in range(len(dense)):
        linked = [v for v in range(len(dense)) if counts[u, v] > 0]
        out.append(sorted(linked, key=lambda v: (-counts[u, v], v))[:k])
    return out, counts


def test_counts_are_symmetric_with_empty_diagonal(small_data):
    counts = cooccurrence_counts(small_data.train)
    assert (counts != counts.T).nnz == 0
    assert counts.diagonal().sum() == 0


@pytest.mark.parametrize("k", [1, 5, 40])
def test_each_user_keeps_its_k_strongest_neighbours(small_data, k):
    found = top_k_neighbours(small_data.train, k)
    expected, counts = _brute_force_top_k(small_data.train, k)
    for u, neighbours in enumerate(expected):
        row = slice(found.indptr[u], found.indptr[u + 1])
        assert list(found.indices[row]) == neighbours
        assert np.array_equal(found.counts[row], counts[u, neighbours])
    assert np.diff(found.indptr).max() <= k


def test_kept_edges_carry_symmetric_counts(small_data):
    found = top_k_neighbours(small_data.train, 10)
    edges = {}
    for u in range(found.n_users):
        for v, c in zip(found.indices[found.indptr[u]:found.indptr[u + 1]], found.counts[found.indptr[u]:found.indptr[u + 1]]):
            edges[(u, int(v))] = c
    both_ways = [(e, edges[(e[1], e[0])]) for e in edges if (e[1], e[0]) in edges]
    assert both_ways and all(edges[e] == back for e, back in both_ways)


def test_softmax_weights_sum_to_one_per_user_and_isolated_users_get_nothing():
    train = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    found = top_k_neighbours(train, 2)
    weights = neighbour_weights(found, "softmax")
    assert np.diff(found.indptr)[3] == 0  # user 3 shares no item with anyone
    graph, graph_t = user_graph_operator(found)
    x = torch.randn(4, 3)
    out = torch.sparse.mm(graph, x)
    assert torch.equal(out[3], torch.zeros(3))
    rows = np.repeat(np.arange(4), np.diff(found.indptr))
    assert np.allclose(np.bincount(rows, weights=weights, minlength=4)[:3], 1.0)
    assert torch.allclose(graph_t.to_dense(), graph.to_dense().t())


def test_bad_parameters_are_config_errors(small_data):
    with pytest.raises(ConfigError):
        top_k_neighbours(small_data.train, 0)
    with pytest.raises(ConfigError):
        neighbour_weights(top_k_neighbours(small_data.train, 3), "max")


def test_cache_hit_returns_identical_graph_from_memory_and_disk(small_data, fresh_cache):
    first = cached_neighbours(small_data, 7)
    files = list((fresh_cache / "user_graph").glob("*.npz"))
    assert len(files) == 1
    assert cached_neighbours(small_data, 7).indices is first.indices  # memory level
    cache.clear_memory()
    from_disk = cached_neighbours(small_data, 7)
    for name in ("indptr", "indices", "counts"):
        assert np.array_equal(getattr(from_disk, name), getattr(first, name))
    with np.load(files[0], allow_pickle=False) as stored:
        assert set(stored.files) == {"indptr", "indices", "counts"}


def test_cache_key_changes_with_data_and_k(small_data, fresh_cache):
    cached_neighbours(small_data, 7)
    cached_neighbours(small_data, 8)
    train = small_data.train.tolil()
    train[0, np.flatnonzero(train[0].toarray().ravel() == 0)[0]] = 1.0
    changed = small_data.with_features(small_data.features)
    changed.train = train.tocsr()
    assert changed.fingerprint() != small_data.fingerprint()
    cached_neighbours(changed, 7)
    assert len(list((fresh_cache / "user_graph").glob("*.npz"))) == 3


def test_corrupt_cache_file_is_rebuilt(small_data, fresh_cache):
    first = cached_neighbours(small_data, 4)
    path = next((fresh_cache / "user_graph").glob("*.npz"))
    path.write_bytes(b"not a zip")
    cache.clear_memory()
    assert np.array_equal(cached_neighbours(small_data, 4).indices, first.indices)
