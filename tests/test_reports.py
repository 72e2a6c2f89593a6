"""Report schema, statistics, MG pairing and comparison, on hand-made and real studies."""

import json

import numpy as np
import pytest

from robustrec.checkpoints import save_run
from robustrec.models import build_model
from robustrec.studies.noise_study import run_noise_study
from robustrec.studies.runner import StudySettings
from robustrec.reports import ReportError, load_report, save_report
from robustrec.reports.compare import load_comparison
from robustrec.reports.export import CSV_COLUMNS, write_csv, write_severity_plot
from robustrec.reports.gains import mg_gain, mg_pairs
from robustrec.evaluation.stats import drop_difference_test, paired_user_test, relative_drops, t_interval
from robustrec.training import TrainConfig, Trainer


# --- statistics on hand-made numbers -------------------------------------------------------
def test_t_interval_by_hand():
    low, high = t_interval(np.array([1.0, 2.0, 3.0]))
    half = 4.302652729911275 * 1.0 / np.sqrt(3)  # t(0.975, 2) · s / √n
    assert low == pytest.approx(2.0 - half) and high == pytest.approx(2.0 + half)
    assert t_interval(np.array([5.0])) == (None, None)


def test_paired_user_test_by_hand():
    clean = np.array([0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.7, 0.8])
    perturbed = np.stack([clean - np.array([0.1, 0.2, 0.05, 0.1, 0.15, 0.3, 0.25, 0.12])] * 2)
    result = paired_user_test(clean, perturbed)
    # every user drops: exact two-sided Wilcoxon p for n = 8, all signs equal, is 2 / 2**8
    assert result["wilcoxon_p_value"] == pytest.approx(2 / 2 ** 8)
    diff = np.array([0.1, 0.2, 0.05, 0.1, 0.15, 0.3, 0.25, 0.12])
    t = diff.mean() / (diff.std(ddof=1) / np.sqrt(8))
    from scipy import stats

    assert result["p_value"] == pytest.approx(2 * stats.t.sf(t, 7))
    assert result["mean_difference"] == pytest.approx(0.15875)
    assert result["ci95"][0] < 0.15875 < result["ci95"][1]
    assert paired_user_test(clean, np.stack([clean, clean]))["p_value"] == 1.0


def test_drop_difference_tests_by_hand():
    a, b = np.array([3.0, 4.0, 5.0]), np.array([1.0, 2.5, 2.0])
    paired = drop_difference_test(a, b, paired=True)
    assert paired["mean_difference"] == pytest.approx(2.1666666)
    from scipy import stats

    assert paired["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    welch = drop_difference_test(a, b, paired=False)
    assert welch["test"] == "Welch t-test"
    assert welch["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch["ci95"][0] < 2.1666666 < welch["ci95"][1]
    assert drop_difference_test(np.zeros(3), np.zeros(3), paired=True)["p_value"] == 1.0
    assert drop_difference_test(a[:1], b[:1], paired=True)["p_value"] is None


def test_relative_drops():
    assert np.allclose(relative_drops(0.5, np.array([0.4, 0.5, 0.55])), [20.0, 0.0, -10.0])
    assert relative_drops(0.0, np.array([0.1])) is None


def _entry(name, mg, clean, trials, seeds=(1, 2, 3), model="lightgcn"):
    return {"name": name, "mg": mg, "model": model,
            "config": {"model": model, "dataset": "d", "model_params": {}, "mg": mg},
            "clean": {"recall@5": clean},
            "levels": [{"strength": 1e-3, "trials": [{"seed": s, "metrics": {"recall@5": v}}
                                                     for s, v in zip(seeds, trials)]}]}


def test_mg_pairing_and_gain_by_hand():
    base = _entry("base", False, 0.10, [0.09, 0.08, 0.091])
    mg = _entry("mg", True, 0.11, [0.105, 0.104, 0.106])
    other = _entry("other-mg", True, 0.2, [0.2, 0.2, 0.2], model="bprmf")
    assert [(b["name"], m["name"]) for b, m in mg_pairs([mg, other, base])] == [("base", "mg")]
    (row,) = mg_gain(base, mg, "recall@5")
    assert row["clean_gain_pct"] == pytest.approx(10.0)
    assert row["drop_baseline_pct"] == pytest.approx(13.0)
    assert row["drop_mg_pct"] == pytest.approx(100 * (0.11 - 0.105) / 0.11)
    assert row["drop_reduction_pts"] == pytest.approx(13.0 - 100 * (0.11 - 0.105) / 0.11)
    assert row["test"]["test"] == "paired t-test by repeat seed"
    (unpaired,) = mg_gain(base, _entry("mg2", True, 0.11, [0.1, 0.1, 0.1], seeds=(7, 8, 9)), "recall@5")
    assert unpaired["test"]["test"] == "Welch t-test"


# --- a real study on tiny checkpoints ------------------------------------------------------
@pytest.fixture(scope="module")
def study(small_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    for mg in (False, True):
        config = TrainConfig(epochs=2, batch_size=256, lr=0.01, mg=mg, seed=0)
        model = build_model("lightgcn", small_data, seed=0)
        save_run(root / f"lightgcn{'-mg' if mg else ''}", model, config, small_data,
                 Trainer(config).fit(model, small_data))
    checkpoints, data = _load(root, small_data)  # small_data is not a named dataset: pass it in
    report = run_noise_study(checkpoints, data, [0.0, 0.05], "all", StudySettings(repeats=3, seed=4))
    return report


def _load(root, data):
    from robustrec.checkpoints import load_model
    from robustrec.checkpoints import LoadedCheckpoint

    loaded = []
    for name in ("lightgcn", "lightgcn-mg"):
        model, _, run = load_model(root / name, data=data)
        loaded.append(LoadedCheckpoint(model, run))
    return loaded, data


def test_study_report_contents(study):
    assert study["kind"] == "noise" and study["settings"]["levels"] == [0.0, 0.05]
    assert len(study["settings"]["trial_seeds"]) == 3
    base, mg = study["checkpoints"]
    assert (base["mg"], mg["mg"]) == (False, True)
    zero, noisy = base["levels"]
    assert all(t["metrics"] == base["clean"] for t in zero["trials"])  # σ = 0 reproduces clean exactly
    assert zero["summary"]["recall@5"]["drop_pct"] == 0.0
    assert set(noisy["summary"]) == {f"{m}@{k}" for m in ("recall", "precision", "map", "ndcg")
                                     for k in (5, 10, 20, 50)}
    assert [t["seed"] for t in noisy["trials"]] == study["settings"]["trial_seeds"]
    assert noisy["flatness"]["loss_rise"]["values"] and noisy["flatness"]["rho"] > 0
    assert noisy["tables"] == ["item", "user"]
    assert {row["baseline"] for row in study["mg_gains"]} == {"lightgcn"}


def test_report_round_trip_and_exports(study, tmp_path):
    path = save_report(study, tmp_path / "r.json")
    assert load_report(path) == json.loads(json.dumps(study))
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind
    csv_path = write_csv(study, tmp_path / "r.csv")
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS) and len(lines) == 1 + 2 * 2 * 16
    png = write_severity_plot(study, tmp_path / "r.png", "recall", 5)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"hello": 1}', "not a robustrec report"),
    ('[1, 2]', "not a robustrec report"),
    ('{"format": "robustrec-report", "schema_version": 99}', "schema version 99"),
    ('{"format": "robustrec-report", "schema_version": 1, "kind": "noise"}', "missing"),
])
def test_loader_rejects_other_files(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(ReportError, match=message):
        load_report(path)
    with pytest.raises(ReportError, match="not found"):
        load_report(tmp_path / "missing.json")


def test_compare_refuses_different_data_and_merges_same(study, tmp_path):
    first = save_report(study, tmp_path / "a.json")
    second = save_report(study, tmp_path / "b.json")
    dataset, groups = load_comparison([first, second])
    assert dataset["fingerprint"] == study["dataset"]["fingerprint"]
    names = [e["name"] for e in groups[0].entries]
    assert len(names) == 4 and len(set(names)) == 4
    other = json.loads(json.dumps(study))
    other["dataset"].update(fingerprint="0" * 16, interactions_fingerprint="0" * 16)  # other interactions
    third = save_report(other, tmp_path / "c.json")
    with pytest.raises(ReportError, match="different data"):
        load_comparison([first, third])
    if study["dataset"].get("modalities"):  # same interactions, another feature file: refused as well
        changed = json.loads(json.dumps(study))
        modality = next(iter(changed["dataset"]["modalities"]))
        changed["dataset"]["modalities"][modality]["fingerprint"] = "f" * 16
        with pytest.raises(ReportError, match=f"different {modality} features"):
            load_comparison([first, save_report(changed, tmp_path / "d.json")])


def test_severity_plot_draws_relative_drops_with_their_interval(study, tmp_path, monkeypatch):
    """The y values are each level's drop %; the band is the per-user 95% interval over clean."""
    from matplotlib.axes import Axes

    drawn, bands = [], []
    original_plot, original_fill = Axes.plot, Axes.fill_between
    monkeypatch.setattr(Axes, "plot", lambda self, x, y, *a, **kw: drawn.append((list(x), list(y))) or
                        original_plot(self, x, y, *a, **kw))
    monkeypatch.setattr(Axes, "fill_between", lambda self, x, lo, hi, *a, **kw: bands.append((list(lo), list(hi)))
                        or original_fill(self, x, lo, hi, *a, **kw))
    write_severity_plot(study, tmp_path / "r.png", "recall", 5)
    key = "recall@5"
    for entry, (x, y), (low, high) in zip(study["checkpoints"], drawn, bands):
        levels = sorted(entry["levels"], key=lambda lv: lv["strength"])
        assert x == [lv["strength"] for lv in levels]
        assert y == [lv["summary"][key]["drop_pct"] for lv in levels]
        ci = levels[-1]["user_test"][key]["ci95"]
        assert (low[-1], high[-1]) == pytest.approx((ci[0] / entry["clean"][key] * 100, ci[1] / entry["clean"][key] * 100))
        assert low[-1] <= y[-1] <= high[-1]
