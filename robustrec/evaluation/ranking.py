"""Full-ranking evaluation: score every item for every user, mask training items, take top-K."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from robustrec.data.dataset import InteractionData
from robustrec.evaluation.metrics import DEFAULT_KS, all_metrics


@dataclass
class EvalResult:
    """Per-user metric values on one split; ``users[i]`` owns ``per_user[m][i]`` and ``top[i]``
    (its top-max(K) item ids, the lists the metrics were computed from) and ``hits[i]`` (which of
    them are held-out items)."""

    split: str
    users: np.ndarray
    per_user: dict[str, np.ndarray]
    ks: tuple[int, ...]
    top: np.ndarray | None = None
    hits: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        return {name: float(values.mean()) for name, values in self.per_user.items()}

    def __getitem__(self, metric: str) -> float:
        return float(self.per_user[metric].mean())


#: a scoring block's bytes when the memory budget allows it: the fastest size measured (below)
SPEED_BLOCK_BYTES = 24 * 2 ** 20
#: a scoring block may take this share of the memory budget (scores, the mask, top-K's workspace)
BUDGET_SHARE = 1 / 8


def score_block_users(n_items: int, budget_bytes: int | None = None) -> int:
    """Users per scoring block so that a float32 block (users × items) stays under ``budget_bytes``.

    None: ``SPEED_BLOCK_BYTES``, or ``BUDGET_SHARE`` of the memory budget
    (``robustrec.runtime.memory_budget``: ``--max-memory``) when that is smaller. Between 1 and 4,096
    users. Blocks below glibc's 32 MiB mmap threshold are recycled by the allocator instead of being
    mapped and page-faulted afresh for every block: ~20-25% less CPU per full ranking on Baby
    (7,050 items: 892 users per block) than blocks of 4,096 users. Blocks never change results:
    every user's scores and top-K are its own row.
    """
    from robustrec.runtime import memory_budget, rows_per_block

    if budget_bytes is None:
        budget_bytes = min(SPEED_BLOCK_BYTES, int(memory_budget() * BUDGET_SHARE))
    return rows_per_block(4 * max(n_items, 1), budget_bytes, low=1, high=4096)


@torch.no_grad()
def top_k_items(model, data: InteractionData, users: np.ndarray, k: int, batch_size: int = 0) -> np.ndarray:
    """Top-``k`` item ids per user (n_users × k), training items excluded.

    ``batch_size`` users are scored at a time; 0 picks ``score_block_users(n_items)`` (under the
    memory budget). With
    fewer than ``k`` items, the columns past ``n_items`` hold -1 (never a hit). Scores and
    top-K run on the model's device; only the top-K ids come back to the CPU.
    """
    from robustrec.device import model_device

    batch_size = batch_size or score_block_users(data.n_items)
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        score = model.ranker()
        out = np.full((len(users), k), -1, dtype=np.int64)
        ranked = min(k, data.n_items)
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = score(torch.from_numpy(batch).to(device))
            _mask_training(scores, data, batch)
            out[start:start + len(batch), :ranked] = torch.topk(scores, ranked, dim=1).indices.cpu().numpy()
        return out
    finally:
        model.train(was_training)


def full_ranking(model, data: InteractionData, split: str = "test", ks=DEFAULT_KS,
                 batch_size: int = 0) -> EvalResult:
    """Evaluate ``model`` on ``split`` ("valid" or "test") the MMRec way; never trains."""
    return evaluate_splits(model, data, (split,), ks, batch_size)[split]


def evaluate_splits(model, data: InteractionData, splits=("valid", "test"), ks=DEFAULT_KS,
                    batch_size: int = 0) -> dict[str, EvalResult]:
    """Evaluate several splits from one scoring + top-K pass over the union of their users."""
    truths = {split: data.split(split) for split in splits}
    has_truth = np.zeros(data.n_users, dtype=bool)
    for truth in truths.values():
        has_truth |= np.diff(truth.indptr) > 0
    all_users = np.flatnonzero(has_truth)
    top = top_k_items(model, data, all_users, max(ks), batch_size)
    results = {}
    for split, truth in truths.items():
        counts = np.diff(truth.indptr)
        users = np.flatnonzero(counts > 0)
        rows = np.searchsorted(all_users, users)
        hits = _hit_matrix(truth, users, top[rows])
        results[split] = EvalResult(split, users, all_metrics(hits, counts[users], ks), tuple(ks), top[rows],
                                    hits)
    return results


def _mask_training(scores: torch.Tensor, data: InteractionData, users: np.ndarray) -> None:
    rows_of_users = data.train[users]
    rows = np.repeat(np.arange(len(users)), np.diff(rows_of_users.indptr))
    cols = rows_of_users.indices.astype(np.int64)
    scores[torch.from_numpy(rows).to(scores.device), torch.from_numpy(cols).to(scores.device)] = -torch.inf


def _hit_matrix(truth, users: np.ndarray, top: np.ndarray) -> np.ndarray:
    """hits[u, r]: is item ``top[u, r]`` among user ``users[u]``'s held-out items."""
    n_items = truth.shape[1]
    keys = truth.indices.astype(np.int64) + np.repeat(np.arange(truth.shape[0], dtype=np.int64),
                                                      np.diff(truth.indptr)) * n_items
    query = top + users[:, None] * n_items
    pos = np.searchsorted(keys, query)
    pos[pos == len(keys)] = 0
    return (keys[pos] == query) & (top >= 0)
