"""``robustrec models``: the registered models and what they consume."""

from __future__ import annotations

from rich.table import Table

from robustrec.cli.render import console


def list_models() -> None:
    """List registered models, their modalities, paper, and whether features matter at inference."""
    from robustrec.models import available_models

    table = Table(title="registered models", title_justify="left")
    for column in ("name", "modalities", "features at inference", "paper"):
        table.add_column(column)
    for name, cls in available_models().items():
        modalities = "any (image, text, audio, ...)" if cls.multimodal else "IDs only"
        if not cls.trainable:
            modalities += "; a baseline (nothing to learn)"
        table.add_row(name, modalities, "yes" if cls.features_at_inference else "no", cls.paper)
    console.print(table)
