"""Top-K metrics as pure functions of a hit matrix (MMRec's definitions).

``hits`` is a boolean array (n_users × max_k): ``hits[u, r]`` is True when the item ranked
``r`` (0-based) for user ``u`` is one of the user's held-out items. ``n_relevant[u]`` is the
number of held-out items of user ``u``. Every function returns one value per user.
"""

from __future__ import annotations

import numpy as np

METRICS = ("recall", "precision", "map", "ndcg")
DEFAULT_KS = (5, 10, 20, 50)


def recall(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / n_relevant


def precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    return hits[:, :k].sum(axis=1) / k


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG; the ideal DCG places min(|relevant|, K) hits on top."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[:, :k] * discounts).sum(axis=1)
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def average_precision(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """MAP@K = (1 / min(|relevant|, K)) · Σ_{i≤K} P@i · rel(i)."""
    top = hits[:, :k].astype(np.float64)
    precision_at = np.cumsum(top, axis=1) / np.arange(1, k + 1)
    return (precision_at * top).sum(axis=1) / np.minimum(n_relevant, k)


_FUNCTIONS = {"recall": recall, "precision": precision, "map": average_precision, "ndcg": ndcg}


def all_metrics(hits: np.ndarray, n_relevant: np.ndarray, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user values of every metric at every K, keyed ``"<metric>@<k>"``."""
    if hits.shape[1] < max(ks):
        raise ValueError(f"hit matrix has {hits.shape[1]} columns, fewer than K={max(ks)}")
    if (n_relevant < 1).any():
        raise ValueError("every evaluated user needs at least one relevant item")
    return {f"{name}@{k}": fn(hits, n_relevant, k) for name, fn in _FUNCTIONS.items() for k in ks}
