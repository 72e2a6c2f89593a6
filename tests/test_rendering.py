"""Report tables at 80 columns: narrow layouts that cut no name, interval or p-value short."""

import pytest
from render_helpers import assert_readable, render

from robustrec.reports.gains import all_mg_gains, summarize_level
from robustrec.reports.tables import gains_table, results_table

KEY = "recall@5"
NAMES = ("layergcn-baby-seed2", "layergcn-baby-mg-seed2", "freedom-synthetic", "freedom-synthetic-mg")


def _level(clean, strength, values, ci, p_value, seeds=(11, 12, 13)):
    level = {"strength": strength, "trials": [{"seed": s, "metrics": {KEY: v}} for s, v in zip(seeds, values)],
             "user_test": {KEY: {"ci95": ci, "p_value": p_value}},
             "flatness": {"loss_rise": {"mean": -2.5e-6 * strength * 1e3, "std": 4.9e-6}, "rho_sharpness": 1.87e-3}}
    level["summary"] = summarize_level({KEY: clean}, level)
    return level


def _entry(name, model, mg, clean, shift):
    """Two noise levels; CI bounds (relative to clean) with negative lower ends, tiny and ordinary p."""
    return {"name": name, "model": model, "mg": mg, "config": {"model": model, "dataset": "baby", "mg": mg},
            "clean": {KEY: clean},
            "levels": [_level(clean, 1e-3, [clean - 0.001 * shift, clean - 0.0012, clean - 0.0008],
                              [-0.0003 * shift, 0.0021], 0.1083 + 0.01 * shift),
                       _level(clean, 1e-2, [clean - 0.01, clean - 0.02 * shift, clean - 0.005],
                              [0.0101 * shift, 0.0305], 3e-6)]}


@pytest.fixture(scope="module")
def entries():
    return [_entry(NAMES[0], "layergcn", False, 0.0575, 1), _entry(NAMES[1], "layergcn", True, 0.0612, 2),
            _entry(NAMES[2], "freedom", False, 0.0811, 3), _entry(NAMES[3], "freedom", True, 0.0857, 1)]


def _results_strings(entries):
    """What the results table must show intact: every CI [lo, hi] (in % of clean) and p-value."""
    out = []
    for entry in entries:
        clean = entry["clean"][KEY]
        for level in entry["levels"]:
            low, high = (v / clean * 100 for v in level["user_test"][KEY]["ci95"])
            p_value = level["user_test"][KEY]["p_value"]
            out += [f"[{low:.2f}, {high:.2f}]", "<1e-4" if p_value < 1e-4 else f"{p_value:.4f}"]
    return out


@pytest.mark.parametrize("width", [80, 100, 120])
def test_results_table_fits_without_losing_values(entries, width):
    text = render(results_table(entries, "recall", 5, "sigma", "noise on baby (data 0123456789abcdef), "
                                 "10 repeats, seed 0, target all"), width)
    shown = [f"{level['summary'][KEY][stat]:.4f}" for entry in entries for level in entry["levels"]
             for stat in ("mean", "std")]
    shown += [f"{level['flatness']['loss_rise']['mean']:.2e}" for entry in entries for level in entry["levels"]]
    assert_readable(text, width, [*NAMES, *_results_strings(entries), *shown, "REC@5", "0.0575", "1.87e-03"])


def test_results_table_keeps_the_wide_layout_when_it_fits(entries):
    text = render(results_table(entries, "recall", 5, "sigma", "noise"), 200)
    assert_readable(text, 200, [*NAMES, "drop % [95% CI]", "perturbed REC@5"])
    first = next(line for line in text.splitlines() if NAMES[1] in line)
    assert _results_strings(entries[1:2])[0] in first  # one row per checkpoint and level, CI on it
    assert text.count("┏") == 1  # a single table
    gains = render(gains_table(entries, "recall", 5, "sigma"), 200)
    assert gains.count("┏") == 1 and f"{NAMES[0]} → {NAMES[1]}" in gains


def test_results_table_shows_unaffected_checkpoints_at_80(entries):
    unaffected = {"name": "lightgcn-baby-mg-seed2", "model": "lightgcn", "mg": True, "config": {"model": "lightgcn"},
                  "clean": {KEY: 0.0612}, "levels": [],
                  "unaffected": "unaffected by construction: inference does not use raw item features"}
    text = render(results_table([unaffected, *entries], "recall", 5, "rate", "caption"), 80)
    assert_readable(text, 80, ["lightgcn-baby-mg-seed2", "0.0612", *_results_strings(entries)])
    assert "raw item features" in text and "unaffected by construction" in text


@pytest.mark.parametrize("width", [80, 120])
def test_gains_table_fits_without_losing_values(entries, width):
    rows = all_mg_gains(entries, [KEY])
    assert len(rows) == 4
    expected = []
    for row in rows:
        low, high = row["test"]["ci95"]
        p_value = row["test"]["p_value"]
        expected += [row["baseline"], row["mg"], f"[{low:.2f}, {high:.2f}]",
                     "<1e-4" if p_value < 1e-4 else f"{p_value:.4f}", f"{row['drop_reduction_pts']:+.2f}",
                     f"{row['clean_gain_pct']:+.2f}", f"{row['flatness']['mg']:.2e}"]
    text = render(gains_table(entries, "recall", 5, "sigma"), width)
    assert_readable(text, width, expected)
    assert "Mirror Gradient gain" in text
