"""``robustrec data``: look at a dataset before training on it."""

from __future__ import annotations

import typer

from robustrec.cli.render import console

app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


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
