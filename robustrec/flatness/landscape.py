"""Loss landscapes (Li et al., NeurIPS 2018), as in the Mirror Gradient paper's Figure 3.

``loss_surface`` evaluates L(θ + a·d1 + b·d2) on a grid of (a, b) ∈ [−span, span]² for two
seeded Gaussian directions d1, d2 over every learnable weight (optionally filter-normalised:
each row of a direction has the norm of the weights' row, see ``random_direction``), plus the
1-D slice L(θ + a·d1). The loss is the run's training loss on a fixed triplet sample with its
random draws fixed (``fixed_loss``). The paper's own setting is a 20 × 20 grid over
[−100, 100] with unnormalised directions (``PAPER``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from robustrec.flatness.measures import Triplets, fixed_loss, learnable, random_direction
from robustrec.models.base import copy_model

#: the Mirror Gradient paper's Figure 3: grid points per axis, span, normalisation
PAPER = {"grid": 20, "span": 100.0, "normalization": "none"}
MAX_GRID = 101


def check_grid(grid: int, span: float) -> None:
    """One-line ConfigErrors for a grid outside 3–``MAX_GRID`` points or a span outside
    ``robustrec.limits.LIMITS['landscape.span']`` (finite, > 0)."""
    from robustrec.errors import ConfigError
    from robustrec.limits import check_number

    if not 3 <= grid <= MAX_GRID:
        raise ConfigError(f"--grid must be between 3 and {MAX_GRID}, got {grid}")
    check_number(span, "--span", "landscape.span")


def loss_surface(model, triplets: Triplets, grid: int = 21, span: float = 1.0, normalization: str = "filter",
                 seed: int = 0, progress: Callable[[int], None] | None = None) -> dict:
    """The 2-D surface and the 1-D slice (JSON-able); the model is not modified.

    ``progress(n)`` is called after every n evaluated points (grid² + grid in all; on odd grids the
    slice is the surface's middle row, b = 0, so its n points cost nothing)."""
    check_grid(grid, span)
    probe = copy_model(model)
    probe.eval()
    params = learnable(probe)
    theta = [p.detach().clone() for p in params]
    d1 = random_direction(model, 2 * seed, normalization)
    d2 = random_direction(model, 2 * seed + 1, normalization)
    axis = np.linspace(-span, span, grid)

    @torch.no_grad()
    def loss_at(a: float, b: float) -> float:
        for p, t, x, y in zip(params, theta, d1, d2):
            p.copy_(t + a * x + b * y)
        return float(fixed_loss(probe, triplets))

    surface = np.empty((grid, grid))
    for i, b in enumerate(axis):
        for j, a in enumerate(axis):
            surface[i, j] = loss_at(float(a), float(b))
        if progress:
            progress(grid)
    if grid % 2:  # b = 0 is the middle row of the grid
        line = surface[grid // 2].copy()
    else:
        line = np.array([loss_at(float(a), 0.0) for a in axis])
    if progress:
        progress(grid)
    center = loss_at(0.0, 0.0)
    return {"axis": axis.tolist(), "surface": surface.tolist(), "slice": line.tolist(), "center_loss": center,
            "grid": grid, "span": span, "normalization": normalization, "seed": seed,
            "directions": "two seeded N(0, I) directions over every learnable weight"
                          + (", filter-normalised per row" if normalization == "filter" else ", unnormalised"),
            "parameters": int(sum(p.numel() for p in params))}


def plot_landscape(result: dict, path, title: str):
    """PNG: contour of the surface, its 3-D view and the 1-D slice, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robustrec.files import write_atomic

    axis = np.asarray(result["axis"])
    surface = np.asarray(result["surface"])
    a, b = np.meshgrid(axis, axis)
    figure = plt.figure(figsize=(13, 4.2))
    contour_axes = figure.add_subplot(1, 3, 1)
    filled = contour_axes.contourf(a, b, surface, levels=20, cmap="viridis")
    contour_axes.contour(a, b, surface, levels=20, colors="k", linewidths=0.3)
    figure.colorbar(filled, ax=contour_axes, label="training loss")
    contour_axes.plot([0], [0], "r+")
    contour_axes.set_xlabel("direction 1")
    contour_axes.set_ylabel("direction 2")
    surface_axes = figure.add_subplot(1, 3, 2, projection="3d")
    surface_axes.plot_surface(a, b, surface, cmap="viridis", linewidth=0)
    surface_axes.set_xlabel("direction 1")
    surface_axes.set_ylabel("direction 2")
    line_axes = figure.add_subplot(1, 3, 3)
    line_axes.plot(axis, result["slice"], marker=".")
    line_axes.axvline(0.0, color="grey", linewidth=0.8)
    line_axes.set_xlabel("step along direction 1")
    line_axes.set_ylabel("training loss")
    figure.suptitle(f"{title}: {result['grid']}×{result['grid']} over ±{result['span']:g}, "
                    f"{'filter-normalised' if result['normalization'] == 'filter' else 'unnormalised'} directions")
    figure.tight_layout()
    try:
        return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=110))
    finally:
        plt.close(figure)
