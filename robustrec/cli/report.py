"""``robustrec report``: render robustness reports as one self-contained HTML file."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from robustrec.cli.render import console

app = typer.Typer(help="Render robustness reports: one self-contained HTML file (no network when viewed).",
                  no_args_is_help=True)


@app.command("html")
def html(
    reports: list[Path] = typer.Argument(..., metavar="REPORT...",
                                         help="Report JSON files written by `robustrec perturb`, or folders of them "
                                              "(all made on the same data)."),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write."),
    metric: str = typer.Option("", help="Metric shown (default: the first report's)."),
    k: int = typer.Option(0, help="Cut-off shown (default: the first report's)."),
    correction: str = typer.Option("holm", help="Multiple-comparison correction: holm or bh (Benjamini–Hochberg)."),
    landscape: list[Path] = typer.Option([], "--landscape",
                                         help="A landscape-*.json of `robustrec landscape`, or a folder of them "
                                              "(repeatable)."),
) -> None:
    """One HTML page of REPORTS: leaderboard, stress grid, severity curves, MG vs plain, flatness,
    provenance. Written atomically; styles, scripts and figures are inside the file."""
    from robustrec.errors import ConfigError
    from robustrec.evaluation import METRICS
    from robustrec.reports.html import check_html_path, reports_html, write_html

    if metric and metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    check_html_path(output, "--output")  # before any work
    command = shlex.join(["robustrec", "report", "html", *map(str, reports), "-o", str(output),
                          *(["--metric", metric] if metric else []), *(["--k", str(k)] if k else []),
                          "--correction", correction, *[a for p in landscape for a in ("--landscape", str(p))]])
    text = reports_html(reports, landscapes=landscape, metric=metric, k=k, correction=correction, command=command)
    path = write_html(text, output, "--output")
    console.print(f"wrote [bold]{path}[/] ({len(text.encode()) / 1e6:.1f} MB)", highlight=False, soft_wrap=True)
