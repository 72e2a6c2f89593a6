"""Run the real CLI entry point (with its error handling) in-process, and check its one-line errors.

``run_cli`` is the one way tests run ``robustrec``; ``cli_code`` is the same call for module and
session fixtures, which cannot use capsys. A subprocess is used only where a real process is the
point (Ctrl-C, kill -9, fresh imports).
"""

from __future__ import annotations

from robustrec.cli.app import main


def cli_code(*args) -> int:
    """Exit code of ``robustrec ARGS`` (its output goes wherever stdout and stderr go)."""
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``robustrec ARGS``."""
    code = cli_code(*args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str, exit_code: int = 2,
                          prefix: str = "Error: ") -> str:
    """Assert that a command failed with ``exit_code`` and said so in exactly one non-empty line
    (across stdout and stderr) that starts with ``prefix`` and holds every fragment, without a
    traceback; return that line. Typical use: ``assert_one_line_error(*run_cli(capsys, ...), "--k")``.
    Fragments are matched with runs of whitespace collapsed."""
    lines = [line for line in (out + err).splitlines() if line.strip()]
    shown = f"exit code {code}\n--- stdout ---\n{out}--- stderr ---\n{err}"
    assert code == exit_code, f"expected exit code {exit_code}, got {code}\n{shown}"
    assert "Traceback" not in out + err, f"a traceback was printed\n{shown}"
    assert len(lines) == 1, f"expected exactly one non-empty line, got {len(lines)}\n{shown}"
    assert lines[0].startswith(prefix), f"the line does not start with {prefix!r}\n{shown}"
    flat = " ".join(lines[0].split())
    missing = [f for f in fragments if " ".join(f.split()) not in flat]
    assert not missing, f"the line lacks {missing}\n{shown}"
    return lines[0]
