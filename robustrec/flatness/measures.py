"""Cheap flatness figures of a trained model on its own BPR training loss.

Both measures evaluate ``model.loss`` (the training objective, regulariser included) on a
fixed, seeded sample of training triplets with the model in eval mode and the random numbers
the loss draws (dropout views, sampled edges) fixed, so L is a deterministic function of θ:

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
from robustrec.device import model_device, rng_devices
from robustrec.models.base import copy_model

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def training_triplets(data: InteractionData, n: int = 4096, seed: int = 0) -> Triplets:
    """A fixed sample of ``n`` (user, positive, negative) training triplets; equal seeds, equal sample."""
    sampler = BPRSampler(data, batch_size=max(1, min(n, data.n_train)), seed=seed)
    return next(iter(sampler.epoch()))


def learnable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


#: every loss evaluation draws its random numbers (dropout views, edge sampling) from this seed,
#: so L(θ) is a deterministic function of the weights and differences measure the weights only
LOSS_SEED = 0


def fixed_loss(model, triplets: Triplets) -> torch.Tensor:
    """``model.loss`` on the triplets (moved to the model's device) with the global RNG fixed
    (the CPU's and, on a GPU, that device's; restored afterwards)."""
    device = model_device(model)
    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(LOSS_SEED)
        return model.loss(*(t.to(device) if isinstance(t, torch.Tensor) else t for t in triplets))


@torch.no_grad()
def training_loss(model, triplets: Triplets) -> float:
    was_training = model.training
    model.eval()
    try:
        return float(fixed_loss(model, triplets))
    finally:
        model.train(was_training)


def noise_sensitivity(model, triplets: Triplets, sigma: float, seeds: list[int]) -> np.ndarray:
    """L(θ + σ·z) − L(θ) for one z ~ N(0, I) per seed; the model is not modified
    (``direction_loss_rise`` without normalisation)."""
    return direction_loss_rise(model, triplets, sigma, seeds, "none")


def default_rho(model, sigma: float) -> float:
    """σ·√d: the expected norm of σ·z, z ~ N(0, I_d), over the model's d learnable weights."""
    return sigma * math.sqrt(sum(p.numel() for p in learnable(model)))


def rho_sharpness(model, triplets: Triplets, rho: float) -> float:
    """One-step ρ-sharpness L(θ + ρ·g/‖g‖) − L(θ), g = ∇L(θ); the model is not modified."""
    probe = copy_model(model)
    probe.eval()
    params = learnable(probe)
    clean = fixed_loss(probe, triplets)
    grads = torch.autograd.grad(clean, params, allow_unused=True)
    pairs = [(p, g) for p, g in zip(params, grads) if g is not None]
    norm = torch.sqrt(sum(g.pow(2).sum() for _, g in pairs)) if pairs else 0.0
    if rho == 0 or norm == 0:
        return 0.0
    with torch.no_grad():
        for param, grad in pairs:
            param.add_(grad, alpha=rho / float(norm))
        return float(fixed_loss(probe, triplets)) - float(clean.detach())


# --- sharpness figures of `robustrec flatness` --------------------------------------------
NORMALIZATIONS = ("none", "filter")


def random_direction(model, seed: int, normalization: str = "none") -> list[torch.Tensor]:
    """A Gaussian direction d ~ N(0, I) over the learnable weights, one tensor per parameter.

    ``normalization="filter"`` (Li et al., NeurIPS 2018, for embedding tables: per row) rescales
    each row of d to the norm of the same row of θ (``d_r ← d_r / ‖d_r‖ · ‖θ_r‖``; 1-D weights as
    one row), so a step α·d moves every row by α of its own length whatever the weights' scale.
    Drawn by a seeded CPU generator (the same direction on every device), then moved to the
    parameter's device.
    """
    if normalization not in NORMALIZATIONS:
        from robustrec.errors import ConfigError

        raise ConfigError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}")
    generator = torch.Generator().manual_seed(int(seed))
    out = []
    for param in learnable(model):
        d = torch.randn(param.shape, generator=generator, dtype=param.dtype).to(param.device)
        if normalization == "filter":
            theta = param.detach()
            rows_d, rows_t = d.reshape(d.shape[0], -1) if d.dim() > 1 else d.reshape(1, -1), \
                theta.reshape(theta.shape[0], -1) if theta.dim() > 1 else theta.reshape(1, -1)
            scale = rows_t.norm(dim=1, keepdim=True) / rows_d.norm(dim=1, keepdim=True).clamp_min(1e-12)
            d = (rows_d * scale).reshape(param.shape)
        out.append(d)
    return out


def direction_loss_rise(model, triplets: Triplets, step: float, seeds: list[int],
                        normalization: str = "none", clean: float | None = None) -> np.ndarray:
    """L(θ + step·d) − L(θ) for one ``random_direction`` per seed; the model is not modified.
    ``clean``: L(θ) when the caller has it already (the loss is a deterministic function of θ).

    With ``normalization="none"`` and step σ this is exactly ``noise_sensitivity``."""
    clean = training_loss(model, triplets) if clean is None else clean
    rises = []
    for seed in seeds:
        moved = copy_model(model)
        with torch.no_grad():
            for param, d in zip(learnable(moved), random_direction(model, seed, normalization)):
                param.add_(d, alpha=step)
        rises.append(training_loss(moved, triplets) - clean)
    return np.asarray(rises, dtype=np.float64)


def hessian_top_eigenvalue(model, triplets: Triplets, iterations: int = 20, tolerance: float = 1e-3,
                           seed: int = 0) -> dict:
    """The largest-magnitude eigenvalue of the training-loss Hessian, by power iteration.

    v ← Hv/‖Hv‖ from a seeded Gaussian start, λ = vᵀHv; stops when λ changes by less than
    ``tolerance`` (relative) or after ``iterations`` Hessian-vector products. Hv comes from
    autograd (the gradient of gᵀv, double backward); models with a layer that has no double
    backward use the central difference (∇L(θ+εv) − ∇L(θ−εv)) / 2ε with ε = 10⁻³·‖θ‖/√d (‖v‖ = 1),
    and the result says which ("method"). ``autograd_vs_difference`` is the relative gap
    between the first autograd product and the central difference: a few % is float32
    rounding; a large gap means the loss has stop-gradient targets (BM3, SelfCF: their update
    is not the gradient of one function, so "the Hessian" is the autograd one of the loss as
    written, not the derivative of the update). The model is not modified.
    """
    probe = copy_model(model)
    probe.eval()
    params = learnable(probe)
    generator = torch.Generator().manual_seed(int(seed))
    v = _normalized([torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device) for p in params])
    method, check = "autograd", None
    value, previous, done = 0.0, None, 0
    for done in range(1, iterations + 1):
        hv = None
        if method == "autograd":
            try:
                hv = _hvp_autograd(probe, params, triplets, v)
            except RuntimeError:
                method = "finite-difference"
        if hv is None:
            hv = _hvp_finite_difference(probe, params, triplets, v)
        if check is None:  # autograd against the central difference, once: a sanity figure
            reference = hv if method != "autograd" else _hvp_finite_difference(probe, params, triplets, v)
            check = float(_norm([a - b for a, b in zip(hv, reference)]) / max(_norm(reference), 1e-30))
        value = float(sum((a * b).sum() for a, b in zip(v, hv)))
        norm = _norm(hv)
        if norm == 0:
            break
        v = [h / norm for h in hv]
        if previous is not None and abs(value - previous) <= tolerance * max(abs(value), 1e-12):
            return {"value": value, "iterations": done, "converged": True, "method": method,
                    "autograd_vs_difference": check}
        previous = value
    return {"value": value, "iterations": done, "converged": False, "method": method,
            "autograd_vs_difference": check}


def _norm(vectors: list[torch.Tensor]) -> float:
    return float(torch.sqrt(sum(x.pow(2).sum() for x in vectors)))


def _normalized(vectors: list[torch.Tensor]) -> list[torch.Tensor]:
    norm = torch.sqrt(sum(x.pow(2).sum() for x in vectors))
    return [x / norm for x in vectors]


def _gradients(model, params, triplets: Triplets, create_graph: bool) -> list[torch.Tensor]:
    loss = fixed_loss(model, triplets)
    grads = torch.autograd.grad(loss, params, create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _hvp_autograd(model, params, triplets: Triplets, v: list[torch.Tensor]) -> list[torch.Tensor]:
    grads = _gradients(model, params, triplets, create_graph=True)
    dot = sum((g * x).sum() for g, x in zip(grads, v) if g.requires_grad)
    if not isinstance(dot, torch.Tensor) or not dot.requires_grad:
        raise RuntimeError("no second-order graph")
    hv = torch.autograd.grad(dot, params, allow_unused=True)
    return [torch.zeros_like(p) if h is None else h.detach() for p, h in zip(params, hv)]


def _hvp_finite_difference(model, params, triplets: Triplets, v: list[torch.Tensor]) -> list[torch.Tensor]:
    theta = [p.detach().clone() for p in params]
    scale = float(torch.sqrt(sum(t.pow(2).sum() for t in theta))) or 1.0
    eps = 1e-3 * scale / math.sqrt(sum(t.numel() for t in theta))
    out = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for p, t, x in zip(params, theta, v):
                p.copy_(t + sign * eps * x)
        out.append([g.detach() for g in _gradients(model, params, triplets, create_graph=False)])
    with torch.no_grad():
        for p, t in zip(params, theta):
            p.copy_(t)
    return [(a - b) / (2 * eps) for a, b in zip(*out)]


def sharpness(model, triplets: Triplets, sigma: float = 1e-3, step: float = 0.01, draws: int = 10,
              seed: int = 0, rho: float | None = None, hessian: bool = False,
              hessian_iterations: int = 20) -> dict:
    """Every sharpness figure of ``robustrec flatness`` for one model (JSON-able).

    - ``loss``: L(θ) on the fixed triplet sample;
    - ``random_rise``: L(θ + σ·z) − L(θ), z ~ N(0, I), over ``draws`` seeded draws (mean, std, values);
    - ``filter_rise``: L(θ + α·d) − L(θ), d filter-normalised (``random_direction``), α = ``step``;
    - ``rho_sharpness``: L(θ + ρ·g/‖g‖) − L(θ), ρ = σ·√d unless given;
    - ``hessian``: the top Hessian eigenvalue (power iteration), when asked.
    """
    seeds = [int(seed) * 1000 + i for i in range(draws)]
    clean = training_loss(model, triplets)
    raw = direction_loss_rise(model, triplets, sigma, seeds, "none", clean)
    filtered = direction_loss_rise(model, triplets, step, seeds, "filter", clean)
    rho_value = default_rho(model, sigma) if rho is None else rho
    out = {"loss": clean, "parameters": int(sum(p.numel() for p in learnable(model))),
           "random_rise": _stats(raw, sigma=sigma), "filter_rise": _stats(filtered, step=step),
           "rho": rho_value, "rho_sharpness": rho_sharpness(model, triplets, rho_value)}
    if hessian:
        out["hessian"] = hessian_top_eigenvalue(model, triplets, hessian_iterations, seed=seed)
    return out


def _stats(values: np.ndarray, **scale) -> dict:
    return {**scale, "mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "values": [float(v) for v in values]}
