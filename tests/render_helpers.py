"""Render Rich output the way a non-terminal 80-column console would, and check nothing was lost."""

import io

from rich.cells import cell_len
from rich.console import Console


def render(renderable, width):
    console = Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def assert_readable(text, width, expected):
    lines = text.splitlines()
    too_long = [line for line in lines if cell_len(line) > width]
    assert not too_long, f"lines wider than {width}: {too_long}"
    assert "…" not in text
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not intact in:\n{text}"
