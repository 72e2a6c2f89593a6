"""The ``robustrec`` command. Heavy libraries (torch, ...) are imported inside commands."""

from __future__ import annotations

import sys

import typer

from robustrec import __version__
from robustrec.cli import (captions, check, compare, data, evaluate, features, flatness, landscape, models, perturb,
                           report, study, train)
from robustrec.errors import RobustRecError
from robustrec.files import DiskFullError, is_disk_full
from robustrec.runtime import tune_allocator

app = typer.Typer(
    name="robustrec",
    help="Stress-test multimodal recommenders: train with/without Mirror Gradient, perturb, compare.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.command("compare")(compare.compare)
app.command("flatness")(flatness.flatness)
app.command("landscape")(landscape.landscape)
app.command("check")(check.check)
app.add_typer(models.app, name="models")
app.command("stresses")(perturb.list_stresses)
app.add_typer(perturb.app, name="perturb")
app.add_typer(captions.app, name="captions")
app.add_typer(data.app, name="data")
app.add_typer(features.app, name="features")
app.add_typer(study.app, name="study")
app.add_typer(report.app, name="report")


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(f"robustrec {__version__}")
        raise typer.Exit()


def _usage_errors() -> tuple[type, ...]:
    """Usage-error classes: typer >= 0.29 bundles its own click (its ClickException is a
    ``typer.TyperException``); a standalone click may still raise its own."""
    classes: list[type] = [typer.TyperException]
    try:
        import click

        classes.append(click.ClickException)
    except ImportError:  # pragma: no cover - typer 0.29 does not need click
        pass
    return tuple(classes)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every mistake is a short message and a non-zero exit, never a traceback.

    - usage mistakes (unknown command or flag, bad value, missing argument, bare ``robustrec``):
      click's usage message, exit 2;
    - bad input found by robustrec (data, configs, checkpoints, reports): ``Error: ...``, exit 2;
    - a full disk (or quota), wherever the write was: ``Error: no space left on device writing
      PATH (N free on FOLDER); ...``, exit 1;
    - Ctrl-C: ``interrupted; <what was kept>``, exit 130.
    """
    import signal

    from robustrec.cli import interrupt

    tune_allocator()
    interrupt.reset()
    previous = _install_sigint()
    try:
        # outside standalone mode click returns (not raises) the code of a typer.Exit
        code = app(args=argv, prog_name="robustrec", standalone_mode=False)
    except DiskFullError as exc:
        _fail(str(exc), code=1)
    except RobustRecError as exc:
        _fail(str(exc))
    except FloatingPointError as exc:
        _fail(str(exc))
    except (interrupt.Interrupted, KeyboardInterrupt):
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the message
        _interrupted()
    except typer.Abort:
        _fail("aborted", code=1)
    except _usage_errors() as exc:
        if hasattr(exc, "show"):
            exc.show()
        else:  # pragma: no cover - every usage error of typer 0.29 has show()
            _fail(str(exc))
        sys.exit(getattr(exc, "exit_code", 2) or 2)
    except Exception as exc:  # the net under every writer: a full disk is one line, never a traceback
        if not is_disk_full(exc):
            raise
        _fail(_disk_full_line(exc), code=1)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous[0])
            sys.unraisablehook = previous[1]
    if code == 130:  # typer's own exit code for a KeyboardInterrupt it caught (no signal handler)
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _disk_full_line(exc: Exception) -> str:
    """The one line for a full disk that no writer turned into a DiskFullError."""
    from robustrec.files import disk_full_error

    path = getattr(exc, "filename", None)
    if path:
        return str(disk_full_error(exc, path))
    return "no space left on device (a write failed); free some space and run again"


def _install_sigint():
    """Ctrl-C raises ``Interrupted`` (typer would swallow a KeyboardInterrupt); main thread only.

    Python drops an exception raised where it cannot propagate (a weakref callback during a
    lazy import, a ``__del__``) and prints "Exception ignored in ..."; the unraisable hook
    catches that case silently and delivers the interrupt again, so one Ctrl-C is enough.
    Returns what to restore: (previous SIGINT handler, previous unraisable hook), or None.
    """
    import os
    import signal
    import threading

    from robustrec.cli.interrupt import Interrupted

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Interrupted()

    previous_hook = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, Interrupted):
            # deliver it again once we are out of the callback (a signal sent from here would be
            # handled inside this hook, and lost the same way)
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
            return
        previous_hook(unraisable)

    sys.unraisablehook = hook
    return signal.signal(signal.SIGINT, handler), previous_hook


def _interrupted() -> None:
    """Ctrl-C: one line saying what the interrupted command kept, exit 130."""
    from robustrec.cli import interrupt

    _fail(f"interrupted; {interrupt.note()}", code=130, prefix="")


def _fail(message: str, code: int = 2, prefix: str = "Error: ") -> None:
    sys.stderr.write(f"{prefix}{message}\n")
    sys.exit(code)
