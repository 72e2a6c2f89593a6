"""DRAGON: item kNN graphs follow the features."""

import numpy as np
import torch

from robustrec import cache
from robustrec.models import build_model
from robustrec.models.knn import cached_top_k, cosine_top_k


def test_knn_includes_self_and_matches_brute_force():
    rng = np.random.default_rng(0)
    feats = torch.from_numpy(rng.normal(size=(50, 8)).astype(np.float32))
    found = cosine_top_k(feats, 4, block=7).numpy()
    normed = feats / feats.norm(dim=1, keepdim=True)
    sims = (normed @ normed.t()).numpy()
    assert (found[:, 0] == np.arange(50)).all()
    for i in range(50):
        assert set(found[i]) == set(np.argsort(-sims[i])[:4])


def test_knn_cache_is_keyed_by_feature_content(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREC_CACHE", str(tmp_path))
    cache.clear_memory()
    rng = np.random.default_rng(2)
    feats = torch.from_numpy(rng.normal(size=(40, 6)).astype(np.float32))
    first = cached_top_k(feats, 5)
    assert len(list(tmp_path.rglob("*.npz"))) == 1
    cache.clear_memory()
    assert np.array_equal(cached_top_k(feats.clone(), 5), first)  # disk hit, same content
    other = feats.clone()
    other[0] = -other[0]
    assert not np.array_equal(cached_top_k(other, 5), first)
    assert len(list(tmp_path.rglob("*.npz"))) == 2
    cache.clear_memory()


def test_item_graph_rebuilt_on_feature_change(small_data, tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTREC_CACHE", str(tmp_path))
    cache.clear_memory()
    model = build_model("dragon", small_data, seed=0)
    before = model.item_graph.to_dense().clone()
    rng = np.random.default_rng(1)
    model.set_item_features({m: rng.normal(size=tuple(f.shape)).astype(np.float32) for m, f in model.features().items()})
    assert not torch.equal(before, model.item_graph.to_dense())
    cache.clear_memory()
