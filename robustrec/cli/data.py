"""``robustrec data``: look at a dataset before training on it."""

from __future__ import annotations

from typing import Optional

import typer

from robustrec.cli.render import console

app = typer.Typer(help="Inspect datasets; write sized synthetic ones.", no_args_is_help=True)


@app.command("inspect")
def inspect(
    dataset: str = typer.Option("synthetic", help="Dataset name: 'synthetic' (built in) or a folder under --data-dir."),
    data_dir: str = typer.Option("data", help="Folder holding <dataset>/<dataset>.inter (MMRec layout)."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON (for scripts)."),
) -> None:
    """Users, items, interactions per split, density, feature files and their coverage, raw content."""
    import json

    from robustrec.data.inspect import inspect_dataset
    from robustrec.synthetic.folder import prepare_dataset

    prepare_dataset(dataset, data_dir)  # the built-in dataset is made on first use
    summary = inspect_dataset(dataset, data_dir)
    if json_out:
        typer.echo(json.dumps(summary, indent=1))
        return
    for table in _tables(summary):
        console.print(table)



@app.command("synth")
def synth(
    preset: Optional[str] = typer.Option(None, help="Sizes of an MMRec Amazon set: baby, sports, clothing or elec."),
    users: Optional[int] = typer.Option(None, help="Number of users (overrides the preset's)."),
    items: Optional[int] = typer.Option(None, help="Number of items (overrides the preset's)."),
    interactions: Optional[int] = typer.Option(None, help="Number of interactions, ≥ 5 × users (overrides the preset's)."),
    modalities: Optional[str] = typer.Option(None, help="Feature files as name:dim,... (default image:4096,text:384; "
                                                          "'none': no feature file)."),
    name: Optional[str] = typer.Option(None, help="Dataset folder name (default synth-<preset>, else synth-custom)."),
    seed: int = typer.Option(0, help="Seed: the same seed gives the same bytes."),
    data_dir: str = typer.Option("data", help="Folder to write <name>/<name>.inter and <modality>_feat.npy into."),
    overwrite: bool = typer.Option(False, help="Replace an existing dataset folder of the same name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a sized synthetic dataset (MMRec layout): long-tail items, 5-core users, 8:1:1 split, features."""
    from robustrec.data.sized import check_target, resolve_spec, write_sized

    dataset, spec = resolve_spec(preset, users, items, interactions, modalities, seed, name)
    check_target(data_dir, dataset, overwrite)
    if quiet or not console.is_interactive:
        summary = write_sized(data_dir, dataset, spec, overwrite)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(what, total=total)
                bar.update(tasks[what], completed=done)

            summary = write_sized(data_dir, dataset, spec, overwrite, progress)
    typer.echo(f"{summary['folder']}: {summary['users']:,} users × {summary['items']:,} items × "
               f"{summary['interactions']:,} interactions (train/valid/test {summary['train']:,}/"
               f"{summary['valid']:,}/{summary['test']:,}), density {summary['density']:.5f}, "
               f"files {', '.join(summary['files'])}, {summary['seconds']:.1f} s")

def _tables(summary: dict):
    from rich.table import Table

    inter = summary["interactions"]
    head = Table(title=f"{summary['name']} ({summary['folder']}, data {summary['fingerprint'] or '–'})",
                 title_justify="left", show_header=False)
    head.add_column(style="bold")
    head.add_column(justify="right")
    spread = "{min} / {median:g} / {max}"
    for label, value in (("users", f"{inter['users']:,}"), ("items", f"{inter['items']:,}"),
                         ("interactions train / valid / test", f"{inter['train']:,} / {inter['valid']:,} / {inter['test']:,}"),
                         ("density", f"{inter['density']:.5f}"),
                         ("per user min / median / max", spread.format(**inter["per_user"])),
                         ("per item min / median / max", spread.format(**inter["per_item"])),
                         ("items never in train", f"{inter['items_without_training_interactions']:,}"),
                         ("users with valid / test items",
                          f"{inter['users_with_valid_items']:,} / {inter['users_with_test_items']:,}")):
        head.add_row(label, value)
    yield head
    features = Table(title="<modality>_feat.npy files; coverage: _mask.npy, else finite non-zero rows",
                     title_justify="left")
    for column in ("modality", "rows×dim", "dtype", "coverage", "all-zero", "NaN/inf", "dup rows"):
        features.add_column(column, justify="left" if column == "modality" else "right",
                            no_wrap=column != "modality", overflow="fold")
    for m in summary["modalities"]:
        shape = f"{m['rows']}×{m['dim']}" + ("" if m["rows_match_items"] else " ≠ items")
        features.add_row(m["modality"], shape, m["dtype"], f"{m['coverage']:.1%}", f"{m['all_zero_rows']:,}",
                         f"{m['non_finite_rows']:,}", f"{m['duplicate_rows']:,}")
    if not summary["modalities"]:
        features.add_row("(none)", "–", "–", "–", "–", "–", "–")
    yield features
    content = summary["content"]
    texts, images = content["texts"], content["images"]
    if summary["load_error"]:
        yield f"[yellow]training would refuse this folder:[/] {summary['load_error']}"
    yield ("content: texts " + (f"{texts['items']:,} items ({texts['coverage']:.1%}) in {texts['file']}" if texts
                                else "none")
           + "; images " + (f"{images['items']:,} items ({images['coverage']:.1%}) from {images['source']}"
                            f" ({images['local_files']:,} local files, {images['urls']:,} URLs)" if images else "none"))
