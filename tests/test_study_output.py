"""What `study report` prints and writes: every value readable at 80 and 100 columns, numeric CSVs,
files named by metric, one-line errors, and drop comparisons stated one way across commands."""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len

from cli_helpers import run_cli
from test_study import finished  # noqa: F401 (the example study, run once in this module)


def _shown_numbers(report: dict) -> list[str]:
    """Every number of the report JSON's rows, formatted as the tables show it."""
    key, k = report["key"], report["k"]
    out = []

    def p(value):
        return None if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")

    for row in report["clean"]:
        for spread in (row["valid"], *[row["test"][f"{m}@{k}"] for m in ("recall", "precision", "map", "ndcg")]):
            out += [f"{spread['mean']:.4f}", f"± {spread['std']:.4f}"]
        test = row.get("vs_plain")
        if test:
            out += [f"{test['gain_pct']:+.1f}%", p(test["p_value"]), p(test["p_adjusted"])]
    for row in report["stress"]:
        drop = row["drop_pct"]
        low, high = drop["ci95"]
        out += [f"{drop['mean']:.2f}", f"[{low:.2f}, {high:.2f}]", f"{row['significant_seeds']}/{len(row['per_seed'])}"]
        test = row.get("vs_plain")
        if test:
            out += [f"{test['mean_difference']:+.2f}", p(test["p_value"]), p(test["p_adjusted"])]
    assert key in json.dumps(report)
    return [value for value in out if value is not None]


@pytest.mark.parametrize("width", [80, 100])
def test_study_report_shows_every_value_at_narrow_widths(finished, width, capsys, monkeypatch):  # noqa: F811
    _, out, _ = finished
    monkeypatch.setenv("COLUMNS", str(width))
    code, text, err = run_cli(capsys, "study", "report", out)
    assert code == 0, err
    report = json.loads((out / "report" / "study-report.json").read_text())
    assert report["clean"] and report["stress"]
    tables = text[:text.index("wrote ")]
    assert "…" not in tables
    too_long = [line for line in tables.splitlines() if cell_len(line) > width]
    assert not too_long, too_long
    missing = [value for value in _shown_numbers(report) if value not in tables]
    assert not missing, f"not shown at {width} columns: {missing}\n{tables}"
    for row in report["stress"]:
        assert row["title"] in " ".join(tables.split())
