"""Options several commands share."""

from __future__ import annotations

import typer

DEVICE_HELP = ("Where models run: auto (the first GPU when torch sees one, else the CPU), cpu, cuda or cuda:N. "
               "Not part of the run's settings.")
DEVICE = typer.Option("auto", "--device", help=DEVICE_HELP)
