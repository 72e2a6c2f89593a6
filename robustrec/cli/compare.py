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
    moves: bool = typer.Option(True, "--moves/--no-moves", help="Also the tables of what the stress moves (top-K "
                                                              "overlap, exposure, slices)."),
) -> None:
    """Side-by-side tables of REPORTS: named files must have been made on the same data; the reports
    of a FOLDER are compared per dataset, one section (with its own report count) each."""
    from robustrec.errors import ConfigError
    from robustrec.evaluation import METRICS
    from robustrec.reports.compare import load_sections
    from robustrec.reports.gains import SOURCE
    from robustrec.reports.schema import data_fingerprint

    if metric and metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    sections = load_sections(reports) if any(path.is_dir() for path in reports) else [
        load_section(reports)]  # a folder is compared per dataset; named files must share their data
    for section in sections:
        for group in section.groups:
            shown_metric, shown_k = metric or group.metric, k or group.k
            missing = [e["name"] for e in group.entries if f"{shown_metric}@{shown_k}" not in e["clean"]]
            if missing:
                raise ConfigError(f"{shown_metric}@{shown_k} is not in the report(s) of {', '.join(missing)}")
    for section in sections:
        if len(sections) > 1:
            console.print(f"\n[bold]{section.dataset['name']}[/] (data {data_fingerprint(section.dataset)}): "
                          f"{section.reports} report(s)", highlight=False)
        for group in section.groups:
            n_reports = len({entry[SOURCE] for entry in group.entries})  # this table's own reports
            print_tables(section.dataset, group.title or group.kind, group.strength_name, group.entries,
                         metric or group.metric, k or group.k, extra=f"{n_reports} report(s)", moves=moves)


def load_section(paths):
    from robustrec.reports.compare import ComparisonSection, expand_report_paths, load_comparison

    dataset, groups = load_comparison(paths)
    return ComparisonSection(dataset, groups, len(expand_report_paths(paths)))


def print_tables(dataset: dict, kind: str, strength_name: str, entries: list[dict], metric: str, k: int,
                 extra: str = "", moves: bool = True) -> None:
    """``kind``: the heading's first words (a report's title, else its kind)."""
    from robustrec.reports.schema import data_fingerprint
    from robustrec.reports.tables import gains_table, moves_tables, results_table

    title = (f"{kind} on {dataset['name']} (data {data_fingerprint(dataset)})" + (f", {extra}" if extra else ""))
    console.print(results_table(entries, metric, k, strength_name, title))
    gains = gains_table(entries, metric, k, strength_name)
    if gains is not None:
        console.print(gains)
    for table in moves_tables(entries, k, strength_name) if moves else []:
        console.print(table)
