"""Sparse graph helpers: normalised adjacency in CSR and sparse–dense products with autograd."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_csr(matrix: sp.spmatrix) -> torch.Tensor:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                       torch.from_numpy(matrix.indices.astype(np.int64)),
                                       torch.from_numpy(matrix.data), size=matrix.shape,
                                       check_invariants=False)


def sym_normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with zero-degree rows left at zero."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = sp.diags(inv_sqrt)
    return sp.csr_matrix(d @ matrix @ d)


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """The (users + items)² symmetric adjacency [[0, R], [Rᵀ, 0]] of the training graph."""
    return sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)


def normalized_bipartite(train: sp.csr_matrix) -> torch.Tensor:
    """LightGCN's propagation matrix, D^-1/2 A D^-1/2 of the bipartite graph, as torch CSR."""
    return to_torch_csr(sym_normalize(bipartite_adjacency(train)))


class _SparseMatmul(torch.autograd.Function):
    """y = A x with dx = Aᵀ dy, where Aᵀ is given up front (A itself when symmetric)."""

    @staticmethod
    def forward(ctx, adjacency, adjacency_t, dense):  # noqa: D401
        ctx.adjacency_t = adjacency_t
        return torch.sparse.mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad):
        return None, None, torch.sparse.mm(ctx.adjacency_t, grad)


def spmm(adjacency: torch.Tensor, dense: torch.Tensor, adjacency_t: torch.Tensor | None = None) -> torch.Tensor:
    """Sparse (CSR) × dense product; pass ``adjacency_t`` unless ``adjacency`` is symmetric."""
    if not dense.requires_grad:
        return torch.sparse.mm(adjacency, dense)
    return _SparseMatmul.apply(adjacency, adjacency if adjacency_t is None else adjacency_t, dense)


def transpose_csr(adjacency: torch.Tensor) -> torch.Tensor:
    return adjacency.t().to_sparse_csr()
