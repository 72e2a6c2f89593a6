"""``robustrec flatness``: sharpness numbers of trained runs on their own training loss."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.options import DEVICE
from robustrec.cli.render import console


def flatness(
    checkpoints: list[Path] = typer.Argument(..., metavar="CHECKPOINT...",
                                             help="Run folders written by `robustrec train` (e.g. a run and its -mg twin)."),
    sigma: float = typer.Option(1e-3, help="Scale σ of the random Gaussian directions (as `perturb noise`), 0..100."),
    step: float = typer.Option(0.01, help="Step α along filter-normalised directions (each row moves α of its norm), "
                                          "0..100."),
    draws: int = typer.Option(10, help="Random directions per measure (K)."),
    rho: Optional[float] = typer.Option(None, help="ρ of the one-step ρ-sharpness, 0..1000 (default σ·√d)."),
    hessian: bool = typer.Option(False, "--hessian", help="Also the top Hessian eigenvalue (power iteration)."),
    hessian_iterations: int = typer.Option(20, help="At most this many Hessian-vector products."),
    triplets: int = typer.Option(4096, help="Training triplets in the fixed, seeded loss sample."),
    seed: int = typer.Option(0, help="Seed of the triplet sample and of the directions."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Also write the numbers to this JSON file."),
    data_dir: str = typer.Option("", help="Where the checkpoints' dataset lives, if it moved."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default)."),
    device: str = DEVICE,
) -> None:
    """Expected loss rise along random directions (raw and filter-normalised), one-step ρ-sharpness
    and, with --hessian, the top Hessian eigenvalue, on each run's training loss."""
    from robustrec.limits import check_number

    check_number(sigma, "--sigma", "flatness.sigma")
    check_number(step, "--step", "flatness.step")
    if rho is not None:
        check_number(rho, "--rho", "flatness.rho")  # these three at once, before torch loads
    import time

    import torch

    from robustrec.device import resolve_device
    from robustrec.errors import ConfigError
    from robustrec.flatness import sharpness, training_triplets
    from robustrec.checkpoints import load_checkpoints

    checks = [(draws >= 2, f"--draws must be >= 2 (a mean ± std), got {draws}"),
              (hessian_iterations >= 1, f"--hessian-iterations must be >= 1, got {hessian_iterations}"),
              (triplets >= 1, f"--triplets must be >= 1, got {triplets}")]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if json_path is not None and json_path.is_dir():
        raise ConfigError(f"--json {str(json_path)!r} is a folder, expected a file path")
    if json_path is not None and not json_path.parent.is_dir():
        raise ConfigError(f"--json: folder {str(json_path.parent)!r} does not exist")
    target = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    loaded, data = load_checkpoints(checkpoints, data_dir=data_dir or None, device=target)
    sample = training_triplets(data, n=triplets, seed=seed)
    results = []
    for item in loaded:
        start = time.perf_counter()
        numbers = sharpness(item.model, sample, sigma=sigma, step=step, draws=draws, seed=seed, rho=rho,
                            hessian=hessian, hessian_iterations=hessian_iterations)
        results.append({"name": item.run.name, "model": item.run.config.get("model"),
                        "mg": bool(item.run.config.get("mg")), **numbers,
                        "seconds": time.perf_counter() - start})
    console.print(_table(results, hessian))
    for line in _mg_lines(results, hessian):
        console.print(line)
    if json_path is not None:
        from robustrec.limits import finite_json
        from robustrec.reports.schema import write_atomic

        payload = {"dataset": data.describe(), "settings": {"sigma": sigma, "step": step, "draws": draws,
                                                            "rho": rho, "triplets": triplets, "seed": seed,
                                                            "hessian_iterations": hessian_iterations if hessian else None},
                   "runs": results}
        text = finite_json(payload, "a sharpness number", "lower --sigma, --step or --rho", indent=1) + "\n"
        write_atomic(json_path, lambda tmp: Path(tmp).write_text(text))
        console.print(f"wrote {json_path}")


def _table(results: list[dict], hessian: bool):
    from rich.table import Table

    table = Table(title="sharpness on the training loss (higher: sharper)", title_justify="left")
    columns = ["run", "loss", "σ-noise rise", "filter rise", "ρ-sharp"]
    if hessian:
        columns.append("λ max")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right", overflow="fold", no_wrap=index == 0)
    for r in results:
        row = [r["name"], f"{r['loss']:.4f}", _pm(r["random_rise"]), _pm(r["filter_rise"]), f"{r['rho_sharpness']:.2e}"]
        if hessian:
            h = r["hessian"]
            row.append(f"{h['value']:.3g}" + ("" if h["converged"] else " (not conv.)"))
        table.add_row(*row)
    return table


def _pm(stats: dict) -> str:
    return f"{stats['mean']:.2e}\n± {stats['std']:.1e}"


def _mg_lines(results: list[dict], hessian: bool) -> list[str]:
    """For each MG run with a plain run of the same model: MG / baseline ratios (< 1: MG flatter)."""
    lines = []
    for mg in (r for r in results if r["mg"]):
        base = next((r for r in results if not r["mg"] and r["model"] == mg["model"]), None)
        if base is None:
            continue
        parts = [_ratio("σ-noise rise", mg["random_rise"]["mean"], base["random_rise"]["mean"]),
                 _ratio("filter rise", mg["filter_rise"]["mean"], base["filter_rise"]["mean"]),
                 _ratio("ρ-sharp", mg["rho_sharpness"], base["rho_sharpness"])]
        if hessian:
            parts.append(_ratio("λ max", mg["hessian"]["value"], base["hessian"]["value"]))
        lines.append(f"{mg['name']} / {base['name']} (< 1: MG flatter): " + ", ".join(parts))
    return lines


def _ratio(label: str, mg: float, base: float) -> str:
    if base == 0 or (base < 0) != (mg < 0) or base < 0:
        return f"{label} {mg:.2e} vs {base:.2e}"
    return f"{label} ×{mg / base:.2f}"
