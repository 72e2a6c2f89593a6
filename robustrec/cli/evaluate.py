"""``robustrec evaluate``: recompute a run's metrics from its saved weights."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.options import DEVICE, MAX_MEMORY
from robustrec.cli.render import console, err_console, metrics_table


def evaluate(
    run: Path = typer.Argument(..., help="A run folder written by `robustrec train`."),
    data_dir: str = typer.Option("", help="Where the run's dataset lives, if it moved."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default)."),
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
) -> None:
    """Reload RUN's weights and data, recompute valid and test metrics, compare with the stored ones."""
    import torch

    from robustrec.checkpoints import load_model
    from robustrec.device import resolve_device
    from robustrec.evaluation import evaluate_splits

    target = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    model, data, saved = load_model(run, data_dir=data_dir or None, device=target)
    batch = saved.config.get("eval_batch_size", 0)
    results = evaluate_splits(model, data, ("valid", "test"), batch_size=batch)
    valid, test = results["valid"].summary(), results["test"].summary()
    console.print(metrics_table(f"{saved.name}: {saved.config['model']} on {data.name}, "
                                f"best epoch {saved.metrics['best_epoch']}",
                                {"valid": valid, "test": test, "stored test": saved.metrics["test"]}))
    stored = saved.metrics["test"]
    gaps = {k: abs(test[k] - stored.get(k, float("inf"))) for k in test}  # a missing key counts as differing
    differing = sorted((gap, k) for k, gap in gaps.items() if not gap <= 1e-9)
    if not differing:
        console.print("test metrics match the stored ones")
        return
    key = differing[-1][1]
    was = stored.get(key, float("nan"))
    err_console.print(f"Error: test metrics differ from the stored ones in {len(differing)} of {len(test)} "
                      f"metric@K values (largest: {key} {test[key]:.6f} now, {was:.6f} stored)",
                      highlight=False, soft_wrap=True)
    raise typer.Exit(1)
