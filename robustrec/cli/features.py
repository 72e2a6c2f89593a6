"""``robustrec features extract``: item photos and texts → feature files a model can train on.

Writes `<modality>_feat.npy`, `<modality>_mask.npy` and `features.json` into the dataset folder, or,
with `--out-dir DIR`, into `DIR/<name>/` together with links to the source's interactions and
content (a dataset folder `robustrec train --data-dir DIR` can use). Resumable after Ctrl-C.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.render import console
from robustrec.features.locate import DOWNLOAD_HELP

app = typer.Typer(help="Extract item features from a dataset's photos and texts.", no_args_is_help=True)


@app.callback()
def _features() -> None:
    """Extract item features from a dataset's photos and texts."""


class Fill(str, Enum):
    mean = "mean"
    zeros = "zeros"


@app.command("extract")
def extract(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: the folder <data-dir>/<name>/."),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Folder holding dataset folders (MMRec layout)."),
    out_dir: Optional[Path] = typer.Option(
        None, "--out-dir", help="Write a complete dataset folder OUT_DIR/<name>/ (features + links to the "
                                "source) instead of writing into the source folder."),
    modalities: Optional[str] = typer.Option(
        None, "--modalities", help="Comma-separated: image,text (default: every modality with content)."),
    text_encoder: str = typer.Option(
        "all-MiniLM-L6-v2", "--text-encoder",
        help="sentence-transformers model name or folder (the packaged MiniLM works offline). " + DOWNLOAD_HELP),
    image_encoder: str = typer.Option(
        "efficientnet-lite0", "--image-encoder",
        help="efficientnet-lite0 (packaged, offline), or a transformers vision model id/folder. " + DOWNLOAD_HELP),
    fill: Fill = typer.Option(Fill.mean, "--fill", help="Rows of items without content: mean of the covered rows "
                                                        "(MMRec's convention) or zeros; the mask marks them."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Items per forward pass (and per resumable chunk)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing <modality>_feat.npy files."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Encode item photos (image_feat.npy) and texts (text_feat.npy), with masks and a features.json sidecar."""
    import time

    from robustrec.features.registry import make_encoder
    from robustrec.features.extract import extract_features, plan_extraction

    plan = plan_extraction(data_dir, dataset, modalities, out_dir, fill.value, overwrite)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    names = {"image": image_encoder, "text": text_encoder}
    encoders = {m: make_encoder(m, names[m], device=device, batch_size=batch_size) for m in plan.modalities}
    start = time.perf_counter()
    with _progress(quiet) as progress:
        results = extract_features(plan, encoders, batch_size, _Callback(progress))
    for line in _skip_lines(results):
        console.print(line, markup=False, highlight=False)
    console.print(_summary_table(results, plan))
    console.print(f"wrote {plan.out} in {time.perf_counter() - start:.1f}s", markup=False, highlight=False)


class _Callback:
    """Drives the bar (items/s) and keeps the Ctrl-C note up to date."""

    def __init__(self, progress) -> None:
        self.progress = progress
        self.tasks: dict[str, int] = {}
        self.done: dict[str, str] = {}

    def _kept(self, partial: Path) -> None:
        from robustrec.cli.interrupt import kept

        counts = ", ".join(f"{m} {d}" for m, d in self.done.items())
        kept(f"encoded items kept in {partial} ({counts}); rerun the same command to resume")

    def on_modality_start(self, modality: str, total: int, done: int, partial: Path | None = None) -> None:
        self.done[modality] = f"{done}/{total}"
        if partial is not None:
            self._kept(partial)
        if self.progress is not None:
            self.tasks[modality] = self.progress.add_task(f"{modality} features", total=total, completed=done)

    def on_batch(self, modality: str, done: int, total: int, partial: Path) -> None:
        self.done[modality] = f"{done}/{total}"
        self._kept(partial)
        if self.progress is not None:
            self.progress.update(self.tasks[modality], completed=done)

    def on_modality_end(self, result) -> None:
        from robustrec.cli.interrupt import reset

        reset()


class _NoProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc) -> None:
        return None


def _progress(quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} items/s" if speed else "– items/s")

    if quiet:
        return _NoProgress()
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeElapsedColumn(), console=console)


def _skip_lines(results) -> list[str]:
    lines = []
    for result in results:
        if result.skipped_examples:
            first = ", ".join(f"{i} ({reason})" for i, reason in result.skipped_examples[:3])
            more = len(result.skipped_examples) - 3
            lines.append(f"skipped {len(result.skipped_examples)} {result.modality} item(s), rows filled: "
                         f"{first}" + (f" and {more} more" if more > 0 else ""))
    return lines


def _summary_table(results, plan):
    from rich import box
    from rich.table import Table

    table = Table(title=f"features of {plan.name} → {plan.out}", title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 0),
                  pad_edge=False)
    for column in ("modality", "encoder", "dim", "covered", "fill", "skipped", "seconds", "items/s"):
        table.add_column(column, justify="left" if column in ("modality", "encoder", "fill") else "right",
                         overflow="fold", no_wrap=column != "encoder", min_width=18 if column == "encoder" else None)
    for r in results:
        skipped = sum(r.skipped.values())
        rate = f"{r.items_per_second:.1f}" if r.encoded_now else "–"
        table.add_row(r.modality, r.encoder_id.removeprefix("sentence-transformers:"), str(r.dim), f"{r.covered:,}/{r.items:,}",
                      r.fill if r.covered < r.items else "–", f"{skipped:,}", f"{r.seconds:.1f}", rate)
    return table
