"""Item–item kNN graphs from item features (cosine similarity).

Neighbour lists are cached (memory, then ``robustrec.cache`` on disk) under a key made
of a hash of the feature *content* and k, so new (e.g. perturbed) features always get their own
graph, while unchanged ones (the image side of a caption perturbation, a reloaded checkpoint)
are not recomputed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from robustrec.cache import cache_key, cached_arrays

KNN_VERSION = 1


@torch.no_grad()
def cosine_top_k(features: torch.Tensor, k: int, block: int = 1024) -> torch.Tensor:
    """Indices (n × k) of each row's k most cosine-similar rows, itself included.

    The similarity matrix is symmetric, so only blocks on and above the diagonal are
    multiplied (about half the work of a full ``X Xᵀ``); each block updates the running
    top-k of both its row block and, transposed, its column block. Memory is O(n·k) plus two
    blocks: rows are normalised block by block (the same values as normalising all rows at
    once, without a second n × d copy of the features).
    """
    n = features.shape[0]
    k = min(k, n)
    best_values = torch.full((n, k), -torch.inf, device=features.device)
    best_index = torch.zeros((n, k), dtype=torch.int64, device=features.device)
    starts = list(range(0, n, block))
    for a, row_start in enumerate(starts):
        rows = slice(row_start, min(row_start + block, n))
        left = F.normalize(features[rows].float(), dim=1)
        for col_start in starts[a:]:
            cols = slice(col_start, min(col_start + block, n))
            right = left if col_start == row_start else F.normalize(features[cols].float(), dim=1)
            sim = left @ right.T
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


def cached_top_k(features: torch.Tensor, k: int) -> np.ndarray:
    """``cosine_top_k`` cached by a hash of the feature values and k.

    Computed on the CPU from the float32 values whatever device ``features`` live on, so a
    cached graph is the same for every device that reads it."""
    array = np.ascontiguousarray(features.detach().cpu().numpy(), dtype=np.float32)
    digest = hashlib.sha256(memoryview(array)).hexdigest()[:24]  # no copy of the features
    key = cache_key("item-knn", KNN_VERSION, list(array.shape), digest, k)
    build = lambda: {"indices": cosine_top_k(torch.from_numpy(array), k).numpy()}  # noqa: E731
    return cached_arrays("item_knn", key, build)["indices"]


def knn_adjacency(features: torch.Tensor, k: int) -> sp.csr_matrix:
    """The kNN graph normalised as in FREEDOM/MMRec: value r_i^-1/2 · r_i^-1/2 = 1/k per edge.

    MMRec normalises with the row sums on both sides (every row has exactly k neighbours),
    so each row averages its k nearest items.
    """
    neighbours = cached_top_k(features, k)
    n, k = neighbours.shape
    rows = np.repeat(np.arange(n), k)
    values = np.full(n * k, 1.0 / k, dtype=np.float32)
    return sp.csr_matrix((values, (rows, neighbours.ravel())), shape=(n, n), dtype=np.float32)


def modality_mix_weights(modalities, image_weight: float) -> dict[str, float]:
    """Weights of the per-modality item graphs (they sum to 1).

    MMRec mixes image and text as ``image_weight`` · image + (1 − ``image_weight``) · text; with
    any modalities, image keeps ``image_weight`` and the others share the rest equally (so
    image+text is exactly MMRec's mix). Without an image modality, or with image alone, every
    modality gets the same weight.
    """
    names = list(modalities)
    if "image" not in names or len(names) == 1:
        return {m: 1.0 / len(names) for m in names}
    rest = (1.0 - image_weight) / (len(names) - 1)
    return {m: image_weight if m == "image" else rest for m in names}


def multimodal_knn_adjacency(features: dict[str, torch.Tensor], k: int, image_weight: float) -> sp.csr_matrix:
    """Per-modality kNN graphs mixed with ``modality_mix_weights``."""
    graphs = {m: knn_adjacency(f, k) for m, f in features.items()}
    if len(graphs) == 1:
        return next(iter(graphs.values()))
    weights = modality_mix_weights(graphs, image_weight)
    return sp.csr_matrix(sum(weights[m] * g for m, g in graphs.items()))


def max_union(graphs) -> sp.csr_matrix:
    """Element-wise max of sparse graphs over the union of their edges (an edge absent from a
    graph does not count as 0 there, so a negative weight survives): SMORE's max-pool fusion."""
    coos = [sp.coo_matrix(g) for g in graphs]
    n_rows, n_cols = coos[0].shape
    keys = np.concatenate([c.row.astype(np.int64) * n_cols + c.col for c in coos])
    values = np.concatenate([c.data for c in coos])
    order = np.lexsort((-values, keys))  # by key, the largest value first within a key
    keys, values = keys[order], values[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    keys, values = keys[first], values[first]
    return sp.csr_matrix((values, (keys // n_cols, keys % n_cols)), shape=(n_rows, n_cols), dtype=np.float32)


@torch.no_grad()
def neighbour_similarities(features: torch.Tensor, neighbours: torch.Tensor, block: int = 512) -> torch.Tensor:
    """Cosine similarity of each row with each of its ``neighbours`` (n × k), row blocks at a
    time so that no n × k × dim gather is materialised (Baby's image side: 1.2 GB at once)."""
    x = F.normalize(features.float(), dim=1)
    out = torch.empty(neighbours.shape, dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], block):
        rows = slice(start, min(start + block, x.shape[0]))
        out[rows] = torch.bmm(x[neighbours[rows]], x[rows].unsqueeze(2)).squeeze(2)
    return out


def similarity_knn_adjacency(features: torch.Tensor, k: int, clip_negative: bool = True) -> sp.csr_matrix:
    """The kNN graph weighted by cosine similarity and normalised by row sums, as LATTICE, MGCN
    and SMORE build their frozen item–item graphs: w_ij = d_i^-1/2 · s_ij · d_j^-1/2 over each
    row's k nearest items (itself included), d_i = Σ_j s_ij over row i's kept neighbours (float64;
    a row whose sum is not positive gets weight 0). Not symmetric: i may be among j's neighbours
    but not j among i's. ``clip_negative`` (LATTICE, MGCN) sets negative similarities to 0 so no
    degree is negative; SMORE keeps them. With real features the top-k similarities are positive
    and the two agree. Memory O(items · k): similarities are computed in row blocks."""
    neighbours = torch.from_numpy(np.array(cached_top_k(features, k), dtype=np.int64))
    similarity = neighbour_similarities(features.detach().cpu(), neighbours)
    if clip_negative:
        similarity = similarity.clamp_min(0.0)
    similarity = similarity.numpy().astype(np.float64)
    n, k = neighbours.shape
    degree = similarity.sum(1)
    inv_sqrt = np.zeros(n)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    index = neighbours.numpy()
    values = inv_sqrt[:, None] * similarity * inv_sqrt[index]
    return sp.csr_matrix((values.ravel().astype(np.float32), (np.repeat(np.arange(n), k), index.ravel())),
                         shape=(n, n), dtype=np.float32)
