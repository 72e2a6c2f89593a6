"""The ``adversarial`` kind: FGSM/PGD on item features or ID embeddings (docs/stress/adversarial.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robustrec.limits import check_numbers
from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class AdversarialStress(StressSpec):
    """Worst-case stress: FGSM/PGD on features or embeddings maximising each model's training loss; re-evaluate.

    Not a random draw: the direction increases the model's own training loss on a seeded sample
    of 4,096 training triplets. Models the target cannot reach (features on an ID-only model) are
    reported as unaffected by construction.
    """

    kind: ClassVar[str] = "adversarial"
    repeats: ClassVar[Repeats] = Repeats(1, "Attacks per ε, each on a fresh seeded sample of training triplets.")
    target: str = option("features", "What the attack moves: features (item feature rows) or embeddings (ID "
                         "embedding table rows).")
    eps: str = option("0.1", "Budget ε per row, relative (L2 radius = ε × the mean row norm of the feature matrix "
                      "/ table), or a comma list for a severity sweep.")
    steps: int = option(1, "1 = FGSM; more = PGD with that many steps of 2.5·ε/steps, projected.")

    def check(self) -> "AdversarialStress":
        from robustrec.perturbations.adversarial import check_attack, check_target

        self._epsilons = parse_levels(self.eps, "--eps")
        check_target(self.target)
        for value in self._epsilons:
            check_attack(value, self.steps)
        check_numbers(self._epsilons, "--eps", "adversarial.eps")  # finite and not absurd (robustrec.limits)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.adversarial_study import run_adversarial_study

        return StressOutcome([run_adversarial_study(checkpoints, data, self._epsilons, self.target, self.steps,
                                                    settings, callbacks)])

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.perturbations.adversarial import AdversarialPerturbation

        return AdversarialPerturbation(strength, "embeddings", 1, data=data, samples=64)
