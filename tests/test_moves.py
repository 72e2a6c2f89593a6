"""Who and what a stress moves (rank stability, edited items, exposure, slices) and effect sizes
with power: pure functions against hand-computed values, the runner, a real report and compare."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from robustrec.evaluation.moves import (gini, item_exposure, jaccard, long_tail_mask, overlap_at_depths,
                                        rank_shifts, rbo, slot_mean, sliced_recall, summarize_moves, terciles)
from robustrec.evaluation.stats import (dz_interval, drop_difference_test, effect_size, minimum_detectable_dz,
                                     paired_power, paired_user_test, seed_paired_test, significance_words)

# --- rank stability --------------------------------------------------------------------------------


def test_overlap_jaccard_and_rbo_by_hand():
    clean, perturbed = np.array([[1, 2, 3, 4]]), np.array([[2, 1, 5, 6]])
    assert overlap_at_depths(clean, perturbed).tolist() == [[0, 2, 2, 2]]
    assert jaccard(clean, perturbed, 4)[0] == pytest.approx(2 / 6)  # |{1,2}| / |{1,...,6}|
    assert jaccard(clean, perturbed, 2)[0] == 1.0
    # (X4/4)·p⁴ + (1−p)/p · Σ_d (X_d/d)·p^d with X = 0, 2, 2, 2 and p = 0.9
    by_hand = 0.5 * 0.9 ** 4 + (0.1 / 0.9) * (0 * 0.9 + 1 * 0.81 + (2 / 3) * 0.729 + 0.5 * 0.6561)
    assert rbo(clean, perturbed, 4)[0] == pytest.approx(by_hand) == pytest.approx(0.5085, abs=1e-4)
    assert rbo(clean, clean, 4)[0] == pytest.approx(1.0) and jaccard(clean, clean, 4)[0] == 1.0
    disjoint = np.array([[7, 8, 9, 10]])
    assert rbo(clean, disjoint, 4)[0] == 0.0 and jaccard(clean, disjoint, 4)[0] == 0.0
    padded = np.array([[3, -1]])  # fewer items than K: -1 is no item
    assert jaccard(padded, padded, 2)[0] == 1.0


def test_rank_shifts_of_edited_and_other_items_by_hand():
    changed = np.zeros(10, dtype=bool)
    changed[3] = True
    shifts = rank_shifts(np.array([[1, 2, 3]]), np.array([[3, 1, 4]]), 3, changed)
    # item 1: 1 → 2 (+1); item 2: 2 → out (4, +2); item 4: out (4) → 3 (−1); item 3 (edited): 3 → 1 (−2)
    assert shifts == {"edited": (-2.0, 1), "other": (2.0, 3)}


# --- exposure -------------------------------------------------------------------------------------


def test_gini_long_tail_exposure_and_popularity_by_hand():
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # Σ(2i−n−1)x / (n Σx) = 3·4 / 16
    assert gini(np.array([2, 2, 2])) == 0.0 and gini(np.zeros(3)) == 0.0
    assert long_tail_mask(np.array([5, 1, 5, 0, 3])).tolist() == [False, True, True, True, True]  # ⌈0.2·5⌉ = 1
    popularity = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    assert np.flatnonzero(~long_tail_mask(popularity)).tolist() == [0, 1]
    top = np.array([[0, 1], [1, -1]])
    assert item_exposure(top, 3, 2).tolist() == [1, 2, 0]
    assert slot_mean(top, np.array([10, 20, 30]), 2) == pytest.approx(50 / 3)
    assert slot_mean(top, np.array([10, 20, 30]), 1) == pytest.approx(15)


# --- slices ---------------------------------------------------------------------------------------


def test_terciles_and_sliced_recall_by_hand():
    assert terciles(np.array([5, 1, 3, 2, 4, 6])).tolist() == [2, 0, 1, 0, 1, 2]
    assert terciles(np.array([1, 1, 1])).tolist() == [0, 1, 2]  # ties: by id
    top = np.array([[0, 1], [2, 3]])
    hits = np.array([[True, False], [True, True]])
    in_slice = np.array([True, False, True, True])
    # user 0: 2 held-out items in the slice, 1 hit in it → 0.5; user 1: 2 of 2 → 1.0
    assert sliced_recall(hits, top, np.array([2, 2]), in_slice, 2) == pytest.approx(0.75)
    assert sliced_recall(hits, top, np.array([0, 0]), in_slice, 2) is None


def test_summarize_moves_gives_change_and_slice_drops_with_intervals():
    clean = {"gini@5": 0.5, "recall@5|users:low": 0.2}
    trials = [{"jaccard@5": 0.8, "gini@5": 0.6, "recall@5|users:low": 0.1},
              {"jaccard@5": 1.0, "gini@5": 0.4, "recall@5|users:low": 0.2}]
    out = summarize_moves(clean, trials)
    assert out["jaccard@5"]["mean"] == pytest.approx(0.9) and "change" not in out["jaccard@5"]
    assert out["gini@5"]["change"]["mean"] == pytest.approx(0.0)
    assert out["recall@5|users:low"]["drop_pct"]["mean"] == pytest.approx(25.0)  # drops of 50% and 0%
    low, high = out["recall@5|users:low"]["drop_pct"]["ci95"]
    assert low < 25 < high


# --- effect sizes and power -----------------------------------------------------------------------


def test_effect_size_by_hand_and_identical_results():
    d_z, (low, high) = effect_size([1, 2, 3, 4])
    assert d_z == pytest.approx(2.5 / math.sqrt(5 / 3))  # mean / sd (ddof 1)
    from scipy import stats  # the exact interval: the noncentral t has t_obs at its 97.5% / 2.5% points

    t_obs = d_z * 2
    assert stats.nct.cdf(t_obs, 3, low * 2) == pytest.approx(0.975, abs=1e-6)
    assert stats.nct.cdf(t_obs, 3, high * 2) == pytest.approx(0.025, abs=1e-6)
    assert effect_size([0, 0, 0]) == (0.0, [0.0, 0.0])
    assert effect_size([1, 1, 1]) == (None, [None, None]) and effect_size([1]) == (None, [None, None])
    # large n: d ± 1.96·√(1/n + d²/2n)
    half = 1.959964 * math.sqrt(1 / 400 + 0.25 ** 2 / 800)
    assert dz_interval(0.25, 400) == pytest.approx((0.25 - half, 0.25 + half), abs=1e-5)
    same = paired_user_test(np.full(6, 0.3), np.full((3, 6), 0.3))
    assert (same["d_z"], same["p_value"]) == (0.0, 1.0)
    assert same["d_z_ci95"] == [0.0, 0.0]


def test_minimum_detectable_effect_by_hand_and_by_simulation():
    # large n: (z_.975 + z_.80)/√n = (1.95996 + 0.84162)/√1000
    assert minimum_detectable_dz(1000) == pytest.approx(2.80158 / math.sqrt(1000), rel=2e-3)
    assert minimum_detectable_dz(10) == pytest.approx(0.996, abs=2e-3)  # 10 pairs: about one sd
    assert minimum_detectable_dz(1) is None
    mde = minimum_detectable_dz(3)
    assert mde == pytest.approx(3.264, abs=2e-3) and paired_power(mde, 3) == pytest.approx(0.8)
    from scipy import stats  # Monte Carlo: 3 pairs with true d_z = mde are significant 80% of the time

    rng = np.random.default_rng(0)
    draws = rng.standard_normal((20000, 3)) + mde
    p = stats.ttest_1samp(draws, 0.0, axis=1).pvalue
    assert (p < 0.05).mean() == pytest.approx(0.8, abs=0.015)


def test_seed_level_tests_say_underpowered_and_identical_gives_zero():
    three = seed_paired_test([1.0, 2.0, 3.5], [0.5, 1.0, 3.0])
    assert three["power"] == "underpowered" and three["mde_d_z"] == pytest.approx(3.264, abs=2e-3)
    assert three["d_z"] == pytest.approx((2 / 3) / np.std([0.5, 1, 0.5], ddof=1))
    assert significance_words(three) == "not significant, underpowered"
    same = seed_paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same["d_z"], same["p_value"], same["d_z_ci95"]) == (0.0, 1.0, [0.0, 0.0])
    many = drop_difference_test(np.arange(30.0), np.arange(30.0) - 1 + 0.1 * np.sin(np.arange(30)), paired=True)
    assert many["power"] == "adequate" and many["mde_d_z"] < 0.8 and many["d_z"] > 5
    assert significance_words(many) == "significant"
    welch = drop_difference_test(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]), paired=False)
    assert welch["d"] == pytest.approx(-0.5 / math.sqrt((1 + 5 / 3) / 2)) and welch["d_z"] is None


# --- the runner: zero strength moves nothing; a swap moves its edited items ------------------------


@pytest.fixture(scope="module")
def swap_report(small_data):
    import dataclasses

    from robustrec.checkpoints import LoadedCheckpoint
    from robustrec.models import build_model
    from robustrec.perturbations.modality import FeatureSwap
    from robustrec.studies.runner import StudySettings, run_study

    covered = np.arange(small_data.n_items) % 3 != 0  # a coverage mask: content slices appear
    data = dataclasses.replace(small_data, masks={"text": covered})
    model = build_model("vbpr", data, seed=0)  # untrained is enough: evaluation never trains
    run = SimpleNamespace(name="vbpr", path=".", weights_sha256=None, config={"model": "vbpr"}, metrics={})
    levels = [FeatureSwap("image", data.n_items, rate=rate) for rate in (0.0, 0.5)]
    return run_study([LoadedCheckpoint(model, run)], data, levels, StudySettings(repeats=2, seed=3))


def test_zero_strength_gives_overlap_one_and_no_exposure_change(swap_report):
    (entry,) = swap_report["checkpoints"]
    zero = entry["levels"][0]
    for k in swap_report["settings"]["ks"]:
        assert zero["moves"][f"jaccard@{k}"]["mean"] == 1.0
        assert zero["moves"][f"rbo@{k}"]["mean"] == pytest.approx(1.0, abs=1e-12)
        for name in ("long_tail_share", "gini", "mean_popularity"):
            row = zero["moves"][f"{name}@{k}"]
            assert row["clean"] == entry["clean_moves"][f"{name}@{k}"] and row["change"]["mean"] == 0.0
        assert zero["moves"][f"edited_rank_shift@{k}"]["mean"] is None  # nothing was edited
        assert zero["moves"][f"other_rank_shift@{k}"]["mean"] == 0.0
        assert zero["moves"][f"other_exposure_change@{k}"]["mean"] == 0.0
        for name in ("users:low", "users:mid", "users:high", "items:low", "items:high", "text:with",
                     "text:without"):
            assert zero["moves"][f"recall@{k}|{name}"]["drop_pct"]["mean"] in (0.0, None)
    assert all(t["moves"]["jaccard@5"] == 1.0 for t in zero["trials"])


def test_swap_moves_lists_and_reports_its_edited_items(swap_report):
    (entry,) = swap_report["checkpoints"]
    half = entry["levels"][1]
    assert half["moves"]["jaccard@10"]["mean"] < 1.0 and half["moves"]["rbo@10"]["mean"] < 1.0
    assert half["moves"]["edited_rank_shift@10"]["mean"] is not None
    assert half["moves"]["jaccard@10"]["ci95"][0] is not None  # over the repeats, like the drop
    assert "changed" in half["moves_items"]
    assert [t["seed"] for t in half["trials"]] == swap_report["settings"]["trial_seeds"]
    assert half["user_test"]["recall@10"]["d_z"] is not None
    json.dumps(swap_report)  # valid JSON throughout


# --- a real report (perturb noise through the CLI) and compare ------------------------------------


def test_perturb_report_and_compare_show_the_moves(bprmf_pair, tmp_path, capsys):
    from cli_helpers import run_cli

    base, mg = bprmf_pair
    code, out, err = run_cli(capsys, "perturb", "noise", base, mg, "--sigma", "0,0.05", "--repeats", "3",
                             "--report-dir", tmp_path, "-q", "--threads", "1")
    assert code == 0, err
    (path,) = tmp_path.glob("*.json")
    report = json.loads(path.read_text())
    entry = report["checkpoints"][0]
    assert "long_tail_share@5" in entry["clean_moves"]
    noisy = entry["levels"][1]
    assert {"jaccard@5", "rbo@5", "gini@5", "mean_popularity@5", "recall@5|users:low",
            "recall@5|items:high"} <= set(noisy["moves"])
    assert "edited_rank_shift@5" not in noisy["moves"] and noisy["moves_items"].startswith("not item-specific")
    assert noisy["user_test"]["recall@5"]["d_z_ci95"][0] is not None
    gain = next(row for row in report["mg_gains"] if row["metric"] == "recall@5" and row["strength"] == 0.05)
    assert gain["test"]["mde_d_z"] == pytest.approx(minimum_detectable_dz(3)) and gain["test"]["power"] == "underpowered"
    assert "What the stress moves" in out  # perturb prints the tables too
    code, out, err = run_cli(capsys, "compare", path)
    assert code == 0, err
    for fragment in ("What the stress moves", "Jaccard", "RBO", "tail %", "Gini", "Drop % of REC@5 by slice",
                     "users", "d_z"):
        assert fragment in out
    jaccard_mean = f"{noisy['moves']['jaccard@5']['mean']:.3f}"
    assert jaccard_mean in out
    from render_helpers import assert_readable, render

    from robustrec.reports.tables import gains_table, moves_tables

    for width in (80, 200):
        gains = render(gains_table(report["checkpoints"], "recall", 5, "sigma"), width)
        assert_readable(gains, width, ["underpowered", f"d_z {gain['test']['d_z']:+.2f}"])
        for table in moves_tables(report["checkpoints"], 5, "sigma"):
            assert_readable(render(table, width), width, [jaccard_mean] if "top-5" in render(table, 200) else [])
