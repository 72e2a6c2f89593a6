"""Models with nothing to learn: what the popularity and item-kNN baselines share.

A fitted model (``trainable = False``) computes what it scores with from the training
interactions (and, for content kNN, the item features) in ``__init__``, deterministically, so
the checkpoint holds no tensors and ``load_model`` rebuilds it from the run's data. It has no
parameters, no loss and no embedding tables; the trainer evaluates it once (one epoch, no
optimizer) and refuses step strategies and AMR on it.

Item–item neighbour lists (``top_k_neighbours``) are built one block of rows at a time, so
memory stays O(block · items + items · k): each row keeps its ``k`` largest *positive*
similarities, itself excluded, ties broken by the lower item id.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender
from robustrec.runtime import rows_per_block

#: bytes of one dense float32 block of similarities (rows × items)
BLOCK_BYTES = 32 * 2 ** 20


def no_loss_message(name: str) -> str:
    return (f"model {name!r} is a fitted baseline with nothing to learn: it has no training loss, "
            f"so gradient-based steps, attacks and flatness measures do not apply to it")


class FittedRecommender(Recommender):
    """Base of the baselines: no parameters, no loss, no embedding tables.

    ``item_counts`` (each item's number of training interactions) is a non-persistent buffer:
    it is rebuilt from the data, and it tells ``model_device`` where the model lives.
    """

    trainable = False

    def __init__(self, data, params) -> None:
        super().__init__(data, params)
        counts = np.diff(sp.csc_matrix(data.train).indptr).astype(np.float32)
        self.register_buffer("item_counts", torch.from_numpy(counts), persistent=False)

    def loss(self, users, pos, neg):
        raise ConfigError(no_loss_message(self.name))

    def embedding_tables(self):
        return {}


class NeighbourScores(FittedRecommender):
    """score(u, i) = Σ_{j ∈ train(u)} W[j, i] for a sparse item–item weight matrix W.

    Subclasses set W with ``set_weights`` (a scipy matrix, items × items). The training rows
    are kept as CSR index tensors and densified per batch of users on the model's device.

    A user's training items are read at inference (``graph_at_inference``): an interactions
    stress replaces them (``interactions_changed``) and keeps W, the fitted part, as graph
    models keep their learned embeddings.
    """

    graph_at_inference = True

    def __init__(self, data, params) -> None:
        super().__init__(data, params)
        self._set_rows(sp.csr_matrix(data.train))
        self.weights_t: torch.Tensor | None = None

    def _set_rows(self, train: sp.csr_matrix) -> None:
        self.train_indptr = torch.from_numpy(train.indptr.astype(np.int64))
        self.train_indices = torch.from_numpy(train.indices.astype(np.int64))

    def interactions_changed(self, train) -> None:
        self._set_rows(train)
        device = self.item_counts.device
        self.train_indptr, self.train_indices = self.train_indptr.to(device), self.train_indices.to(device)

    def set_weights(self, weights: sp.spmatrix) -> None:
        from robustrec.models.graph import to_torch_csr

        self.weights_t = self.place(to_torch_csr(sp.csr_matrix(weights).T))

    def ranker(self):
        weights_t = self.weights_t

        def score(users: torch.Tensor) -> torch.Tensor:
            rows = training_rows(self.train_indptr, self.train_indices, users, self.n_items)
            return torch.sparse.mm(weights_t, rows.to(self.item_counts.dtype).T.contiguous()).T.contiguous()

        return score


def training_rows(indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor, n_items: int) -> torch.Tensor:
    """Dense 0/1 rows (len(users) × n_items) of the CSR matrix (indptr, indices), on the
    device of ``indptr``."""
    users = users.to(indptr.device)
    starts, stops = indptr[users], indptr[users + 1]
    counts = stops - starts
    row = torch.repeat_interleave(torch.arange(len(users), device=indptr.device), counts)
    first = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
    cols = indices[first + torch.arange(int(counts.sum()), device=indptr.device)]
    out = torch.zeros(len(users), n_items, device=indptr.device)
    out[row, cols] = 1.0
    return out


def top_k_neighbours(similarity: Callable[[int, int], np.ndarray], n: int, k: int) -> sp.csr_matrix:
    """W (n × n, CSR float32): row i keeps its ``k`` largest positive similarities to other
    items; ``similarity(start, stop)`` gives the dense (stop − start) × n block of rows."""
    block = rows_per_block(4 * max(n, 1), BLOCK_BYTES, low=1, high=max(n, 1))
    k = min(k, n - 1)
    rows, cols, values = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        sim = np.array(similarity(start, stop), dtype=np.float32)
        sim[np.arange(stop - start), np.arange(start, stop)] = 0.0
        sim[~(sim > 0)] = 0.0  # negative, zero and NaN similarities are no neighbours
        if k < 1:
            continue
        kth = -np.partition(-sim, k - 1, axis=1)[:, k - 1]
        above = sim > kth[:, None]
        tied = (sim == kth[:, None]) & (sim > 0)
        room = k - above.sum(axis=1)
        keep = above | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))
        r, c = np.nonzero(keep)
        rows.append(r + start)
        cols.append(c)
        values.append(sim[r, c])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n), dtype=np.float32)
