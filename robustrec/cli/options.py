"""Options several commands share."""

from __future__ import annotations

import typer

DEVICE_HELP = ("Where models run: auto (the first GPU when torch sees one, else the CPU), cpu, cuda or cuda:N. "
               "Not part of the run's settings.")
DEVICE = typer.Option("auto", "--device", help=DEVICE_HELP)


def _apply_max_memory(value: str | None) -> str | None:
    """Check ``--max-memory`` and make it the process's budget (and its child processes')."""
    if value is not None:
        from robustrec.runtime import set_memory_budget

        set_memory_budget(value)
    return value


MAX_MEMORY_HELP = ("Memory budget for working blocks (full-ranking score blocks), e.g. 4GiB, 512MiB, 2G; "
                   "default: $ROBUSTREC_MAX_MEMORY, else half the memory available. Never changes results.")
MAX_MEMORY = typer.Option(None, "--max-memory", metavar="SIZE", callback=_apply_max_memory, help=MAX_MEMORY_HELP)
