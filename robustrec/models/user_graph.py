"""User–user co-occurrence graphs (DualGNN, DRAGON), built from the training interactions.

Users u and v are linked with weight c(u, v) = number of items both interacted with in
training (c = R Rᵀ off the diagonal, a symmetric count). Each user keeps its ``k`` strongest
neighbours (ties broken by the smaller user id) and aggregates them with weights
softmax(c) over its kept neighbours (MMRec's ``user_aggr_mode='softmax'``) or 1/k ('mean').
MMRec ships this as a separate preprocessing script and pads users with fewer than ``k``
neighbours by re-drawing random neighbours every epoch; here the graph is built in the library,
is deterministic (no padding: such users aggregate over the neighbours they have) and is cached
by ``data.fingerprint()`` and ``k`` (see ``robustrec.cache``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from robustrec.errors import ConfigError
from robustrec.cache import cache_key, cached_arrays
from robustrec.models.graph import to_torch_csr

GRAPH_VERSION = 1
AGGREGATIONS = ("softmax", "mean")


@dataclass(frozen=True)
class UserNeighbours:
    """Per-user top-k neighbours in CSR layout: row u is ``indices[indptr[u]:indptr[u+1]]``."""

    indptr: np.ndarray
    indices: np.ndarray
    counts: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1


def cooccurrence_counts(train: sp.csr_matrix) -> sp.csr_matrix:
    """c(u, v) = shared training items of users u ≠ v (symmetric, zero diagonal)."""
    binary = sp.csr_matrix(train, dtype=np.float32)
    binary.data[:] = 1.0
    counts = (binary @ binary.T).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts


def top_k_neighbours(train: sp.csr_matrix, k: int) -> UserNeighbours:
    """Each user's ``k`` users with most shared items (descending count, then ascending id)."""
    if k < 1:
        raise ConfigError(f"user graph k must be >= 1, got {k}")
    counts = cooccurrence_counts(train)
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    order = np.lexsort((counts.indices, -counts.data, rows))
    rank = np.arange(len(order)) - counts.indptr[rows[order]]
    keep = order[rank < k]
    kept_rows = rows[keep]
    indptr = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(kept_rows, minlength=counts.shape[0]), out=indptr[1:])
    return UserNeighbours(indptr, counts.indices[keep].astype(np.int64), counts.data[keep].astype(np.float32))


def cached_neighbours(data, k: int) -> UserNeighbours:
    """``top_k_neighbours(data.train, k)``, cached in memory and on disk by data fingerprint and k."""
    key = cache_key("user-cooccurrence", GRAPH_VERSION, data.fingerprint(), k)

    def build():
        found = top_k_neighbours(data.train, k)
        return {"indptr": found.indptr, "indices": found.indices, "counts": found.counts}

    arrays = cached_arrays("user_graph", key, build)
    return UserNeighbours(arrays["indptr"], arrays["indices"], arrays["counts"])


def neighbour_weights(neighbours: UserNeighbours, aggregation: str = "softmax") -> np.ndarray:
    """Edge weights: softmax of the counts within each user's row, or uniform 1/k."""
    if aggregation not in AGGREGATIONS:
        raise ConfigError(f"user aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
    sizes = np.diff(neighbours.indptr)
    rows = np.repeat(np.arange(neighbours.n_users), sizes)
    if aggregation == "mean":
        return (1.0 / sizes[rows]).astype(np.float32)
    counts = neighbours.counts.astype(np.float64)
    row_max = np.full(neighbours.n_users, -np.inf)
    np.maximum.at(row_max, rows, counts)
    exp = np.exp(counts - row_max[rows])
    return (exp / np.bincount(rows, weights=exp, minlength=neighbours.n_users)[rows]).astype(np.float32)


def user_graph_operator(neighbours: UserNeighbours, aggregation: str = "softmax") -> tuple[torch.Tensor, torch.Tensor]:
    """(W, Wᵀ) as torch CSR: (W x)[u] = Σ_v w(u, v) x[v] over u's kept neighbours."""
    n = neighbours.n_users
    matrix = sp.csr_matrix((neighbour_weights(neighbours, aggregation), neighbours.indices.copy(),
                            neighbours.indptr.copy()), shape=(n, n))
    return to_torch_csr(matrix), to_torch_csr(matrix.T)
