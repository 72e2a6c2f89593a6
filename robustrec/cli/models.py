"""``robustrec models``: the models there are (built in and installed), and ``models check``."""

from __future__ import annotations

import typer
from rich.table import Table

from robustrec.cli.render import console

app = typer.Typer(help="List the models (built in and installed), or check a model class against the contract.",
                  invoke_without_command=True, no_args_is_help=False)


@app.callback()
def list_models(ctx: typer.Context) -> None:
    """List the models: built in and from installed packages (the robustrec.models entry points),
    their modalities, paper, and whether features matter at inference."""
    if ctx.invoked_subcommand is not None:
        return
    from robustrec.models import available_models
    from robustrec.models.sources import entry_points

    table = Table(title="registered models", title_justify="left")
    for column in ("name", "modalities", "features at inference", "paper"):
        table.add_column(column)
    for name, cls in available_models().items():
        table.add_row(name, _modalities(cls), "yes" if cls.features_at_inference else "no", cls.paper)
    console.print(table)
    installed = entry_points()
    if installed:
        rows = Table(title="installed models (entry points)", title_justify="left")
        for column in ("name", "class", "from"):
            rows.add_column(column)
        for name, point in sorted(installed.items()):
            rows.add_row(name, point.value, getattr(point.dist, "name", None) or "?")
        console.print(rows)
    console.print("Your own model: --model PATH.py:CLASS (check it with `robustrec models check PATH.py:CLASS`).",
                  highlight=False, markup=False)


def _modalities(cls) -> str:
    return "any (image, text, audio, ...)" if cls.multimodal else "IDs only"


@app.command("check")
def check(
    reference: str = typer.Argument(..., metavar="MODEL", help="PATH.py:CLASS, mmrec:PATH.py:CLASS or a model name."),
    param: list[str] = typer.Option([], "--param", "-p", help="Model hyper-parameter key=value (repeatable)."),
    threads: int = typer.Option(1, min=0, help="Torch CPU threads (0 = torch default)."),
) -> None:
    """Run the model contract's rules on a class (finite differentiable loss, ranker shape,
    embedding tables, features change scores iff used at inference, honest loss_reads_features,
    copy and restore, device move, bitwise determinism) on a tiny synthetic world; exit 1 on any
    failure."""
    from robustrec.config import from_dict, parse_assignments
    from robustrec.models import get_model_class

    params = parse_assignments(param)
    cls = get_model_class(reference)  # a file that is missing, broken or breaks the contract: one line
    from_dict(cls.Params, dict(params), cls.name)  # names and types of --param
    import torch

    from robustrec.models.contract import check_class

    if threads > 0:
        torch.set_num_threads(threads)
    results = check_class(cls, params=params)
    table = Table(title=f"contract of {cls.name} ({cls.__name__})", title_justify="left")
    table.add_column("rule", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for result in results:
        table.add_row(result.rule, "pass" if result.ok else "FAIL", result.reason)
    console.print(table)
    failed = [r.rule for r in results if not r.ok]
    if failed:
        console.print(f"{len(failed)} of {len(results)} rules fail: {', '.join(failed)}", highlight=False, markup=False)
        raise typer.Exit(1)
    console.print(f"all {len(results)} rules pass", highlight=False, markup=False)
