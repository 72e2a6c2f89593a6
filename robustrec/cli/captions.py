"""`robustrec captions ...`: generate and cache image captions of a dataset's items.

The cache goes to `<data-dir>/<name>/captions/<sanitized captioner id>.json` unless `--cache` is
given (e.g. `blip2_Salesforce_blip2-opt-2.7b.json`). Runs resume from the cache; unreadable or
oversized images are skipped and reported.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robustrec.errors import ConfigError, DataError

app = typer.Typer(help="Generate image captions for a dataset's items (BLIP-2 or LAVIS), cached on disk.",
                  no_args_is_help=True)


@app.callback()
def _captions() -> None:
    """Generate image captions for a dataset's items (BLIP-2 or LAVIS), cached on disk."""


class CaptionerKind(str, Enum):
    blip2 = "blip2"
    lavis = "lavis"


def _dataset_fingerprint(name: str, data_dir: Path) -> str:
    """The dataset fingerprint stored in caption caches (the core's content hash)."""
    from robustrec.data import load_dataset
    from robustrec.synthetic.folder import prepare_dataset

    prepare_dataset(name, data_dir)
    return load_dataset(name, data_dir).fingerprint()


def _make_captioner(kind: CaptionerKind, checkpoint: str | None, prompt: str | None, device: str,
                    max_new_tokens: int, lavis_python: Path | None) -> Any:
    """A Blip2Captioner or LavisCaptioner from the command-line flags."""
    if kind is CaptionerKind.lavis:
        from robustrec.captioning.lavis_adapter import DEFAULT_LAVIS_MODEL_TYPE, LavisCaptioner

        if lavis_python is None:
            raise ConfigError("--captioner lavis needs --lavis-python PATH (a Python with salesforce-lavis)")
        return LavisCaptioner(lavis_python, model_type=checkpoint or DEFAULT_LAVIS_MODEL_TYPE,
                              device=device, prompt=prompt, max_length=max_new_tokens)
    from robustrec.captioning.blip2 import DEFAULT_BLIP2_CHECKPOINT, Blip2Captioner
    from robustrec.device import device_string

    # checked here, before any captioning (LAVIS runs in its own Python, which resolves its own)
    return Blip2Captioner(checkpoint or DEFAULT_BLIP2_CHECKPOINT, device=device_string(device), prompt=prompt,
                          max_new_tokens=max_new_tokens)


@app.command()
def generate(
    dataset: str = typer.Option(..., "--dataset", help="Dataset name: the folder <data-dir>/<name>/."),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Folder holding dataset folders."),
    captioner: CaptionerKind = typer.Option(CaptionerKind.blip2, "--captioner", help="Backend."),
    checkpoint: str = typer.Option(None, "--checkpoint",
                                   help="BLIP-2/BLIP checkpoint id or folder (blip2), model type (lavis)."),
    prompt: str = typer.Option(None, "--prompt", help="Text prompt the caption continues."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if available), cpu, cuda, cuda:1..."),
    max_new_tokens: int = typer.Option(30, "--max-new-tokens", min=1, help="Longest caption in tokens."),
    limit: int = typer.Option(None, "--limit", min=1, help="Caption only the first N items (by id)."),
    cache: Path = typer.Option(None, "--cache", help="Cache file (default <data-dir>/<name>/captions/...)."),
    lavis_python: Path = typer.Option(None, "--lavis-python", help="Python with salesforce-lavis."),
) -> None:
    """Caption every item image of a dataset and cache the captions (resumable)."""
    _generate(Console(), dataset, data_dir, captioner, checkpoint, prompt, batch_size, device,
              max_new_tokens, limit, cache, lavis_python)


def _generate(console: Console, dataset: str, data_dir: Path, kind: CaptionerKind,
              checkpoint: str | None, prompt: str | None, batch_size: int, device: str,
              max_new_tokens: int, limit: int | None, cache_path: Path | None,
              lavis_python: Path | None) -> None:
    from robustrec.captioning.cache import CaptionCache, default_cache_path, lock_path
    from robustrec.data.content import load_item_images
    from robustrec.locks import hold
    from robustrec.paths import check_output_dir

    folder = data_dir / dataset
    if not folder.is_dir():
        raise DataError(f"dataset folder not found: {folder}")
    items = load_item_images(folder, dataset)
    if limit is not None:
        items = {i: items[i] for i in sorted(items)[:limit]}
    fingerprint = _dataset_fingerprint(dataset, data_dir)
    model = _make_captioner(kind, checkpoint, prompt, device, max_new_tokens, lavis_python)
    path = cache_path or default_cache_path(data_dir, dataset, model.captioner_id)
    if path.is_dir():
        raise DataError(f"caption cache {str(path)!r} is a folder, expected a .json file")
    check_output_dir(path.parent, "caption cache folder")
    # one captioning run per cache file: a second would caption the same items again
    with hold(lock_path(path), f"caption cache {path}", "wait for it (a rerun then captions only what is left)"):
        cache = CaptionCache.open(path, model.captioner_id, dataset, fingerprint)
        with _progress(console) as progress:
            task = progress.add_task(f"captioning {dataset}", total=len(cache.pending(items)))
            summary = model.caption_items(
                items, cache, batch_size=batch_size,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    _print_summary(console, summary, cache, path)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _print_summary(console: Console, summary: Any, cache: Any, path: Path) -> None:
    """Counts of this run, a few skip reasons, and where the cache is."""
    console.print(f"captioner {cache.captioner_id}: captioned {summary.captioned}, "
                  f"skipped {summary.skipped}, already cached {summary.cached}")
    for item_id, reason in list(cache.skipped.items())[:5]:
        console.print(f"  skipped item {item_id}: {reason}", markup=False, highlight=False)
    if len(cache.skipped) > 5:
        console.print(f"  ... and {len(cache.skipped) - 5} more skipped items (listed in the cache)")
    console.print(f"cache: {path} ({len(cache)} captions)", markup=False, highlight=False)
