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

A trial draws from ``numpy.random.default_rng(seed)`` (added items in rounds of rejection sampling
over all users at once): equal seeds give
equal graphs, and the input matrices are never written.
"""

from __future__ import annotations

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
        n_users, n_items = train.shape
        known_rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(known.indptr))
        taken = known_rows * n_items + known.indices  # sorted (CSR, sorted indices): keys u·n + i
        popularity = np.bincount(train.indices, minlength=n_items).astype(np.float64)
        need = np.minimum(self.counts(), n_items - np.diff(known.indptr))
        chosen = np.zeros(0, dtype=np.int64)  # keys of the added interactions, in draw order
        if self.profile == "bandwagon":  # the most popular items each user lacks, ⌈k/2⌉ of them
            order = np.lexsort((np.arange(n_items), -popularity))
            head = -(-need // 2)
            got = np.zeros(n_users, dtype=np.int64)
            for item in order:
                users = np.flatnonzero(got < head)
                if len(users) == 0:
                    break
                keys = users * n_items + item
                fresh = ~_contains(taken, keys)
                chosen = np.concatenate([chosen, keys[fresh]])
                got[users[fresh]] += 1
            need = need - got
        cdf = None
        if self.profile == "average":
            cdf = np.cumsum(popularity + 1.0)
            cdf /= cdf[-1]
        for _ in range(64):  # rejection rounds: every user short of items draws 2·short + 2 more
            users = np.flatnonzero(need > 0)
            if len(users) == 0:
                break
            per = 2 * need[users] + 2
            who = np.repeat(users, per)
            items = (rng.integers(n_items, size=len(who)) if cdf is None
                     else np.minimum(np.searchsorted(cdf, rng.random(len(who)), side="right"), n_items - 1))
            keys = who * n_items + items
            ok = ~_contains(taken, keys) & ~np.isin(keys, chosen)
            keys, who = keys[ok], who[ok]
            _, first = np.unique(keys, return_index=True)
            first = np.sort(first)  # drop repeats, keep draw order
            keys, who = keys[first], who[first]
            rank = np.arange(len(who)) - np.searchsorted(who, who)  # who is sorted: position within user
            keep = rank < need[who]
            chosen = np.concatenate([chosen, keys[keep]])
            need -= np.bincount(who[keep], minlength=n_users)
        for user in np.flatnonzero(need > 0):  # a dense user the rounds could not fill
            mine = np.concatenate([taken[_row(taken, user, n_items)], chosen[_row(chosen, user, n_items)]])
            left = np.setdiff1d(np.arange(n_items), mine - user * n_items)
            weights = None if cdf is None else (popularity[left] + 1.0) / (popularity[left] + 1.0).sum()
            extra = rng.choice(left, int(need[user]), replace=False, p=weights)
            chosen = np.concatenate([chosen, user * n_items + extra])
        added_users, added_items = chosen // n_items, chosen % n_items
        extra = sp.csr_matrix((np.ones(len(chosen), np.float32), (added_users, added_items)), shape=train.shape)
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


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each of ``keys`` is in ``sorted_keys`` (ascending)."""
    at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
    return (sorted_keys[at] == keys) if len(sorted_keys) else np.zeros(len(keys), dtype=bool)


def _row(keys: np.ndarray, user: int, n_items: int) -> np.ndarray:
    """Mask of the keys of ``user``."""
    return (keys >= user * n_items) & (keys < (user + 1) * n_items)
