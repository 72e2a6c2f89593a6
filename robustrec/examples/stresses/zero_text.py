"""A user's stress kind: zero the text features of a share of items (``robustrec perturb zero-text``).

Load it with ``robustrec perturb zero-text RUN --plugins zero_text.py`` or ``plugins =
["zero_text.py"]`` in a study file. A kind is a ``StressSpec`` dataclass: its fields are the
command's options (``option(default, help)``), ``check()`` validates them, ``perturbations()``
gives one ``Perturbation`` per level and ``report_settings()`` what it adds to the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robustrec.perturbations.base import Perturbation, check_rate
from robustrec.studies.stresses import Repeats, StressSpec, option, parse_levels, register_stress


@dataclass(frozen=True)
class ZeroText(Perturbation):
    """The first ⌊rate·n + ½⌋ items of a seeded permutation get an all-zero text row."""

    rate: float
    n_items: int

    kind: ClassVar[str] = "zero-text"
    strength_name: ClassVar[str] = "rate"

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        return {"rate": self.rate}

    def unaffected_reason(self, model) -> str | None:
        if not getattr(model, "features_at_inference", False) or "text" not in getattr(model, "feature_names", ()):
            return "scores do not read text features at inference"
        return None

    def changed_items(self, seed: int) -> np.ndarray:
        count = int(math.floor(self.rate * self.n_items + 0.5))
        return np.sort(np.random.default_rng(seed).permutation(self.n_items)[:count])

    def _perturb_copy(self, model, seed: int) -> None:
        if self.unaffected_reason(model) is not None:
            return  # nothing of this model reads text at inference
        features = {m: x.detach().cpu().numpy() for m, x in model.features().items()}
        text = features["text"].copy()  # the model's buffer is shared with the clean model: copy
        text[self.changed_items(seed)] = 0.0
        model.set_item_features({**features, "text": text})


@register_stress
@dataclass
class ZeroTextStress(StressSpec):
    """Zero the text feature rows of a share of items at RATE, re-evaluate R times, report."""

    kind: ClassVar[str] = "zero-text"
    repeats: ClassVar[Repeats] = Repeats(3, "Draws per rate.")
    rate: str = option("0.1", "Share of items whose text row becomes zeros, or a comma list.")

    def check(self) -> "ZeroTextStress":
        self._rates = [check_rate(value) for value in parse_levels(self.rate, "--rate")]
        return self

    def perturbations(self, checkpoints, data) -> list:
        return [ZeroText(rate, data.n_items) for rate in self._rates]

    def report_settings(self, data) -> dict:
        return {"title": "zero-text", "description": "text rows of chosen items set to zeros"}

    def stress_modalities(self) -> list[str]:
        return ["text"]

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        return ZeroText(strength, data.n_items)
