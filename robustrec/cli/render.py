"""Rich rendering shared by commands: the library returns data, only the CLI draws it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from robustrec.evaluation.metrics import DEFAULT_KS, METRICS

console = Console()
err_console = Console(stderr=True)

LABELS = {"recall": "REC", "precision": "PREC", "map": "MAP", "ndcg": "NDCG"}


def metrics_table(title: str, columns: dict[str, dict[str, float]], ks=DEFAULT_KS) -> Table:
    """Rows metric@K, one column per named metrics dict (e.g. valid, test)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    for k in ks:
        for metric in METRICS:
            key = f"{metric}@{k}"
            table.add_row(f"{LABELS[metric]}@{k}", *(f"{values[key]:.4f}" for values in columns.values()))
    return table
