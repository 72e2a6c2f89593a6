"""SMORE specifics: the similarity-weighted kNN graphs, their max-pool fusion, the spectral
filters and the batch-only user side representations."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.models.knn import max_union, similarity_knn_adjacency
from robustrec.models.smore import info_nce


def test_similarity_knn_graph_matches_dense_construction():
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(40, 6)).astype(np.float32))
    unit = x / x.norm(dim=1, keepdim=True)
    sim = unit @ unit.T
    values, index = torch.topk(sim, 20, dim=1)
    assert (values < 0).any()  # 6-d noise: some kept neighbours are dissimilar
    for clip in (False, True):  # SMORE keeps negative similarities; LATTICE and MGCN clip them
        got = similarity_knn_adjacency(x, 20, clip_negative=clip).toarray()
        dense = torch.zeros_like(sim).scatter_(1, index, values.clamp_min(0) if clip else values)
        degree = dense.sum(1)
        inv_sqrt = torch.where(degree > 0, degree.clamp_min(1e-12) ** -0.5, torch.zeros_like(degree))
        expected = inv_sqrt[:, None] * dense * inv_sqrt[None, :]
        assert np.allclose(got, expected.numpy(), atol=1e-5)
        assert (np.count_nonzero(got, axis=1) == np.count_nonzero(dense.numpy(), axis=1)).all()
    assert (np.count_nonzero(similarity_knn_adjacency(x, 5, clip_negative=False).toarray(), axis=1) == 5).all()


def test_max_union_keeps_every_edge_at_its_largest_weight_even_negative():
    a = sp.csr_matrix(np.array([[0.5, -0.2, 0.0], [0.0, 0.0, 0.3]], np.float32))
    b = sp.csr_matrix(np.array([[0.1, -0.4, 0.0], [0.7, 0.0, 0.0]], np.float32))
    fused = max_union([a, b]).toarray()
    assert np.allclose(fused, [[0.5, -0.2, 0.0], [0.7, 0.0, 0.3]])
    assert max_union([a, b]).nnz == 4  # -0.2 is kept, not replaced by an implicit 0


def _three_modalities(data):
    rng = np.random.default_rng(5)
    return data.with_features({**data.features, "audio": rng.normal(size=(data.n_items, 5)).astype(np.float32)})


@pytest.mark.parametrize("modalities", [("text",), ("image", "text"), ("image", "text", "audio")])
def test_any_modality_set_one_branch_each_and_a_fused_graph(small_data, modalities):
    data = _three_modalities(small_data)
    model = build_model("smore", data, seed=0, modalities=list(modalities))
    assert set(model.projections) == set(modalities) and len(model.filters) == len(modalities)
    graphs = {m: model.item_graphs[m][0].to_dense() for m in model.feature_names}
    fusion = model.item_graphs["__fusion__"][0].to_dense()
    stacked = torch.stack([torch.where(g != 0, g, torch.tensor(-torch.inf)) for g in graphs.values()])
    expected = stacked.max(0).values
    assert torch.allclose(fusion, torch.where(torch.isinf(expected), torch.zeros(()), expected))
    model.train()
    users, pos, neg = torch.tensor([0, 1, 1]), torch.tensor([2, 3, 4]), torch.tensor([5, 6, 7])
    loss = model.loss(users, pos, neg)
    loss.backward()
    assert torch.isfinite(loss) and all(model.filters[m].grad.abs().sum() > 0 for m in modalities)


def test_unit_filters_pass_the_projection_through(small_data):
    model = build_model("smore", small_data, seed=0)
    with torch.no_grad():
        for weight in [*model.filters.values(), model.fusion_filter]:
            weight.copy_(torch.tensor([1.0, 0.0]).expand_as(weight))
    filtered, fusion = model._spectral()
    for m, f in model.features().items():
        assert torch.allclose(filtered[m], model.projections[m](f), atol=1e-5)
    spectra = [torch.fft.rfft(model.projections[m](f), dim=1, norm="ortho") for m, f in model.features().items()]
    expected = torch.fft.irfft(spectra[0] * spectra[1], n=model.params.embedding_dim, dim=1, norm="ortho")
    assert torch.allclose(fusion, expected, atol=1e-5)


def test_batch_representations_equal_the_full_ones(small_data):
    model = build_model("smore", small_data, seed=0).eval()
    users, items = torch.tensor([4, 0, 9]), torch.tensor([1, 7])
    with torch.no_grad():
        full = model.representations()
        part = model.representations(users, items)
    for whole, rows, index in zip(full, part, [users, users, items, items]):
        assert torch.allclose(whole[index], rows, atol=1e-6)


def test_info_nce_is_lowest_for_aligned_views():
    view = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    assert info_nce(view, view, 0.2) < info_nce(view, view.roll(1, 0), 0.2)


def test_bad_params_are_config_errors(small_data):
    with pytest.raises(ConfigError, match="smore: temperature"):
        build_model("smore", small_data, params={"temperature": 0})
