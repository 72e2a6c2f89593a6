"""Sparse helpers used by the multimodal models: learnable edge weights, segment softmax."""

import numpy as np
import scipy.sparse as sp
import torch

import pytest

from robustrec.models.graph import EdgePattern, layer_mean, layer_sum, segment_softmax, weighted_spmm


def _pattern():
    rng = np.random.default_rng(0)
    dense = (rng.random((6, 5)) < 0.5).astype(np.float32)
    dense[:, 0] = 1.0  # no empty rows or columns
    dense[0, :] = 1.0
    return EdgePattern(sp.csr_matrix(dense)), dense


def test_weighted_spmm_matches_dense_both_orientations():
    pattern, dense = _pattern()
    values = torch.rand(pattern.n_edges, dtype=torch.float64)
    a = torch.zeros(dense.shape, dtype=torch.float64)
    a[pattern.row, pattern.col] = values
    x_items, x_users = torch.rand(5, 3, dtype=torch.float64), torch.rand(6, 3, dtype=torch.float64)
    assert torch.allclose(weighted_spmm(pattern, values, x_items), a @ x_items)
    values_t = values[pattern.to_transposed]
    assert torch.allclose(weighted_spmm(pattern, values_t, x_users, transposed=True), a.T @ x_users)


def test_weighted_spmm_gradients():
    pattern, _ = _pattern()
    values = torch.rand(pattern.n_edges, dtype=torch.float64, requires_grad=True)
    x = torch.rand(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.rand(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, d: weighted_spmm(pattern, v, d), (values, x))
    assert torch.autograd.gradcheck(lambda v, d: weighted_spmm(pattern, v, d, transposed=True), (values, y))


def test_segment_softmax_sums_to_one_per_segment():
    logits = torch.tensor([1.0, 2.0, 3.0, 0.5, 100.0])
    segments = torch.tensor([0, 0, 1, 1, 2])
    out = segment_softmax(logits, segments, 3)
    sums = torch.zeros(3).index_add(0, segments, out)
    assert torch.allclose(sums, torch.ones(3))
    assert torch.allclose(out[:2], torch.softmax(logits[:2], 0))


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("width", [64, 17])
def test_layer_sum_and_mean_are_the_stacked_reductions_with_the_same_gradients(count, width):
    gen = torch.Generator().manual_seed(count)
    layers = [torch.randn(300, width, generator=gen, requires_grad=True) for _ in range(count)]
    grad = torch.randn(300, width, generator=gen)
    bitwise = count <= 4 or width % 16 == 0  # the documented cases
    for ours, stacked in ((layer_sum, lambda t: torch.stack(t).sum(0)), (layer_mean, lambda t: torch.stack(t).mean(0))):
        got, want = ours(layers), stacked(layers)
        assert torch.equal(got, want) if bitwise else torch.allclose(got, want, rtol=0, atol=1e-5)
        assert all(torch.equal(a, b) for a, b in zip(torch.autograd.grad(got, layers, grad),
                                                     torch.autograd.grad(want, layers, grad)))
        assert got.data_ptr() not in {t.data_ptr() for t in layers}  # a new tensor, never an input
