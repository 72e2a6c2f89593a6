"""Rich rendering shared by commands: the library returns data, only the CLI draws it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from robustrec.evaluation.metrics import DEFAULT_KS, METRICS
from robustrec.reports.tables import plain_table  # noqa: F401 (commands import it from here)

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
