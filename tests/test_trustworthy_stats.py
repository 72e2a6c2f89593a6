"""No false significance: identical results give no effect and p = 1 for any number of repeats;
``compare`` pairs each MG run with the baseline of its own report."""

import json

import numpy as np
import pytest

from robustrec.reports import save_report
from robustrec.reports.compare import load_comparison
from robustrec.reports.gains import all_mg_gains, summarize_level
from robustrec.evaluation.stats import paired_user_test


@pytest.mark.parametrize("repeats", range(1, 13))
def test_identical_trials_give_no_effect_for_any_repeats(repeats):
    rng = np.random.default_rng(repeats)
    # metric values like real per-user recalls: fractions whose float sums do not round-trip
    clean = rng.integers(0, 7, size=2000) / rng.integers(1, 13, size=2000)
    result = paired_user_test(clean, np.stack([clean.copy() for _ in range(repeats)]))
    assert result["mean_difference"] == 0.0
    assert result["ci95"] == [0.0, 0.0]
    assert result["p_value"] == 1.0 and result["wilcoxon_p_value"] == 1.0


def test_mean_then_difference_would_invent_an_effect():
    """The failure this guards against: clean − mean(R copies) is not exactly 0 in floats."""
    rng = np.random.default_rng(3)
    clean = rng.integers(0, 7, size=2000) / rng.integers(1, 13, size=2000)
    stacked = np.stack([clean] * 10)
    assert np.any(clean - stacked.mean(axis=0) != 0)  # rounding residue exists ...
    assert paired_user_test(clean, stacked)["p_value"] == 1.0  # ... and creates no effect


@pytest.mark.parametrize("repeats", [1, 3, 7, 10])
def test_summary_drop_is_exactly_zero_for_identical_trials(repeats):
    clean = {"recall@5": 0.21719999999999998, "ndcg@5": 1 / 3}
    level = {"trials": [{"metrics": dict(clean)} for _ in range(repeats)]}
    summary = summarize_level(clean, level)
    assert all(row["drop_pct"] == 0.0 for row in summary.values())


def _entry(name, mg, clean, levels):
    return {"name": name, "mg": mg, "model": "lightgcn", "path": name,
            "config": {"model": "lightgcn", "dataset": "d", "model_params": {}, "mg": mg},
            "clean": {"recall@5": clean},
            "levels": [{"strength": s, "trials": [{"seed": i, "metrics": {"recall@5": v}} for i, v in enumerate(vals)],
                        "summary": {}} for s, vals in levels.items()]}


def _report(sigmas, base_values, mg_values):
    return {"format": "robustrec-report", "schema_version": 1, "kind": "noise", "created": "now",
            "versions": {}, "dataset": {"name": "d", "fingerprint": "f" * 16},
            "settings": {"strength_name": "sigma", "levels": sigmas, "repeats": 3, "seed": 0,
                         "trial_seeds": [0, 1, 2], "ks": [5], "metric": "recall", "k": 5},
            "checkpoints": [_entry("lightgcn-d", False, 0.2, {s: base_values for s in sigmas}),
                            _entry("lightgcn-d-mg", True, 0.22, {s: mg_values for s in sigmas})],
            "mg_gains": []}


def test_compare_pairs_within_each_report_and_keeps_every_level(tmp_path):
    first = save_report(_report([1e-3], [0.19, 0.18, 0.19], [0.21, 0.215, 0.21]), tmp_path / "a.json")
    second = save_report(_report([1e-2, 1e-1], [0.1, 0.12, 0.11], [0.2, 0.19, 0.2]), tmp_path / "b.json")
    _, (group,) = load_comparison([first, second])
    rows = all_mg_gains(group.entries, ["recall@5"])
    pairs = {(row["baseline"], row["mg"], row["strength"]) for row in rows}
    assert pairs == {("lightgcn-d", "lightgcn-d-mg", 1e-3),
                     ("lightgcn-d (b)", "lightgcn-d-mg (b)", 1e-2),
                     ("lightgcn-d (b)", "lightgcn-d-mg (b)", 1e-1)}
    by_strength = {row["strength"]: row for row in rows}
    assert by_strength[1e-2]["drop_baseline_pct"] == pytest.approx(45.0)  # report b's own baseline


def test_compare_does_not_pair_an_mg_run_with_another_reports_baseline(tmp_path):
    only_base = _report([1e-3], [0.19, 0.18, 0.19], [0.21, 0.215, 0.21])
    only_base["checkpoints"] = only_base["checkpoints"][:1]
    only_mg = json.loads(json.dumps(_report([1e-3], [0.19, 0.18, 0.19], [0.21, 0.215, 0.21])))
    only_mg["checkpoints"] = only_mg["checkpoints"][1:]
    _, (group,) = load_comparison([save_report(only_base, tmp_path / "a.json"),
                                   save_report(only_mg, tmp_path / "b.json")])
    assert all_mg_gains(group.entries, ["recall@5"]) == []


def test_mg_runs_pair_with_the_baseline_of_their_own_seed():
    from robustrec.reports.gains import mg_pairs

    def entry(name, seed, mg):
        return {"name": name, "mg": mg, "config": {"model": "vbpr", "dataset": "d", "model_params": {}, "seed": seed}}

    entries = [entry("b0", 0, False), entry("b1", 1, False), entry("m1", 1, True), entry("m0", 0, True),
               entry("m5", 5, True)]
    pairs = {mg["name"]: base["name"] for base, mg in mg_pairs(entries)}
    assert pairs == {"m1": "b1", "m0": "b0", "m5": "b0"}  # no seed-5 baseline: the first one
