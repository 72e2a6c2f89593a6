"""The ``modality`` kind: a modality missing, swapped between items or noisy (docs/stress/modality.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robustrec.limits import check_numbers
from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class ModalityStress(StressSpec):
    """Modality faults: a modality missing (with a fill), swapped between items, or noisy; re-evaluate R times.

    Exactly one of --missing, --swap, --noise. Missing fills (Malitesta et al. CIKM 2024, DGMRec
    SIGIR 2025): zeros; mean = mean row of the items not missing; neighbours = mean row of the k
    items not missing that are most cosine-similar in another modality (ties to the lower id).
    Items: the first ⌊rate·n + ½⌋ of a seeded permutation. Models that do not use the modality,
    or whose scores ignore features at inference, are reported as unaffected by construction.
    """

    kind: ClassVar[str] = "modality"
    repeats: ClassVar[Repeats] = Repeats(5, "Draws per level.")
    missing: str | None = option(None, "Treat this modality's feature row as missing for a seeded share --rate of "
                                 "items and replace it by --fill.", metavar="MODALITY")
    swap: str | None = option(None, "Give a seeded share --rate of items the row of another chosen item (random "
                              "derangement).", metavar="MODALITY")
    noise: str | None = option(None, "Add N(0, (σ·scale)²) to every item's row; scale = mean row L2 norm / √dim "
                               "(the RMS entry).", metavar="MODALITY")
    rate: str | None = option(None, "Share of items hit by --missing/--swap, or a comma list (default 0.1).")
    sigma: str | None = option(None, "Noise std in units of the modality's RMS entry, or a comma list (--noise; "
                               "default 0.1).")
    fill: str | None = option(None, "--missing fill: zeros; mean (mean row of the items not missing; default); "
                              "neighbours (mean row of the --neighbour-k items nearest by cosine in "
                              "--neighbour-modality, among items not missing).")
    neighbour_k: int | None = option(None, "Neighbours averaged by --fill neighbours (default 10).")
    neighbour_modality: str | None = option(None, "Modality whose rows define neighbours for --fill neighbours "
                                            "(default: the model's first other modality).")

    def check(self) -> "ModalityStress":
        from robustrec.studies.modality_study import fault_spec

        self._spec, self._levels = fault_spec(self.missing, self.swap, self.noise, self.rate, self.sigma, self.fill,
                                              self.neighbour_k, self.neighbour_modality, parse_levels)
        if self._spec.fault == "noise":  # rates: check_rate keeps them in [0, 1]
            check_numbers(self._levels, "--sigma", "modality.sigma")
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.modality_study import check_against, run_modality_study

        check_against(self._spec, checkpoints, data)
        return StressOutcome([run_modality_study(checkpoints, data, self._spec, self._levels, settings, callbacks)])

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.perturbations.modality import FeatureSwap

        return FeatureSwap(data.modalities[0], data.n_items, strength)

    def stress_modalities(self) -> list[str]:
        return [str(name) for name in (self.missing, self.swap, self.noise, self.neighbour_modality) if name]
