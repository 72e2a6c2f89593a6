"""AMR adversarial training (Tang et al., TKDE 2019) as a loss wrapper the trainer composes.

AMR trains on L(θ) + λ · L(θ; x + Δ), where Δ is the FGSM perturbation of the item features x
that increases the loss most at the current weights: Δ = ε · Γ / ‖Γ‖ with Γ = ∂L/∂x. The paper
writes the norm per item image vector; its code (and APR's) normalises the gradient row by row
(``l2_normalize(grad, axis=1) * eps``), which is the reading here: every item row of every
modality that the batch reaches moves by ε · r̄_m in L2, r̄_m the mean row norm of modality m
(ε is relative, see ``robustrec.perturbations.adversarial``). Δ is a constant of the step (no
gradient flows through it), and Γ is taken from the same forward pass as L(θ), so an AMR step
costs about two forward and two backward passes.

The wrapper hands step strategies an object whose ``loss`` is the AMR objective, so it composes
with every strategy: Mirror Gradient (each of its forward passes recomputes Δ at the weights it
is taken at), SAM/ASAM (the ascent and the descent gradient are both of the AMR objective) and
SGBD. The models' own code is untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustrec.errors import ConfigError
from robustrec.perturbations.adversarial import mean_row_norm, row_step, substituted_features

METHODS = ("none", "amr")


def supports_amr(cls) -> bool:
    """Whether model class ``cls`` can be trained with AMR: its loss reads the feature buffers."""
    return bool(getattr(cls, "multimodal", False) and getattr(cls, "loss_reads_features", False))


def amr_refusal(cls) -> str:
    from robustrec.models import available_models, get_model_class

    ok = [name for name in available_models() if supports_amr(get_model_class(name))]
    why = "uses no item features" if not getattr(cls, "multimodal", False) else \
        "does not read its item features in its training loss (they enter through a cache or a graph)"
    return f"--adversarial amr perturbs item features: model {cls.name!r} {why}; AMR supports {', '.join(ok)}"


@dataclass
class AdversarialFeatureLoss:
    """The AMR objective; ``bind(model)`` gives what the step strategy trains."""

    eps: float = 0.1
    reg: float = 1.0

    def __post_init__(self) -> None:
        if not self.eps >= 0 or self.eps == float("inf"):
            raise ConfigError(f"--adv-eps must be a finite number >= 0, got {self.eps}")
        if not self.reg >= 0 or self.reg == float("inf"):
            raise ConfigError(f"--adv-reg must be a finite number >= 0, got {self.reg}")

    def bind(self, model) -> "AdversarialModel":
        if not supports_amr(type(model)):
            raise ConfigError(amr_refusal(type(model)))
        return AdversarialModel(model, self)


class AdversarialModel:
    """``model`` with ``loss`` = L(θ) + λ · L(θ; x + Δ_FGSM); everything else is the model's.
    (The epoch loss the trainer records is therefore this objective, not L alone.)"""

    def __init__(self, model, objective: AdversarialFeatureLoss) -> None:
        self.model = model
        self.objective = objective
        self.radii = {m: objective.eps * mean_row_norm(x) for m, x in model.features().items()}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def perturbation(self, users, pos, neg) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(clean loss with its graph, Δ per modality) for one batch."""
        model = self.model
        points = {m: x.detach().requires_grad_(True) for m, x in model.features().items()}
        with substituted_features(model, points):
            clean = model.loss(users, pos, neg)
        grads = torch.autograd.grad(clean, list(points.values()), retain_graph=True, allow_unused=True)
        if all(g is None for g in grads):
            raise ConfigError(amr_refusal(type(model)))
        deltas = {m: torch.zeros_like(points[m]) if g is None else row_step(g, self.radii[m])
                  for m, g in zip(points, grads)}
        return clean, deltas

    def loss(self, users, pos, neg) -> torch.Tensor:
        if self.objective.reg == 0:
            return self.model.loss(users, pos, neg)
        clean, deltas = self.perturbation(users, pos, neg)
        shifted = {m: x.detach() + deltas[m] for m, x in self.model.features().items()}
        with substituted_features(self.model, shifted):
            adversarial = self.model.loss(users, pos, neg)
        return clean + self.objective.reg * adversarial
