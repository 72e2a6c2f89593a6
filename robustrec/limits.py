"""The allowed range of every numeric option, and the one check they all go through.

Every float a command or a study file takes (a noise σ, a rate, a landscape span, a learning rate, ...)
must be finite and inside its option's range: `inf`, `nan` or an absurd `1e30` is refused before any
work with one line naming the range (`ConfigError`, exit 2), so no run trains on it and no report
records it (JSON has no Infinity or NaN). `LIMITS` states each range once; the upper bounds are far past
any setting that still measures something (the MG paper's landscape spans ±100, its noise σ is 1e-3).
Rates (in [0, 1], `robustrec.perturbations.base.check_rate`) and photo-edit strengths
(`robustrec.perturbations.image_edits.STRENGTHS`) have closed ranges of their own, checked the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from robustrec.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """A closed range [low, high], or (low, high] when `open_low`."""

    low: float
    high: float
    open_low: bool = False

    def __str__(self) -> str:
        return f"{'(' if self.open_low else '['}{self.low:g}, {self.high:g}]"

    def holds(self, value: float) -> bool:
        above_low = self.low < value if self.open_low else self.low <= value
        return math.isfinite(value) and above_low and value <= self.high


LIMITS: dict[str, Limit] = {
    # robustrec landscape / flatness
    "landscape.span": Limit(0, 1000, open_low=True),
    "flatness.sigma": Limit(0, 100),
    "flatness.step": Limit(0, 100),
    "flatness.rho": Limit(0, 1000),
    # robustrec perturb ... and the same keys of a study's [[stress]] tables
    "noise.sigma": Limit(0, 100),
    "adversarial.eps": Limit(0, 100),
    "modality.sigma": Limit(0, 100),
    # robustrec train and a study's [train] / [strategy.*] tables
    "train.lr": Limit(0, 10, open_low=True),
    "train.weight_decay": Limit(0, 100),
    "train.alpha1": Limit(0, 100),
    "train.alpha2": Limit(0, 100),
    "train.rho": Limit(0, 10),
    "train.adv_eps": Limit(0, 100),
    "train.adv_reg": Limit(0, 1000),
}


def check_number(value, flag: str, option: str) -> float:
    """`value` as a float if it is a finite number inside `LIMITS[option]`; else a one-line ConfigError
    naming `flag` and the range (`--span must be a finite number in (0, 1000], got inf`)."""
    limit = LIMITS[option]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{flag} must be a finite number in {limit}, got {value!r}") from None
    if isinstance(value, bool) or not limit.holds(number):
        shown = f"{number:g}" if not isinstance(value, bool) else repr(value)
        raise ConfigError(f"{flag} must be a finite number in {limit}, got {shown}")
    return number


def check_numbers(values, flag: str, option: str) -> list[float]:
    """`check_number` on each of `values` (the levels of a severity sweep)."""
    return [check_number(value, flag, option) for value in values]


def first_non_finite(value, path: str = "") -> tuple[str, float] | None:
    """(where, value) of the first NaN or ±inf float inside nested dicts/lists, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "value", value
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    for where, item in items:
        found = first_non_finite(item, where)
        if found is not None:
            return found
    return None


def finite_json(document, what: str, hint: str, **options) -> str:
    """`json.dumps(document, allow_nan=False, **options)`: a file other tools can read (JSON has no NaN or
    Infinity); a non-finite number is a one-line ConfigError naming `what`, where it is, and `hint`."""
    import json

    found = first_non_finite(document)
    if found is not None:
        where, value = found
        raise ConfigError(f"{what} is not finite ({where} = {value}), so it cannot be written as JSON; {hint}")
    return json.dumps(document, allow_nan=False, **options)
