"""Interaction edits at inference: drop a share of each user's training interactions, or add fake ones.

The model is given the edited training interactions (``Recommender.set_interactions``) and
rebuilds what it derives from them (propagation graphs, user–user graphs); its weights are not
retrained. Evaluation still masks the ORIGINAL training interactions: the protocol is fixed,
only what the model sees changes.

For user u with n_u training interactions, k_u = ⌊rate · n_u + ½⌋ (so ``rate`` is the share of
each user's training interactions dropped or added; rate 0 is the identity).

- ``drop``: k_u of u's training interactions, uniformly at random.
- ``add``: k_u fake interactions with items u never interacted with in any split (so no held-out
  positive leaks into the graph), chosen by the item choices of the classic shilling profiles
  (Lam & Riedl 2004; Mobasher et al. 2007), here injected into the real users' profiles (the
  models have no embedding for a user they were not trained on, so no fake accounts are added):
  ``random``: items uniformly at random; ``average``: items drawn with probability proportional
  to their training popularity plus one (the implicit-feedback analogue of average-rating filler);
  ``bandwagon``: the ⌈k_u/2⌉ most popular items u lacks (ties to the lower id), the rest uniform
  random filler.

A trial draws from ``numpy.random.default_rng(seed)``, users in id order: equal seeds give
equal graphs, and the input matrices are never written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation, check_rate

MODES = ("drop", "add")
PROFILES = ("random", "average", "bandwagon")


def check_mode(mode: str, profile: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    if profile not in PROFILES:
        raise ConfigError(f"--profile must be one of {', '.join(PROFILES)}, got {profile!r}")


def graph_unaffected_reason(model) -> str | None:
    if not getattr(model, "graph_at_inference", False):
        return "scores do not read the interaction graph at inference (no propagation or user graph)"
    return None


@dataclass(frozen=True)
class InteractionEdit(Perturbation):
    """Drop or add a share ``rate`` of every user's training interactions (module doc)."""

    mode: str
    rate: float
    train: sp.csr_matrix = field(repr=False, compare=False)
    #: every interaction of every split (added items avoid them); None: the training ones only
    known: sp.csr_matrix | None = field(default=None, repr=False, compare=False)
    profile: str = "random"
    _last: dict = field(default_factory=dict, repr=False, compare=False)  # the last trial's edit, by seed

    kind: ClassVar[str] = "interactions"
    strength_name: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        check_mode(self.mode, self.profile)
        check_rate(self.rate)

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        out: dict[str, object] = {"mode": self.mode, "rate": self.rate}
        if self.mode == "add":
            out["profile"] = self.profile
        return out

    def unaffected_reason(self, model) -> str | None:
        return graph_unaffected_reason(model)

    def counts(self) -> np.ndarray:
        """k_u for every user."""
        sizes = np.diff(self.train.indptr)
        return np.floor(self.rate * sizes + 0.5).astype(np.int64)

    def edited(self, seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
        """(the edited training matrix, the items whose interactions changed)."""
        if seed not in self._last:
            train = sp.csr_matrix(self.train, dtype=np.float32)  # a copy: the input is never written
            if self.rate == 0:
                result = train, np.zeros(0, dtype=np.int64)
            else:
                rng = np.random.default_rng(seed)
                result = self._drop(train, rng) if self.mode == "drop" else self._add(train, rng)
            self._last.clear()
            self._last[seed] = result
        return self._last[seed]

    def _drop(self, train, rng) -> tuple[sp.csr_matrix, np.ndarray]:
        rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
        keys = rng.random(train.nnz)
        order = np.lexsort((keys, rows))  # within each user, edges in random order
        rank = np.empty(train.nnz, dtype=np.int64)
        rank[order] = np.arange(train.nnz) - train.indptr[rows[order]]
        dropped = rank < self.counts()[rows]
        kept = sp.csr_matrix((np.ones(int((~dropped).sum()), np.float32),
                              (rows[~dropped], train.indices[~dropped])), shape=train.shape)
        return kept, np.unique(train.indices[dropped]).astype(np.int64)

    def _add(self, train, rng) -> tuple[sp.csr_matrix, np.ndarray]:
        known = sp.csr_matrix(train if self.known is None else (self.known + train))
        known.sort_indices()
        n_items = train.shape[1]
        popularity = np.bincount(train.indices, minlength=n_items).astype(np.float64)
        by_popularity = np.lexsort((np.arange(n_items), -popularity))
        cdf = np.cumsum(popularity + 1.0)
        cdf /= cdf[-1]
        counts = self.counts()
        rows, cols = [], []
        for user in np.flatnonzero(counts):
            have = known.indices[known.indptr[user]:known.indptr[user + 1]]
            k = int(min(counts[user], n_items - len(have)))
            if k <= 0:
                continue
            if self.profile == "bandwagon":
                top = math.ceil(k / 2)
                head = by_popularity[:len(have) + top]
                head = head[~np.isin(head, have)][:top]
                items = np.concatenate([head, _draw(rng, k - len(head), np.union1d(have, head), n_items, None)])
            else:
                items = _draw(rng, k, have, n_items, cdf if self.profile == "average" else None)
            rows.append(np.full(len(items), user, dtype=np.int64))
            cols.append(items)
        added_users = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        added_items = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        extra = sp.csr_matrix((np.ones(len(added_items), np.float32), (added_users, added_items)), shape=train.shape)
        edited = sp.csr_matrix(train + extra)
        edited.data[:] = 1.0
        return edited, np.unique(added_items)

    def changed_items(self, seed: int) -> np.ndarray:
        return self.edited(seed)[1]

    def trial_record(self, seed: int) -> dict[str, object]:
        edited, items = self.edited(seed)
        return {"interactions": int(edited.nnz), "changed_interactions": int(abs(edited.nnz - self.train.nnz)),
                "changed_items": int(len(items))}

    def _perturb_copy(self, model, seed: int) -> None:
        model.set_interactions(self.edited(seed)[0])


def _draw(rng, k: int, have: np.ndarray, n_items: int, cdf: np.ndarray | None) -> np.ndarray:
    """``k`` distinct items not in ``have`` (sorted), uniform or by ``cdf``; drawn in batches,
    rejecting known and repeated items, then from the explicit candidates if that stalls."""
    chosen = np.zeros(0, dtype=np.int64)
    for _ in range(20):
        if len(chosen) >= k:
            break
        size = 2 * (k - len(chosen)) + 4
        draws = (rng.integers(n_items, size=size) if cdf is None
                 else np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n_items - 1))
        draws = draws[~np.isin(draws, have) & ~np.isin(draws, chosen)]
        _, first = np.unique(draws, return_index=True)
        chosen = np.concatenate([chosen, draws[np.sort(first)]])[:k]
    if len(chosen) < k:  # dense user: choose among what is left
        left = np.setdiff1d(np.setdiff1d(np.arange(n_items), have), chosen)
        weights = None if cdf is None else np.diff(np.concatenate([[0.0], cdf]))[left]
        extra = rng.choice(left, k - len(chosen), replace=False,
                           p=None if weights is None else weights / weights.sum())
        chosen = np.concatenate([chosen, extra])
    return chosen.astype(np.int64)
