"""Item–item kNN graphs from item features (cosine similarity), built in memory.

The graph depends only on the feature values passed in: nothing is cached on disk, so new
(e.g. perturbed) features always give their own graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F


@torch.no_grad()
def cosine_top_k(features: torch.Tensor, k: int, block: int = 1024) -> torch.Tensor:
    """Indices (n × k) of each row's k most cosine-similar rows, itself included.

    The similarity matrix is symmetric, so only blocks on and above the diagonal are
    multiplied (about half the work of a full ``X Xᵀ``); each block updates the running
    top-k of both its row block and, transposed, its column block.
    """
    x = F.normalize(features.float(), dim=1)
    n = x.shape[0]
    k = min(k, n)
    best_values = torch.full((n, k), -torch.inf)
    best_index = torch.zeros((n, k), dtype=torch.int64)
    starts = list(range(0, n, block))
    for a, row_start in enumerate(starts):
        rows = slice(row_start, min(row_start + block, n))
        for col_start in starts[a:]:
            cols = slice(col_start, min(col_start + block, n))
            sim = x[rows] @ x[cols].T
            _merge(best_values, best_index, rows, sim, col_start, k)
            if col_start != row_start:
                _merge(best_values, best_index, cols, sim.T, row_start, k)
    return best_index


def _merge(best_values, best_index, rows: slice, sim: torch.Tensor, offset: int, k: int) -> None:
    top = torch.topk(sim, min(k, sim.shape[1]), dim=1)
    values = torch.cat([best_values[rows], top.values], dim=1)
    index = torch.cat([best_index[rows], top.indices + offset], dim=1)
    keep = torch.topk(values, k, dim=1)
    best_values[rows] = keep.values
    best_index[rows] = torch.gather(index, 1, keep.indices)


def knn_adjacency(features: torch.Tensor, k: int) -> sp.csr_matrix:
    """The kNN graph normalised as in FREEDOM/MMRec: value r_i^-1/2 · r_i^-1/2 = 1/k per edge.

    MMRec normalises with the row sums on both sides (every row has exactly k neighbours),
    so each row averages its k nearest items.
    """
    neighbours = cosine_top_k(features, k).numpy()
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    values = np.full(n * k, 1.0 / k, dtype=np.float32)
    return sp.csr_matrix((values, (rows, neighbours.ravel())), shape=(n, n), dtype=np.float32)


def multimodal_knn_adjacency(features: dict[str, torch.Tensor], k: int, image_weight: float) -> sp.csr_matrix:
    """Per-modality kNN graphs mixed as image_weight · image + (1 − image_weight) · text."""
    graphs = {m: knn_adjacency(f, k) for m, f in features.items()}
    if len(graphs) == 1:
        return next(iter(graphs.values()))
    return sp.csr_matrix(image_weight * graphs["image"] + (1.0 - image_weight) * graphs["text"])
