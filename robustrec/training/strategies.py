"""Step strategies: how one batch updates the model. The trainer runs whichever it is given.

- ``PlainStep``: loss, backward, optimizer step.
- ``MirrorGradientStep`` (Zhong et al., WWW 2024): on batches ``index % beta == 0`` a mirror
  step replaces the base step; other batches delegate to the wrapped base strategy, so MG
  composes with any other strategy (e.g. ``SharpnessAwareStep``).
- ``SharpnessAwareStep`` (Foret et al., ICLR 2021): gradient at the worst point of a ρ-ball.
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
            raise ConfigError(f"SAM needs rho > 0, got {self.rho}")

    def step(self, model, optimizer, batch, index):
        params = _params(optimizer)
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
        model.loss(*batch).backward()
        with torch.no_grad():
            for p, s in zip(params, shifts):
                p.sub_(s)
        optimizer.step()
        return float(loss.detach())
