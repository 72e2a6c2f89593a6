"""What a command has kept so far, for the one line printed when the user presses Ctrl-C.

Commands update the note as their work lands on disk (``kept("resumable state of epoch 3 in
...")``); the entry point prints ``interrupted; <note>`` and exits 130. The default says that
nothing was written, which is true of every command until it renames its output into place.
"""

from __future__ import annotations

NOTHING = "nothing was written"
_note = NOTHING


def kept(note: str) -> None:
    """Record what an interrupt now leaves behind (replaces the previous note)."""
    global _note
    _note = note


def note() -> str:
    return _note


def reset() -> None:
    kept(NOTHING)


class Interrupted(BaseException):
    """Ctrl-C, raised by the entry point's SIGINT handler.

    Not a ``KeyboardInterrupt``: typer turns that into a silent exit 130 before the entry
    point sees it. Library code cleans up on ``BaseException``, so temp files still go.
    """
