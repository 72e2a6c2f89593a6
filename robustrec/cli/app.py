"""The ``robustrec`` command. Heavy libraries (torch, ...) are imported inside commands."""

from __future__ import annotations

import sys

import typer

from robustrec import __version__
from robustrec.cli import captions, compare, evaluate, models, perturb, train
from robustrec.errors import RobustRecError
from robustrec.runtime import tune_allocator

app = typer.Typer(
    name="robustrec",
    help="Stress-test multimodal recommenders: train with/without Mirror Gradient, perturb, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("models")(models.list_models)
app.command("compare")(compare.compare)
app.add_typer(perturb.app, name="perturb")
app.add_typer(captions.app, name="captions")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"robustrec {__version__}")
        raise typer.Exit()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    tune_allocator()
    try:
        # outside standalone mode click returns (not raises) the code of a typer.Exit
        code = app(args=argv, prog_name="robustrec", standalone_mode=False)
    except RobustRecError as exc:
        _fail(str(exc))
    except FloatingPointError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", code=130)
    except typer.Abort:
        _fail("aborted", code=1)
    except Exception as exc:  # click usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"Error: {message}\n")
    sys.exit(code)
