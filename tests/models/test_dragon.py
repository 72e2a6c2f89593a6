"""DRAGON: item kNN graphs follow the features."""

import numpy as np
import torch

from robustrec.models import build_model, cache
from robustrec.models.dragon import knn_adjacency, knn_neighbours


def test_knn_includes_self_and_matches_brute_force():
    rng = np.random.default_rng(0)
    feats = torch.from_numpy(rng.normal(size=(50, 8)).astype(np.float32))
    found = knn_neighbours(feats, 4, chunk=7)
    normed = feats / feats.norm(dim=1, keepdim=True)
    sims = (normed @ normed.t()).numpy()
    assert (found[:, 0] == np.arange(50)).all()
    for i in range(50):
        assert set(found[i]) == set(np.argsort(-sims[i])[:4])
    graph = knn_adjacency(found)
    assert np.allclose(np.asarray(graph.sum(axis=1)).ravel(), 1.0)  # k entries of 1/k each


def test_item_graph_rebuilt_on_feature_change(small_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREC_CACHE", str(tmp_path))
    cache.clear_memory()
    model = build_model("dragon", small_data, seed=0)
    before = model.item_graph.to_dense().clone()
    rng = np.random.default_rng(1)
    model.set_item_features({m: rng.normal(size=tuple(f.shape)).astype(np.float32) for m, f in model.features().items()})
    assert not torch.equal(before, model.item_graph.to_dense())
    cache.clear_memory()
