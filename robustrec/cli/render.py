"""Rich rendering shared by commands: the library returns data, only the CLI draws it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from robustrec.evaluation.metrics import DEFAULT_KS, METRICS

console = Console()
err_console = Console(stderr=True)

LABELS = {"recall": "REC", "precision": "PREC", "map": "MAP", "ndcg": "NDCG"}


def metrics_table(title: str, columns: dict[str, dict[str, float]], ks=DEFAULT_KS) -> Table:
    """One row per (named metrics dict, K), one column per metric: REC, PREC, MAP, NDCG."""
    table = Table(title=title, title_justify="left")
    table.add_column("split")
    table.add_column("K", justify="right")
    for metric in METRICS:
        table.add_column(LABELS[metric], justify="right")
    for name, values in columns.items():
        for k in ks:
            table.add_row(name, str(k), *(f"{values[f'{metric}@{k}']:.4f}" for metric in METRICS))
        table.add_section()
    return table


def plain_table(headers: list[str], rows: list[list[str]], title: str | None = None) -> Table:
    """A table of strings; columns after the first right-justified when they hold numbers."""
    table = Table(title=title, title_justify="left")
    for index, header in enumerate(headers):
        numeric = index > 0 and rows and all(_numeric(row[index]) for row in rows if row[index])
        table.add_column(header, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*row)
    return table


def _numeric(text: str) -> bool:
    try:
        float(text.replace("%", "").replace("±", " ").split()[0].replace(",", ""))
        return True
    except (ValueError, IndexError):
        return False
