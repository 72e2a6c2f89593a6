"""The ``noise`` kind: Gaussian noise on the ID embedding tables (docs/stress/noise.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robustrec.limits import check_numbers
from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class NoiseStress(StressSpec):
    """Add Gaussian noise N(0, σ²) to the checkpoints' embedding tables, re-evaluate R times, report."""

    kind: ClassVar[str] = "noise"
    repeats: ClassVar[Repeats] = Repeats(10, "Noise draws per σ (paper: 10).")
    sigma: str = option("1e-3", "Noise std σ, or a comma list for a severity sweep (paper: 1e-3).")
    target: str = option("all", "Embedding tables to perturb: all, user or item.")
    flatness: bool = option(True, "Measure training-loss flatness.")

    def check(self) -> "NoiseStress":
        from robustrec.perturbations import GaussianEmbeddingNoise

        self._sigmas = parse_levels(self.sigma, "--sigma")
        for value in self._sigmas:
            GaussianEmbeddingNoise(value, self.target)  # validates σ and target
        check_numbers(self._sigmas, "--sigma", "noise.sigma")  # finite and not absurd (robustrec.limits)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.noise_study import run_noise_study

        return StressOutcome([run_noise_study(checkpoints, data, self._sigmas, self.target, settings, callbacks,
                                              self.flatness)])

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.perturbations import GaussianEmbeddingNoise

        return GaussianEmbeddingNoise(strength, "all")
