"""Cheap flatness figures of a trained model on its own BPR training loss.

Both measures evaluate ``model.loss`` (the training objective, regulariser included) on a
fixed, seeded sample of training triplets with the model in eval mode:

- ``noise_sensitivity``: the increase L(θ + σ·z) − L(θ) under random Gaussian weight
  perturbations z ~ N(0, I) on every learnable parameter, one draw per seed. Its mean over
  draws estimates the *expected* sharpness at scale σ (≈ σ²/2 · tr(H) for small σ); a flatter
  minimum rises less. Same σ and same number of draws as the noise stress test.
- ``rho_sharpness``: one-step ρ-sharpness, the SAM-style (Foret et al., ICLR 2021) estimate of
  the worst loss rise in a ρ-ball, L(θ + ρ·g/‖g‖) − L(θ) with g = ∇L(θ) (first-order ascent
  step). ``default_rho`` sets ρ = σ·√d, the expected length of the random perturbation above,
  so the two figures compare a random and a worst-case direction at the same distance.

The Mirror Gradient paper (Zhong et al., WWW 2024) shows flatness as 2-D loss surfaces
(Li et al., 2018); these scalar figures are cheap enough to compute for every report.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from robustrec.data.dataset import InteractionData
from robustrec.data.sampler import BPRSampler
from robustrec.perturbations.base import copy_model

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def training_triplets(data: InteractionData, n: int = 4096, seed: int = 0) -> Triplets:
    """A fixed sample of ``n`` (user, positive, negative) training triplets; equal seeds, equal sample."""
    sampler = BPRSampler(data, batch_size=max(1, min(n, data.n_train)), seed=seed)
    return next(iter(sampler.epoch()))


def learnable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


@torch.no_grad()
def training_loss(model, triplets: Triplets) -> float:
    was_training = model.training
    model.eval()
    try:
        return float(model.loss(*triplets))
    finally:
        model.train(was_training)


def noise_sensitivity(model, triplets: Triplets, sigma: float, seeds: list[int]) -> np.ndarray:
    """L(θ + σ·z) − L(θ) for one z ~ N(0, I) per seed; the model is not modified."""
    clean = training_loss(model, triplets)
    rises = []
    for seed in seeds:
        noisy = copy_model(model)
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for param in learnable(noisy):
                param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype), alpha=sigma)
        rises.append(training_loss(noisy, triplets) - clean)
    return np.asarray(rises, dtype=np.float64)


def default_rho(model, sigma: float) -> float:
    """σ·√d: the expected norm of σ·z, z ~ N(0, I_d), over the model's d learnable weights."""
    return sigma * math.sqrt(sum(p.numel() for p in learnable(model)))


def rho_sharpness(model, triplets: Triplets, rho: float) -> float:
    """One-step ρ-sharpness L(θ + ρ·g/‖g‖) − L(θ), g = ∇L(θ); the model is not modified."""
    probe = copy_model(model)
    probe.eval()
    params = learnable(probe)
    clean = probe.loss(*triplets)
    grads = torch.autograd.grad(clean, params, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    norm = torch.sqrt(sum(g.pow(2).sum() for _, g in pairs)) if pairs else torch.tensor(0.0)
    if rho == 0 or norm == 0:
        return 0.0
    with torch.no_grad():
        for param, grad in pairs:
            param.add_(grad, alpha=rho / float(norm))
        return float(probe.loss(*triplets)) - float(clean.detach())
