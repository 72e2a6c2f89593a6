"""Run the real CLI entry point (with its error handling) in-process."""

from __future__ import annotations

from robustrec.cli.app import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``robustrec ARGS``."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def cli_code(*args) -> int:
    """Exit code of ``robustrec ARGS`` (for module and session fixtures, which cannot use capsys)."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
