"""Modality faults: one item modality goes missing, gets swapped between items, or gets noisy.

Three perturbations of kind ``"modality"`` act on the raw feature rows of one modality M (any
name the model uses: image, text, audio, ...) and give the model copy the new rows through
``set_item_features``, which rebuilds whatever derives from them (kNN graphs, caches). The
clean feature buffers are never written to.

Which items (``MissingModality``, ``FeatureSwap``): a trial draws one permutation of all item ids
from ``numpy.random.default_rng(seed)`` and takes its first m = ⌊rate·n_items + ½⌋ entries, so the
share is exact and, for one seed, the items chosen at a smaller rate are among those chosen at a
larger one.

* ``MissingModality`` (Malitesta et al., "Do We Really Need to Drop Items with Missing Modalities
  in Multimodal Recommendation?", CIKM 2024; DGMRec, SIGIR 2025): the M row of each chosen item is
  missing and replaced by the fill

  - ``zeros``: the zero row;
  - ``mean``: the mean of the M rows of the items that were not chosen (the rows that remain
    present); the zero row if every item was chosen;
  - ``neighbours``: for each chosen item i, the mean of the M rows of its k nearest present items
    (not chosen, so never i itself), nearest by cosine similarity of the rows of another modality N
    the model uses (``neighbour_modality``; default the first modality of the model other than M,
    in the model's order). Ties go to the lower item id; fewer than k present items: all of them;
    none: the zero row. The N rows are the clean ones (only M is missing).

  When every item is missing (rate 1) mean and neighbours have no present row and fill zeros: the
  level's parameters say so (``fill_used``) and each trial counts those rows (``zero_filled``).

* ``FeatureSwap`` (DA-MRS, KDD 2024, misaligned content): the chosen items exchange their M rows by
  a uniformly random derangement (rejection sampling with the same generator), so every chosen
  item gets another chosen item's row when at least 2 are chosen; the multiset of rows is kept.
  With a single chosen item nothing changes.

* ``FeatureNoise``: every item's M row gets i.i.d. N(0, (σ·scale)²) noise per entry, where scale is
  the modality's RMS entry: the mean over items of ‖row‖₂ / √dim (computed on the clean rows).
  Noise is drawn from ``numpy.random.default_rng(seed)`` in float64 and added in float64.

A model is unaffected by construction (reported as such, never as robust) when it uses no item
features, does not use M, or its scores do not read item features at inference (e.g. BM3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robustrec.data.dataset import check_modality_name
from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation
from robustrec.perturbations.base import check_rate

FILLS = ("zeros", "mean", "neighbours")
FAULTS = ("missing", "swap", "noise")
DEFAULT_NEIGHBOUR_K = 10
#: ids listed in a trial record (the count is always complete)
RECORDED_ITEMS = 20
#: rows of chosen items scored against the present items at once (neighbour fill)
_NEIGHBOUR_BLOCK = 1024


def check_sigma(sigma: float) -> float:
    if not 0.0 <= sigma < math.inf:  # also rejects NaN
        raise ConfigError(f"--sigma must be a finite number >= 0, got {sigma}")
    return float(sigma)


def check_fill(fill: str) -> str:
    if fill not in FILLS:
        raise ConfigError(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    return fill


def check_neighbour_k(k: int) -> int:
    if k < 1:
        raise ConfigError(f"--neighbour-k must be >= 1, got {k}")
    return int(k)


def rms_scale(matrix) -> float:
    """Mean over rows of ‖row‖₂ / √dim: the root-mean-square entry of a typical row."""
    rows = np.asarray(matrix, dtype=np.float64)
    if rows.size == 0:
        return 0.0
    return float(np.linalg.norm(rows, axis=1).mean() / math.sqrt(rows.shape[1]))


def chosen_items(seed: int, n_items: int, rate: float) -> np.ndarray:
    """The first ⌊rate·n + ½⌋ ids of a seeded permutation of all items (in drawn order)."""
    count = min(n_items, int(math.floor(rate * n_items + 0.5)))
    return np.random.default_rng(seed).permutation(n_items)[:count]


def model_unaffected_reason(model, modality: str) -> str | None:
    """Why changing ``modality`` rows cannot change ``model``'s scores, or None when it can."""
    if not getattr(model, "multimodal", False):
        return "uses no item features"
    if modality not in getattr(model, "feature_names", ()):
        return f"does not use the {modality} modality"
    if not getattr(model, "features_at_inference", False):
        return "item features do not enter its scores at inference"
    return None


@dataclass(frozen=True)
class ModalityFault(Perturbation):
    """Shared parts of the modality faults: the modality, the item count, the contract."""

    modality: str
    n_items: int

    kind: ClassVar[str] = "modality"
    fault: ClassVar[str] = ""

    def __post_init__(self) -> None:
        check_modality_name(self.modality)
        if self.n_items < 0:
            raise ConfigError(f"n_items must be >= 0, got {self.n_items}")

    def unaffected_reason(self, model) -> str | None:
        return model_unaffected_reason(model, self.modality)

    def changed(self, seed: int) -> np.ndarray:
        """Ids of the items whose row trial ``seed`` changes, ascending."""
        raise NotImplementedError

    def changed_items(self, seed: int) -> np.ndarray:
        return self.changed(seed) if self.strength != 0 else np.zeros(0, dtype=np.int64)

    def trial_record(self, seed: int) -> dict[str, object]:
        items = self.changed(seed) if self.strength != 0 else np.zeros(0, dtype=np.int64)
        return {"changed_items": int(len(items)), "items": [int(i) for i in items[:RECORDED_ITEMS]]}

    def new_rows(self, features: dict[str, np.ndarray], seed: int, model) -> np.ndarray | None:
        """The perturbed M matrix (a new array), or None when the trial changes nothing."""
        raise NotImplementedError

    def _perturb_copy(self, model, seed: int) -> None:
        if self.unaffected_reason(model) is not None:
            return
        current = model.features()
        clean = {name: t.detach().cpu().numpy() for name, t in current.items()}
        if clean[self.modality].shape[0] != self.n_items:
            raise ConfigError(f"{self.modality} features of {model.name} have {clean[self.modality].shape[0]} "
                              f"rows, the fault was set up for {self.n_items} items")
        rows = self.new_rows(clean, seed, model)
        if rows is not None:
            model.set_item_features({**current, self.modality: rows.astype(np.float32)})


@dataclass(frozen=True)
class MissingModality(ModalityFault):
    """A seeded share ``rate`` of items lose their M row, replaced by ``fill`` (see module doc)."""

    rate: float = 0.1
    fill: str = "mean"
    neighbour_k: int = DEFAULT_NEIGHBOUR_K
    #: None: the first other modality of each model
    neighbour_modality: str | None = None

    strength_name: ClassVar[str] = "rate"
    fault: ClassVar[str] = "missing"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate(self.rate)
        check_fill(self.fill)
        check_neighbour_k(self.neighbour_k)
        if self.neighbour_modality is not None:
            check_modality_name(self.neighbour_modality)
            if self.neighbour_modality == self.modality:
                raise ConfigError(f"--neighbour-modality must differ from the missing modality {self.modality!r}")

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        out = {"fault": self.fault, "modality": self.modality, "rate": self.rate, "fill": self.fill}
        if self.fill == "neighbours":
            out.update(neighbour_k=self.neighbour_k, neighbour_modality=self.neighbour_modality or "first other")
        if self.falls_back_to_zeros:
            out["fill_used"] = "zeros: every item is missing, no present row to fill from"
        return out

    def changed(self, seed: int) -> np.ndarray:
        return np.sort(chosen_items(seed, self.n_items, self.rate))

    @property
    def falls_back_to_zeros(self) -> bool:
        """True when every item is missing, so a mean or neighbours fill has no present row to use
        and the missing rows become zeros (as ``fill = "zeros"``)."""
        count = min(self.n_items, int(math.floor(self.rate * self.n_items + 0.5)))
        return self.fill != "zeros" and count > 0 and count == self.n_items

    def trial_record(self, seed: int) -> dict[str, object]:
        """Changed items; when a mean or neighbours fill had no present item to use (every item
        missing), also ``zero_filled``: the rows filled with zeros instead (absent: none)."""
        record = super().trial_record(seed)
        if self.falls_back_to_zeros and record["changed_items"]:
            record["zero_filled"] = record["changed_items"]
        return record

    def neighbour_modality_of(self, model) -> str:
        """The modality whose rows define neighbours for ``model`` (ConfigError if it has none)."""
        names = tuple(getattr(model, "feature_names", ()))
        if self.neighbour_modality is not None:
            if self.neighbour_modality not in names:
                raise ConfigError(f"--neighbour-modality {self.neighbour_modality}: model {model.name!r} does not use "
                                  f"it (it uses {', '.join(names) or 'no item features'})")
            return self.neighbour_modality
        others = [m for m in names if m != self.modality]
        if not others:
            raise ConfigError(f"--fill neighbours needs a second modality to find neighbours in, but model "
                              f"{model.name!r} uses only {self.modality}; use --fill mean or zeros")
        return others[0]

    def new_rows(self, features, seed, model):
        missing = np.zeros(self.n_items, dtype=bool)
        missing[chosen_items(seed, self.n_items, self.rate)] = True
        if not missing.any():
            return None
        rows = features[self.modality].astype(np.float64)  # a new array
        if self.fill == "zeros":
            rows[missing] = 0.0
        elif self.fill == "mean":
            rows[missing] = rows[~missing].mean(axis=0) if (~missing).any() else 0.0
        else:
            other = features[self.neighbour_modality_of(model)]
            rows[missing] = neighbour_fill(rows, other, missing, self.neighbour_k)
        return rows


def neighbour_fill(rows: np.ndarray, other: np.ndarray, missing: np.ndarray, k: int) -> np.ndarray:
    """Fill rows of the ``missing`` items: mean ``rows`` of the k present items most cosine-similar
    in ``other`` (ties to the lower id; fewer present items: all of them; none: zeros)."""
    present = np.flatnonzero(~missing)
    targets = np.flatnonzero(missing)
    out = np.zeros((len(targets), rows.shape[1]), dtype=np.float64)
    if len(present) == 0:
        return out
    unit = np.asarray(other, dtype=np.float64)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    k = min(k, len(present))
    for start in range(0, len(targets), _NEIGHBOUR_BLOCK):
        block = targets[start:start + _NEIGHBOUR_BLOCK]
        similarity = unit[block] @ unit[present].T
        # stable sort of −similarity: equal similarities keep ascending item id order
        nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        out[start:start + len(block)] = rows[present[nearest]].mean(axis=1)
    return out


@dataclass(frozen=True)
class FeatureSwap(ModalityFault):
    """A seeded share ``rate`` of items exchange their M rows by a random derangement."""

    rate: float = 0.1

    strength_name: ClassVar[str] = "rate"
    fault: ClassVar[str] = "swap"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_rate(self.rate)

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        return {"fault": self.fault, "modality": self.modality, "rate": self.rate}

    def assignment(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(targets, sources): item ``targets[j]`` gets the row of item ``sources[j]`` ≠ it."""
        rng = np.random.default_rng(seed)
        count = min(self.n_items, int(math.floor(self.rate * self.n_items + 0.5)))
        targets = rng.permutation(self.n_items)[:count]
        if count < 2:
            return targets[:0], targets[:0]
        while True:
            order = rng.permutation(count)
            if not np.any(order == np.arange(count)):
                return targets, targets[order]

    def changed(self, seed: int) -> np.ndarray:
        return np.sort(self.assignment(seed)[0])

    def new_rows(self, features, seed, model):
        targets, sources = self.assignment(seed)
        if len(targets) == 0:
            return None
        clean = features[self.modality]
        rows = clean.copy()
        rows[targets] = clean[sources]
        return rows


@dataclass(frozen=True)
class FeatureNoise(ModalityFault):
    """Every item's M row gets N(0, (sigma·scale)²) noise per entry (scale: see ``rms_scale``).

    ``scale`` None: computed at apply time from the model's clean M rows.
    """

    sigma: float = 0.1
    scale: float | None = None

    strength_name: ClassVar[str] = "sigma"
    fault: ClassVar[str] = "noise"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_sigma(self.sigma)
        if self.scale is not None and not 0.0 <= self.scale < math.inf:
            raise ConfigError(f"noise scale must be a finite number >= 0, got {self.scale}")

    @property
    def strength(self) -> float:
        return self.sigma

    def parameters(self) -> dict[str, object]:
        out = {"fault": self.fault, "modality": self.modality, "sigma": self.sigma,
               "scale_rule": "mean over items of row L2 norm / sqrt(dim) (RMS entry) of the clean rows"}
        if self.scale is not None:
            out.update(scale=self.scale, noise_std=self.sigma * self.scale)
        return out

    def changed(self, seed: int) -> np.ndarray:
        if self.sigma == 0 or self.scale == 0:
            return np.zeros(0, dtype=np.int64)
        return np.arange(self.n_items)

    def new_rows(self, features, seed, model):
        clean = features[self.modality]
        scale = rms_scale(clean) if self.scale is None else self.scale
        noise = np.random.default_rng(seed).standard_normal(clean.shape)
        return clean.astype(np.float64) + noise * (self.sigma * scale)
