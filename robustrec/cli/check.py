"""``robustrec check SUITE.toml RUN...``: robustness expectations as a build gate."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from robustrec.cli.options import DEVICE
from robustrec.cli.render import console


def check(
    suite: Path = typer.Argument(..., metavar="SUITE.toml", help="The suite of [[check]] tables (see "
                                                                 "`robustrec/examples/checks/` and docs/reports.md)."),
    checkpoints: List[Path] = typer.Argument(..., metavar="RUN...", help="Run folders to check (same data)."),
    junit: Optional[Path] = typer.Option(None, "--junit", metavar="FILE", help="Also write JUnit XML for CI systems."),
    data_dir: str = typer.Option("", help="Where the runs' dataset lives (default: where they were trained)."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0: torch's default)."),
    device: str = DEVICE,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run every check of SUITE.toml on RUN... and print a pass/fail table (measured value, its 95%
    interval, the threshold). Exit 0 when every check passes, 1 when any fails, 2 on bad input."""
    import torch

    from robustrec.checkpoints import load_checkpoints
    from robustrec.cli.perturb import _with_progress
    from robustrec.cli.render import plain_table
    from robustrec.device import resolve_device
    from robustrec.errors import ConfigError
    from robustrec.studies.gate import describe, junit_xml, load_suite, run_suite

    checks = load_suite(suite)
    if junit is not None and junit.is_dir():
        raise ConfigError(f"--junit {junit} is a folder; give a file name")
    if junit is not None:
        from robustrec.paths import check_output_dir

        check_output_dir(junit.parent if str(junit.parent) else Path("."), "--junit")
    target = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    loaded, data = load_checkpoints(checkpoints, data_dir=data_dir or None, device=target)
    outcomes, _ = _with_progress(lambda cbs: run_suite(checks, loaded, data, cbs, device=str(target)), quiet)
    rows = [["pass" if o.passed else "FAIL", o.check, o.run, describe(o)] for o in outcomes]
    console.print(plain_table(["", "check", "run", "expectation: measured [95% interval]"], rows,
                              title=f"{suite.name}: {sum(o.passed for o in outcomes)}/{len(outcomes)} passed"))
    if junit is not None:
        from robustrec.files import write_text_atomic

        write_text_atomic(junit, junit_xml(outcomes, suite.stem))
        console.print(f"wrote [bold]{junit}[/]")
    failed = sorted({o.check for o in outcomes if not o.passed})
    if failed:
        console.print(f"[red]failed:[/] {', '.join(failed)}", highlight=False)
        raise typer.Exit(1)
