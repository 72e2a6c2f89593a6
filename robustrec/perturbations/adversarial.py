"""Worst-case perturbations: FGSM and PGD on item feature rows or on ID embedding rows.

Unlike the other stress tests, the direction is not drawn at random: it is the one that
increases the model's own training loss (``model.loss``, regulariser included) the most, to
first order, on a fixed seeded sample of training triplets (the model in eval mode, the random
numbers the loss draws fixed, as in ``robustrec.flatness``).

Budget (the same for training-time AMR and for ``perturb adversarial``): **L2 per row**, as in
the AMR and APR code (``l2_normalize(grad, axis=1) * eps``): every row a perturbation touches
(one item's feature vector of one modality, or one row of an embedding table) moves by at most
ε · r̄ in L2, with r̄ the mean L2 row norm of its feature matrix / table. ε is therefore
*relative* (ε = 0.1: a tenth of a typical row), so one ε means the same on modalities of very
different scales (lfm2k: MiniLM text rows have norm 1, VGGish audio rows about 1,500); AMR's
absolute ε is ours times r̄.

- FGSM (``steps = 1``): Δ_r = ε r̄ · g_r / ‖g_r‖ with g = ∇L at the clean point.
- PGD (``steps = S > 1``, Madry et al. 2018): S normalised ascent steps of size 2.5 · ε r̄ / S
  from Δ = 0, each followed by projection of every row back onto its ε r̄ ball.

Rows whose gradient is zero at every step (items no sampled triplet reaches, in models where
items do not interact) are left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation

TARGETS = ("features", "embeddings")
NORM = "l2-per-row"
#: PGD step size = PGD_STEP_FACTOR · budget / steps (Madry et al.'s usual 2.5 ε / S)
PGD_STEP_FACTOR = 2.5
#: training triplets the attack's loss is evaluated on (drawn with the trial seed)
SAMPLES = 4096


def check_attack(eps: float, steps: int) -> None:
    if not eps >= 0 or eps == float("inf"):
        raise ConfigError(f"--eps must be a finite number >= 0, got {eps}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1 (1 = FGSM, more = PGD), got {steps}")


def check_target(target: str) -> None:
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")


# --- primitives --------------------------------------------------------------------------
def mean_row_norm(matrix: torch.Tensor) -> float:
    """r̄: the mean L2 norm of the rows of ``matrix`` (the unit of a relative budget)."""
    return float(matrix.detach().float().norm(dim=1).mean()) if matrix.numel() else 0.0


def row_step(grad: torch.Tensor, radius: float) -> torch.Tensor:
    """radius · g_r / ‖g_r‖ row by row; rows with zero gradient stay zero."""
    norms = grad.norm(dim=1, keepdim=True)
    return torch.where(norms > 0, grad * (radius / norms.clamp_min(1e-30)), torch.zeros_like(grad))


def project_rows(delta: torch.Tensor, radius: float) -> torch.Tensor:
    """Each row of ``delta`` scaled back onto the L2 ball of ``radius`` when outside it."""
    norms = delta.norm(dim=1, keepdim=True)
    return delta * torch.clamp(radius / norms.clamp_min(1e-30), max=1.0)


Gradient = Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor | None]]


def attack(gradient: Gradient, shapes: dict[str, torch.Tensor], radii: dict[str, float],
           steps: int = 1) -> dict[str, torch.Tensor]:
    """The perturbation Δ (one tensor per name) found by FGSM (steps 1) or L2-per-row PGD.

    ``gradient(deltas)`` returns ∇L at the point shifted by ``deltas`` (None: no path).
    ``radii`` holds each tensor's per-row budget ε·r̄; ``shapes`` gives zero-like templates.
    """
    deltas = {name: torch.zeros_like(t) for name, t in shapes.items()}
    if steps == 1:
        grads = gradient(deltas)
        return {name: deltas[name] if grads[name] is None else row_step(grads[name], radii[name])
                for name in deltas}
    for _ in range(steps):
        grads = gradient(deltas)
        for name, grad in grads.items():
            if grad is not None:
                size = PGD_STEP_FACTOR * radii[name] / steps
                deltas[name] = project_rows(deltas[name] + row_step(grad, size), radii[name])
    return deltas


@contextmanager
def substituted_features(model, tensors: dict[str, torch.Tensor], rebuild: bool = False) -> Iterator[None]:
    """Inside the block ``model`` reads ``tensors`` as its feature buffers (``feat_<m>``);
    with ``rebuild``, what derives from them (``features_changed``) is recomputed from them, so
    gradients reach the loss through it where it is differentiable. The original buffers are
    put back afterwards (derived structures are not: rebuild or discard the model)."""
    old = {m: model._buffers[f"feat_{m}"] for m in tensors}
    try:
        for m, tensor in tensors.items():
            model._buffers[f"feat_{m}"] = tensor
        if rebuild:
            model.features_changed()
        yield
    finally:
        for m, tensor in old.items():
            model._buffers[f"feat_{m}"] = tensor


def feature_gradients(model, loss: Callable[[], torch.Tensor], deltas: dict[str, torch.Tensor],
                      rebuild: bool = False) -> dict[str, torch.Tensor | None]:
    """∇ of ``loss()`` w.r.t. each modality's feature matrix, at features + ``deltas``."""
    points = {m: (model.features()[m].detach() + d).requires_grad_(True) for m, d in deltas.items()}
    with torch.enable_grad(), substituted_features(model, points, rebuild):
        value = loss()
        grads = torch.autograd.grad(value, list(points.values()), allow_unused=True)
    return dict(zip(points, grads))


# --- the stress test -----------------------------------------------------------------------
@dataclass(frozen=True)
class AdversarialPerturbation(Perturbation):
    """FGSM/PGD of relative budget ``eps`` on the item features or the ID embedding tables.

    The trial seed draws the triplet sample (``samples`` training triplets) the loss is
    evaluated on; given the seed the attack is deterministic. Each trial records the training
    loss on that sample before and after the attack and how many rows moved.
    """

    eps: float = 0.1
    target: str = "features"
    steps: int = 1
    data: object = field(default=None, compare=False, repr=False)
    samples: int = SAMPLES
    _records: dict = field(default_factory=dict, compare=False, repr=False)

    kind = "adversarial"
    strength_name = "eps"

    def __post_init__(self) -> None:
        check_attack(self.eps, self.steps)
        check_target(self.target)
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")

    @property
    def strength(self) -> float:
        return self.eps

    def parameters(self) -> dict[str, object]:
        return {"eps": self.eps, "target": self.target, "steps": self.steps,
                "attack": "fgsm" if self.steps == 1 else "pgd", "norm": NORM, "relative_to": "mean row norm",
                "samples": self.samples}

    def unaffected_reason(self, model) -> str | None:
        if not getattr(model, "trainable", True):
            return "has no training loss to attack (a fitted baseline)"
        if self.target == "embeddings":
            return None if embedding_tables(model) else "has no ID embedding tables"
        if not getattr(model, "multimodal", False):
            return "uses no item features"
        if not getattr(model, "features_at_inference", False):
            return "item features do not enter its scores at inference"
        return None

    def trial_record(self, seed: int) -> dict[str, object]:
        """The last attack with ``seed``: training loss on its sample before/after, rows moved."""
        if self.eps == 0:  # the identity: no attack ran
            return {"loss_rise": 0.0, "perturbed_rows": {}}
        return dict(self._records.get(seed, {}))

    def _perturb_copy(self, model, seed: int) -> None:
        from robustrec.flatness.measures import fixed_loss, training_loss, training_triplets

        if self.data is None:
            raise ConfigError("AdversarialPerturbation needs the training data (data=...) to draw triplets")
        triplets = training_triplets(self.data, self.samples, seed)
        model.eval()
        before = training_loss(model, triplets)
        with one_cpu_thread(model):
            if self.target == "features":
                moved = perturb_features(model, lambda: fixed_loss(model, triplets), self.eps, self.steps)
            else:
                moved = perturb_embeddings(model, lambda: fixed_loss(model, triplets), self.eps, self.steps)
        after = training_loss(model, triplets)
        self._records[seed] = {"loss_clean": before, "loss_attacked": after, "loss_rise": after - before,
                               "perturbed_rows": moved}


@contextmanager
def one_cpu_thread(model) -> Iterator[None]:
    """The attack's gradients on one CPU thread: the backward of a row gather (``index_select``,
    an ``index_add`` of many rows into one) sums in a thread-dependent order on several threads,
    so equal seeds would give attacks equal only to the last bit. On other devices: unchanged."""
    from robustrec.device import model_device

    if model_device(model).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def embedding_tables(model) -> dict[str, torch.nn.Parameter]:
    try:
        return dict(sorted(model.embedding_tables().items()))
    except NotImplementedError:
        return {}


def perturb_features(model, loss: Callable[[], torch.Tensor], eps: float, steps: int) -> dict[str, int]:
    """Replace ``model``'s features by the attacked ones (``set_item_features``: derived graphs are
    rebuilt from them); return the number of rows moved per modality."""
    clean = {m: x.detach() for m, x in model.features().items()}
    radii = {m: eps * mean_row_norm(x) for m, x in clean.items()}
    # a loss that reads the buffers needs no rebuild for its gradient (kNN graphs carry none);
    # others (cached normalised features) get their caches rebuilt from each shifted point
    rebuild = not getattr(model, "loss_reads_features", False)
    deltas = attack(lambda d: feature_gradients(model, loss, d, rebuild=rebuild), clean, radii, steps)
    if all(not bool(d.any()) for d in deltas.values()):
        if rebuild:
            model.features_changed()  # the probe passes left caches of the shifted points
        return {m: 0 for m in deltas}
    model.set_item_features({m: (clean[m] + d).cpu().numpy() for m, d in deltas.items()})
    return {m: int(d.any(dim=1).sum()) for m, d in deltas.items()}


def perturb_embeddings(model, loss: Callable[[], torch.Tensor], eps: float, steps: int) -> dict[str, int]:
    """Add the attack to ``model``'s embedding tables in place (``model`` must be a private copy)."""
    tables = embedding_tables(model)
    clean = {name: t.detach().clone() for name, t in tables.items()}
    radii = {name: eps * mean_row_norm(t) for name, t in clean.items()}

    def gradient(deltas):
        with torch.no_grad():
            for name, table in tables.items():
                table.copy_(clean[name] + deltas[name])
        with torch.enable_grad():
            grads = torch.autograd.grad(loss(), list(tables.values()), allow_unused=True)
        return dict(zip(tables, grads))

    deltas = attack(gradient, clean, radii, steps)
    with torch.no_grad():
        for name, table in tables.items():
            table.copy_(clean[name] + deltas[name])
    return {name: int(d.any(dim=1).sum()) for name, d in deltas.items()}
