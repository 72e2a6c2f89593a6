"""Who and what a stress moves, beyond the accuracy drop: pure functions of top-K lists.

Everything here is computed from the top-K item lists the evaluation already produced (clean
and perturbed, users in the same order), the training interactions and the held-out items:
no scoring, no training.

- rank stability: Jaccard@K (|A ∩ B| / |A ∪ B| of the two top-K sets) and rank-biased overlap
  (RBO, p = 0.9, extrapolated at depth K: Webber et al. 2010, eq. 32; 1 for equal lists, 0 for
  disjoint ones) between each user's clean and perturbed list, averaged over users;
- edited items: mean rank shift (perturbed rank − clean rank over the (user, item) pairs in
  either top-K list; an item outside a list ranks K + 1; > 0: pushed down) and mean exposure
  change (top-K lists holding the item, perturbed − clean) of the items the stress changed
  and of the other items;
- exposure: share of long-tail items in the top-K slots (long tail = items outside the most
  popular 20% by training interactions), Gini of item exposure (top-K lists holding each item,
  over all items) and mean training popularity of the recommended items;
- slices: recall@K of users per training-activity tercile, and recall@K restricted to the
  held-out items of each item-popularity tercile, and of items with / without content of a
  modality (its coverage mask).

Terciles split by rank (stable: ties go to the lower id first) into three groups of equal
size, "low", "mid", "high".

In a report (``studies.runner``), at every K of the report:

- ``entry["clean_moves"]``: the clean lists' ``long_tail_share@K``, ``gini@K``,
  ``mean_popularity@K`` and slice recalls ``recall@K|users:low`` ... ``recall@K|items:high``,
  ``recall@K|<modality>:with`` / ``:without`` (modalities with a coverage mask only);
- ``trial["moves"]``: the same for the perturbed lists, plus ``jaccard@K``, ``rbo@K`` and, when
  the stress changes particular items, ``edited_rank_shift@K``, ``other_rank_shift@K``,
  ``edited_exposure_change@K``, ``other_exposure_change@K``;
- ``level["moves"]``: per number, mean and 95% t-interval over the trials (the drop's seeds);
  with a clean value also ``clean`` and ``change`` (perturbed − clean, mean and interval), and
  for slices ``drop_pct`` (relative drop %, mean and interval); ``level["moves_items"]`` says
  what the edited/other numbers cover ("not item-specific", "all items", or changed vs others).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RBO_P = 0.9
#: share of items (by training popularity) that are the head; the rest is the long tail
HEAD_SHARE = 0.2
TERCILES = ("low", "mid", "high")
#: entries of one position table (users × items) when matching lists
_TABLE_ENTRIES = 2 ** 22


# --- pure building blocks ---------------------------------------------------------------------


def overlap_at_depths(clean: np.ndarray, perturbed: np.ndarray, match=None) -> np.ndarray:
    """X[u, d-1] = |clean[u, :d] ∩ perturbed[u, :d]| for d = 1..K (-1 entries are no item).

    ``match``: ``_match(clean, perturbed)`` when the caller has it already."""
    clean, perturbed = np.asarray(clean), np.asarray(perturbed)
    n, k = clean.shape
    found, pos = match or _match(clean, perturbed)
    depth = np.where(found, np.maximum(np.arange(k)[None, :], pos), k)  # first depth (0-based) it counts
    rows = np.arange(n)[:, None] * (k + 1)
    counts = np.bincount((depth + rows).ravel(), minlength=n * (k + 1)).reshape(n, k + 1)
    return counts[:, :k].cumsum(axis=1)


def _match(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found, pos): is a[u, i] in b[u], and at which position of b[u] (0 where not found).

    One dense position table (block of users × items, int16, at most ``_TABLE_ENTRIES``
    entries) filled once; each block writes b's positions, reads a's and resets what it wrote,
    so the cost is O(users · K), not O(users · items): faster than sorting the lists.
    """
    k = b.shape[1]
    n = int(max(a.max(initial=0), b.max(initial=0))) + 1  # column n: the -1 entries (no item)
    found, pos = np.zeros(a.shape, dtype=bool), np.zeros(a.shape, dtype=np.int64)
    step = max(1, min(len(a), _TABLE_ENTRIES // (n + 1)))
    table = np.full((step, n + 1), k, dtype=np.int16)
    for start in range(0, len(a), step):
        block_a, block_b = a[start:start + step], b[start:start + step]
        rows = np.arange(len(block_a))[:, None]
        columns = np.where(block_b >= 0, block_b, n)
        table[rows, columns] = np.arange(k, dtype=np.int16)
        table[:, n] = k
        where = table[rows, np.where(block_a >= 0, block_a, n)]
        table[rows, columns] = k
        found[start:start + step] = where < k
        pos[start:start + step] = np.where(where < k, where, 0)
    return found, pos


def jaccard(clean: np.ndarray, perturbed: np.ndarray, k: int, overlaps: np.ndarray | None = None) -> np.ndarray:
    """Per-user Jaccard@k of the two top-k sets (1 when both are empty)."""
    x = (overlap_at_depths(clean[:, :k], perturbed[:, :k]) if overlaps is None else overlaps)[:, k - 1]
    union = (clean[:, :k] >= 0).sum(axis=1) + (perturbed[:, :k] >= 0).sum(axis=1) - x
    return np.where(union > 0, x / np.maximum(union, 1), 1.0)


def rbo(clean: np.ndarray, perturbed: np.ndarray, k: int, p: float = RBO_P,
        overlaps: np.ndarray | None = None) -> np.ndarray:
    """Per-user extrapolated RBO at depth k: (X_k/k)·p^k + (1−p)/p · Σ_{d≤k} (X_d/d)·p^d."""
    x = (overlap_at_depths(clean[:, :k], perturbed[:, :k]) if overlaps is None else overlaps)[:, :k]
    depths = np.arange(1, k + 1)
    agreement = x / depths
    return agreement[:, k - 1] * p ** k + (1 - p) / p * (agreement * p ** depths).sum(axis=1)


def item_exposure(top: np.ndarray, n_items: int, k: int) -> np.ndarray:
    """Number of top-k lists holding each item (length ``n_items``)."""
    items = top[:, :k].ravel()
    return np.bincount(items[items >= 0], minlength=n_items)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values`` (0: equal; → 1: one holds all; 0 when all are 0)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    return float(((2 * np.arange(1, n + 1) - n - 1) * x).sum() / (n * total))


def long_tail_mask(popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """True for long-tail items: all but the ⌈head_share·n⌉ most popular (ties: lower id is head)."""
    popularity = np.asarray(popularity)
    head = int(np.ceil(head_share * len(popularity)))
    order = np.argsort(-popularity, kind="stable")
    tail = np.ones(len(popularity), dtype=bool)
    tail[order[:head]] = False
    return tail


def slot_mean(top: np.ndarray, values: np.ndarray, k: int) -> float | None:
    """Mean of ``values[item]`` over the filled top-k slots (None when there are none)."""
    items = top[:, :k].ravel()
    items = items[items >= 0]
    return float(np.asarray(values, dtype=np.float64)[items].mean()) if len(items) else None


def terciles(values: np.ndarray) -> np.ndarray:
    """0/1/2 (low/mid/high) per entry: rank split into three equal groups (stable in ties)."""
    values = np.asarray(values)
    labels = np.empty(len(values), dtype=np.int64)
    labels[np.argsort(values, kind="stable")] = np.arange(len(values)) * 3 // max(len(values), 1)
    return labels


def rank_shifts(clean: np.ndarray, perturbed: np.ndarray, k: int, changed: np.ndarray,
                matches=None) -> dict[str, tuple[float, int]]:
    """Sum and count of (perturbed rank − clean rank) over the (user, item) pairs of either
    top-k list, for changed items ("edited") and the others ("other"); outside a list = k + 1.

    ``matches``: ``(_match(clean, perturbed), _match(perturbed, clean))`` of the full lists, when
    the caller has them already."""
    (found_a, pos_a), (found_b, pos_b) = matches or (_match(clean, perturbed), _match(perturbed, clean))
    a, b = clean[:, :k], perturbed[:, :k]
    in_b = found_a[:, :k] & (pos_a[:, :k] < k)
    in_a = found_b[:, :k] & (pos_b[:, :k] < k)
    ranks = np.arange(1, k + 1)
    shift_a = np.where(in_b, pos_a[:, :k] + 1, k + 1) - ranks[None, :]  # items of the clean list
    shift_b = np.broadcast_to(ranks[None, :] - (k + 1), b.shape)  # items only in the perturbed list
    out = {"edited": [0.0, 0], "other": [0.0, 0]}
    for items, shift, keep in ((a, shift_a, a >= 0), (b, shift_b, (b >= 0) & ~in_a)):
        edited = np.zeros(items.shape, dtype=bool)
        edited[keep] = changed[items[keep]]
        for name, mask in (("edited", keep & edited), ("other", keep & ~edited)):
            out[name][0] += float(shift[mask].sum())
            out[name][1] += int(mask.sum())
    return {name: (total, count) for name, (total, count) in out.items()}


def sliced_recall(hits: np.ndarray, top: np.ndarray, n_relevant_in: np.ndarray, item_mask: np.ndarray,
                  k: int) -> float | None:
    """Mean over users with held-out items in ``item_mask`` of their recall@k on those items."""
    users = n_relevant_in > 0
    if not users.any():
        return None
    items = top[users, :k]
    in_slice = np.zeros(items.shape, dtype=bool)
    in_slice[items >= 0] = item_mask[items[items >= 0]]
    return float(((hits[users, :k] & in_slice).sum(axis=1) / n_relevant_in[users]).mean())


# --- the context of one evaluation (fixed for a checkpoint) and the numbers of one list set ------


@dataclass
class MoveContext:
    """What the move numbers of one split need besides the lists: popularity, slices, truth."""

    ks: tuple[int, ...]
    users: np.ndarray
    truth: object  # csr held-out matrix (users × items)
    popularity: np.ndarray
    tail: np.ndarray
    user_tercile: np.ndarray  # of the evaluated users
    item_slices: dict[str, np.ndarray] = field(default_factory=dict)  # name -> item mask
    relevant_in: dict[str, np.ndarray] = field(default_factory=dict)  # name -> per-user held-out count

    @classmethod
    def build(cls, data, split: str, users: np.ndarray, ks) -> "MoveContext":
        truth = data.split(split)
        popularity = np.bincount(data.train.indices, minlength=data.n_items).astype(np.int64)
        activity = np.diff(data.train.indptr)[users]
        item_tercile = terciles(popularity)
        slices = {f"items:{name}": item_tercile == i for i, name in enumerate(TERCILES)}
        for modality in sorted(getattr(data, "masks", {}) or {}):
            mask = np.asarray(data.coverage(modality), dtype=bool)
            if mask.all():
                continue
            slices[f"{modality}:with"], slices[f"{modality}:without"] = mask, ~mask
        rows = truth[users]
        relevant = {name: np.asarray(rows[:, np.flatnonzero(mask)].sum(axis=1)).ravel() for name, mask in slices.items()}
        return cls(tuple(ks), users, truth, popularity, long_tail_mask(popularity), terciles(activity), slices,
                   relevant)

    def exposure(self, top: np.ndarray) -> dict[str, float | None]:
        """Long-tail share, Gini of exposure and mean popularity of the top-K lists, at each K."""
        out = {}
        for k in self.ks:
            out[f"long_tail_share@{k}"] = slot_mean(top, self.tail, k)
            out[f"gini@{k}"] = gini(item_exposure(top, len(self.popularity), k))
            out[f"mean_popularity@{k}"] = slot_mean(top, self.popularity, k)
        return out

    def slices(self, top: np.ndarray, per_user: dict[str, np.ndarray],
               hits: np.ndarray | None = None) -> dict[str, float | None]:
        """recall@K per user-activity tercile and on the held-out items of each item slice
        (``hits``: the evaluation's hit matrix of ``top``, recomputed when not given)."""
        if hits is None:
            from robustrec.evaluation.ranking import _hit_matrix

            hits = _hit_matrix(self.truth, self.users, top)
        out = {}
        for k in self.ks:
            recall = per_user[f"recall@{k}"]
            for i, name in enumerate(TERCILES):
                chosen = self.user_tercile == i
                out[f"recall@{k}|users:{name}"] = float(recall[chosen].mean()) if chosen.any() else None
            for name, mask in self.item_slices.items():
                out[f"recall@{k}|{name}"] = sliced_recall(hits, top, self.relevant_in[name], mask, k)
        return out

    def clean_moves(self, top: np.ndarray, per_user: dict[str, np.ndarray],
                    hits: np.ndarray | None = None) -> dict[str, float | None]:
        return {**self.exposure(top), **self.slices(top, per_user, hits)}

    def trial_moves(self, clean_top: np.ndarray, top: np.ndarray, per_user: dict[str, np.ndarray],
                    changed: np.ndarray | None, hits: np.ndarray | None = None) -> dict[str, float | None]:
        """Every move number of one perturbed trial (``changed``: item mask, None = not item-specific)."""
        out: dict[str, float | None] = {}
        match = _match(clean_top, top)
        overlaps = overlap_at_depths(clean_top, top, match)
        for k in self.ks:
            out[f"jaccard@{k}"] = float(jaccard(clean_top, top, k, overlaps).mean())
            out[f"rbo@{k}"] = float(rbo(clean_top, top, k, overlaps=overlaps).mean())
        if changed is not None:
            n_items = len(self.popularity)
            matches = (match, _match(top, clean_top))
            for k in self.ks:
                shifts = rank_shifts(clean_top, top, k, changed, matches)
                change = item_exposure(top, n_items, k) - item_exposure(clean_top, n_items, k)
                for name, mask in (("edited", changed), ("other", ~changed)):
                    total, count = shifts[name]
                    out[f"{name}_rank_shift@{k}"] = total / count if count else None
                    out[f"{name}_exposure_change@{k}"] = float(change[mask].mean()) if mask.any() else None
        out.update(self.exposure(top))
        out.update(self.slices(top, per_user, hits))
        return out


def summarize_moves(clean: dict[str, float | None], trials: list[dict[str, float | None]]) -> dict[str, dict]:
    """Per move number over the trials: mean and 95% t-interval; with a clean value also the
    change (perturbed − clean) and, for slices (recall), the relative drop % of each trial."""
    from robustrec.evaluation.stats import finite_or_none, t_interval

    def spread(values):
        values = np.asarray([v for v in values if v is not None], dtype=np.float64)
        if not len(values):
            return {"mean": None, "ci95": [None, None]}
        return {"mean": finite_or_none(values.mean()), "ci95": list(t_interval(values))}

    out = {}
    for key in trials[0] if trials else []:
        values = [t.get(key) for t in trials]
        row = spread(values)
        base = clean.get(key)
        if base is not None:
            row["clean"] = base
            row["change"] = spread([None if v is None else v - base for v in values])
            if "|" in key:
                row["drop_pct"] = spread([None if v is None or not base else (base - v) / base * 100 for v in values])
        out[key] = row
    return out
