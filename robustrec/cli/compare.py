"""``robustrec compare``: render several robustness reports side by side."""

from __future__ import annotations

from pathlib import Path

import typer

from robustrec.cli.render import console


def compare(
    reports: list[Path] = typer.Argument(..., metavar="REPORT...",
                                         help="Report JSON files written by `robustrec perturb`, or folders of them."),
    metric: str = typer.Option("", help="Metric to show (default: the first report's)."),
    k: int = typer.Option(0, help="Cut-off to show (default: the first report's)."),
) -> None:
    """Side-by-side tables of REPORTS (they must have been made on the same data)."""
    from robustrec.errors import ConfigError
    from robustrec.evaluation import METRICS
    from robustrec.reports.compare import load_comparison
    from robustrec.reports.gains import SOURCE

    if metric and metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    dataset, groups = load_comparison(reports)  # a folder stands for the reports in it
    n_reports = len({entry[SOURCE] for group in groups for entry in group.entries})
    for group in groups:
        shown_metric, shown_k = metric or group.metric, k or group.k
        missing = [e["name"] for e in group.entries if f"{shown_metric}@{shown_k}" not in e["clean"]]
        if missing:
            raise ConfigError(f"{shown_metric}@{shown_k} is not in the report(s) of {', '.join(missing)}")
        print_tables(dataset, group.title or group.kind, group.strength_name, group.entries, shown_metric, shown_k,
                     extra=f"{n_reports} report(s)")


def print_tables(dataset: dict, kind: str, strength_name: str, entries: list[dict], metric: str, k: int,
                 extra: str = "") -> None:
    """``kind``: the heading's first words (a report's title, else its kind)."""
    from robustrec.reports.tables import gains_table, moves_tables, results_table

    title = (f"{kind} on {dataset['name']} (data {dataset['fingerprint']})" + (f", {extra}" if extra else ""))
    console.print(results_table(entries, metric, k, strength_name, title))
    gains = gains_table(entries, metric, k, strength_name)
    if gains is not None:
        console.print(gains)
    for table in moves_tables(entries, k, strength_name):
        console.print(table)
