"""Step strategies: how one batch updates the model. The trainer runs whichever it is given.

- ``PlainStep``: loss, backward, optimizer step.
- ``MirrorGradientStep`` (Zhong et al., WWW 2024): on batches ``index % beta == 0`` a mirror
  step replaces the base step; other batches delegate to the wrapped base strategy, so MG
  composes with any other strategy (e.g. ``SharpnessAwareStep``).
- ``SharpnessAwareStep`` (Foret et al., ICLR 2021): gradient at the worst point of a ρ-ball.
- ``AdaptiveSharpnessAwareStep`` (ASAM, Kwon et al., ICML 2021): the same with the ball scaled
  per weight by |w| + η, so the sharpness it minimises does not change when weights are rescaled.
- ``SharpMirrorStep``: SGBD's sharpness-aware Mirror Gradient (read from its abstract): mirror
  steps whose two gradients are taken at the SAM-perturbed point; ρ = 0 is Mirror Gradient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch

from robustrec.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class StepStrategy(Protocol):
    def step(self, model, optimizer: torch.optim.Optimizer, batch: Batch, index: int) -> float:
        """Update ``model`` on ``batch`` (the ``index``-th of its epoch); return the batch loss."""


def _params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


@dataclass
class PlainStep:
    """One backward pass and one optimizer step."""

    def step(self, model, optimizer, batch, index):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(*batch)
        loss.backward()
        optimizer.step()
        return float(loss.detach())


FORMS = ("optimizer", "literal")


@dataclass
class MirrorGradientStep:
    """Mirror Gradient with α1 > α2 > 0 and interval β ≥ 1.

    ``form="optimizer"`` (the authors' code): backward α1·L, optimizer step; a fresh forward
    pass of the same triplets; backward −α2·L, optimizer step.
    ``form="literal"`` (Algorithm 1): θ' = θ − α1·η·∇L(θ); θ = θ' + α2·η·∇L(θ'), with η the
    optimizer's learning rate and no optimizer state touched.
    """

    alpha1: float = 1.0
    alpha2: float = 0.1
    beta: int = 3
    form: str = "optimizer"
    base: StepStrategy = field(default_factory=PlainStep)

    def __post_init__(self) -> None:
        validate_mirror(self.alpha1, self.alpha2, self.beta, self.form)

    def is_mirror_batch(self, index: int) -> bool:
        return index % self.beta == 0

    def step(self, model, optimizer, batch, index):
        if not self.is_mirror_batch(index):
            return self.base.step(model, optimizer, batch, index)
        if self.form == "optimizer":
            return self._optimizer_form(model, optimizer, batch)
        return self._literal_form(model, optimizer, batch)

    def _optimizer_form(self, model, optimizer, batch) -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(*batch)
        (self.alpha1 * loss).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        (-self.alpha2 * model.loss(*batch)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    @torch.no_grad()
    def _apply(self, params, grads, scale_by_lr: list[float]) -> None:
        for p, g, s in zip(params, grads, scale_by_lr):
            if g is not None:
                p.add_(g, alpha=s)

    def _literal_form(self, model, optimizer, batch) -> float:
        params, lrs = [], []
        for group in optimizer.param_groups:
            for p in group["params"]:
                params.append(p)
                lrs.append(group["lr"])
        loss = model.loss(*batch)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        self._apply(params, grads, [-self.alpha1 * lr for lr in lrs])
        grads = torch.autograd.grad(model.loss(*batch), params, allow_unused=True)
        self._apply(params, grads, [self.alpha2 * lr for lr in lrs])
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())


def validate_mirror(alpha1: float, alpha2: float, beta: int, form: str) -> None:
    if not alpha2 > 0:
        raise ConfigError(f"Mirror Gradient needs alpha2 > 0, got {alpha2}")
    if not alpha1 > alpha2:
        raise ConfigError(f"Mirror Gradient needs alpha1 > alpha2, got alpha1={alpha1}, alpha2={alpha2}")
    if beta < 1:
        raise ConfigError(f"Mirror Gradient needs beta >= 1, got {beta}")
    if form not in FORMS:
        raise ConfigError(f"unknown Mirror Gradient form {form!r}; choose one of {', '.join(FORMS)}")


@dataclass
class SharpnessAwareStep:
    """SAM: perturb weights by ρ·g/‖g‖, take the gradient there, step from the original weights."""

    rho: float = 0.05

    def __post_init__(self) -> None:
        if self.rho <= 0:
            raise ConfigError(f"{type(self).__name__} needs rho > 0, got {self.rho}")

    def shifts(self, params: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """The ascent step ε added to the weights before the second gradient."""
        norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).clamp_min(1e-12)
        return [g * (self.rho / norm) for g in grads]

    def step(self, model, optimizer, batch, index):
        params = _params(optimizer)
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(*batch)
        loss.backward()
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            shifts = self.shifts(params, grads)
            for p, s in zip(params, shifts):
                p.add_(s)
        optimizer.zero_grad(set_to_none=True)
        model.loss(*batch).backward()
        with torch.no_grad():
            for p, s in zip(params, shifts):
                p.sub_(s)
        optimizer.step()
        return float(loss.detach())


@dataclass
class AdaptiveSharpnessAwareStep(SharpnessAwareStep):
    """ASAM (Kwon et al., ICML 2021): ε = ρ · T²g / ‖T g‖ with T = |w| + η element-wise, the
    worst point of an ellipsoid that grows with each weight's magnitude (scale-invariant
    sharpness). Kwon et al. use larger ρ than SAM (0.5 against 0.05 on CIFAR); η = 0.01."""

    rho: float = 0.5
    eta: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eta < 0:
            raise ConfigError(f"ASAM needs eta >= 0, got {self.eta}")

    def shifts(self, params, grads):
        scales = [p.detach().abs() + self.eta for p in params]
        norm = torch.sqrt(sum((t * g).pow(2).sum() for t, g in zip(scales, grads))).clamp_min(1e-12)
        return [t * t * g * (self.rho / norm) for t, g in zip(scales, grads)]


@dataclass
class SharpMirrorStep(MirrorGradientStep):
    """SGBD's sharpness-aware Mirror Gradient, in the natural reading of its abstract (the paper
    publishes no algorithm): on mirror batches, each of MG's two gradients is taken at the
    SAM-perturbed point θ + ρ·g/‖g‖ of the current weights (g the batch gradient there), and
    applied from the unperturbed weights — the first step with α1, the mirror step with −α2.
    Other batches use ``base`` (plain by default). ρ = 0 is Mirror Gradient exactly.
    """

    rho: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rho < 0:
            raise ConfigError(f"SGBD needs rho >= 0, got {self.rho}")

    def _optimizer_form(self, model, optimizer, batch) -> float:
        if self.rho == 0:
            return super()._optimizer_form(model, optimizer, batch)
        params = _params(optimizer)
        loss = self._sharp_backward(model, optimizer, params, batch, self.alpha1)
        optimizer.step()
        self._sharp_backward(model, optimizer, params, batch, -self.alpha2)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def _sharp_backward(self, model, optimizer, params, batch, scale: float) -> float:
        """Leave scale · ∇L(θ + ε) in the .grad fields, θ unchanged; return L(θ)."""
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(*batch)
        loss.backward()
        with torch.no_grad():
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).clamp_min(1e-12)
            shifts = [g * (self.rho / norm) for g in grads]
            for p, s in zip(params, shifts):
                p.add_(s)
        optimizer.zero_grad(set_to_none=True)
        (scale * model.loss(*batch)).backward()
        with torch.no_grad():
            for p, s in zip(params, shifts):
                p.sub_(s)
        return float(loss.detach())

    def _literal_form(self, model, optimizer, batch) -> float:
        if self.rho == 0:
            return super()._literal_form(model, optimizer, batch)
        params, lrs = [], []
        for group in optimizer.param_groups:
            for p in group["params"]:
                params.append(p)
                lrs.append(group["lr"])
        loss = float(model.loss(*batch).detach())
        for factor in (-self.alpha1, self.alpha2):
            grads = self._grads_at_sharp_point(model, params, batch)
            self._apply(params, grads, [factor * lr for lr in lrs])
        optimizer.zero_grad(set_to_none=True)
        return loss

    def _grads_at_sharp_point(self, model, params, batch):
        grads = torch.autograd.grad(model.loss(*batch), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        with torch.no_grad():
            norm = torch.sqrt(sum(g.pow(2).sum() for g in grads)).clamp_min(1e-12)
            shifts = [g * (self.rho / norm) for g in grads]
            for p, s in zip(params, shifts):
                p.add_(s)
        out = torch.autograd.grad(model.loss(*batch), params, allow_unused=True)
        with torch.no_grad():
            for p, s in zip(params, shifts):
                p.sub_(s)
        return out
