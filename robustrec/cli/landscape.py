"""``robustrec landscape``: the 2-D loss surface (and 1-D slice) around a run's weights."""

from __future__ import annotations

from pathlib import Path

import typer

from robustrec.cli.options import DEVICE
from robustrec.cli.render import console


def landscape(
    checkpoints: list[Path] = typer.Argument(..., metavar="CHECKPOINT...", help="Run folders written by `robustrec train`."),
    grid: int = typer.Option(21, help="Points per axis (3–101); cost grid² loss evaluations per run (+ grid when even)."),
    span: float = typer.Option(1.0, help="The grid covers [−span, span] along each direction; > 0 and <= 1000."),
    filter_norm: bool = typer.Option(True, "--filter-norm/--no-filter-norm",
                                     help="Filter-normalise the directions per row (Li et al. 2018)."),
    paper: bool = typer.Option(False, "--paper", help="The MG paper's Figure 3 setting: 20×20 over ±100, unnormalised."),
    plot: bool = typer.Option(False, "--plot", help="Also write a PNG (contour, surface, slice)."),
    triplets: int = typer.Option(4096, help="Training triplets in the fixed, seeded loss sample."),
    seed: int = typer.Option(0, help="Seed of the triplet sample and of the two directions."),
    out_dir: Path = typer.Option(Path("landscapes"), help="Where landscape-<run>.json (and .png) go."),
    data_dir: str = typer.Option("", help="Where the checkpoints' dataset lives, if it moved."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default)."),
    device: str = DEVICE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Evaluate the training loss on a grid of two random directions around each run's weights and
    save the data (JSON, to redraw) and optionally a PNG; the same directions for every run."""
    from robustrec.limits import check_number, finite_json

    if not paper:
        check_number(span, "--span", "landscape.span")  # at once, before torch loads
    import torch

    from robustrec.device import resolve_device
    from robustrec.errors import ConfigError
    from robustrec.flatness import training_triplets
    from robustrec.flatness.landscape import PAPER, check_grid, loss_surface, plot_landscape
    from robustrec.paths import check_output_dir
    from robustrec.checkpoints import load_checkpoints
    from robustrec.reports.schema import write_atomic

    if paper:
        grid, span, normalization = PAPER["grid"], PAPER["span"], PAPER["normalization"]
    else:
        normalization = "filter" if filter_norm else "none"
    check_grid(grid, span)
    if triplets < 1:
        raise ConfigError(f"--triplets must be >= 1, got {triplets}")
    check_output_dir(out_dir, "--out-dir")
    target = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    loaded, data = load_checkpoints(checkpoints, data_dir=data_dir or None, device=target)
    sample = training_triplets(data, n=triplets, seed=seed)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    for item in loaded:
        name = item.run.name
        total = grid * grid + grid
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, disable=quiet, transient=True) as bar:
            task = bar.add_task(f"landscape {name}", total=total)
            result = loss_surface(item.model, sample, grid, span, normalization, seed,
                                  progress=lambda n: bar.advance(task, n))
        result.update(run=name, model=item.run.config.get("model"), mg=bool(item.run.config.get("mg")),
                      dataset=data.name, triplets=triplets)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"landscape-{name}.json"
        text = finite_json(result, f"the loss landscape of {name}", "lower --span (or use --filter-norm)") + "\n"
        write_atomic(path, lambda tmp: Path(tmp).write_text(text))
        surface = result["surface"]
        low, high = min(map(min, surface)), max(map(max, surface))
        console.print(f"{name}: loss {result['center_loss']:.4f} at the weights, {low:.4f}–{high:.4f} on the grid; "
                      f"wrote {path}")
        if plot:
            png = plot_landscape(result, out_dir / f"landscape-{name}.png", f"{name} on {data.name}")
            console.print(f"wrote {png}")
