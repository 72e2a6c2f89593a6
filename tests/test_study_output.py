"""What `study report` prints and writes: every value readable at 80 and 100 columns, numeric CSVs,
files named by metric, one-line errors, and drop comparisons stated one way across commands."""

from __future__ import annotations

import json

import pytest
from rich.cells import cell_len

from cli_helpers import assert_one_line_error, run_cli
from test_protocol_audit import audited  # noqa: F401 (a study with selection = "test-epoch")
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


@pytest.mark.parametrize("width", [80, 100, 150])
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
    for row in report["stress"]:  # prose may wrap inside its cell: every word of it is there
        assert all(word in tables for word in row["title"].split())


PAIR = """
name = "pair"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["vbpr"]
strategies = ["plain", "mg"]
seeds = [0]
baselines = []  # the pair alone: its cells and runs are counted below

[train]
epochs = 2
patience = 2
batch_size = 512

[[stress]]
kind = "noise"
sigma = [5e-2]
repeats = 2
flatness = false
"""


@pytest.fixture(scope="module")
def pair(tmp_path_factory, synthetic_dir):
    """One plain/MG pair (VBPR, one seed) and one noise stress: the study's only stress report."""
    from robustrec.studies.execute import InlineExecutor, run_study
    from robustrec.studies.spec import load_study
    from test_study import write_study

    folder = tmp_path_factory.mktemp("pair")
    run_study(load_study(write_study(folder, synthetic_dir, PAIR)), folder / "out", InlineExecutor(threads=1))
    return folder / "out"


def test_study_csvs_hold_numbers_one_per_cell(finished, capsys):  # noqa: F811
    import csv

    from robustrec.studies.report import CLEAN_NUMERIC, STRESS_NUMERIC

    _, out, _ = finished
    code, _, err = run_cli(capsys, "study", "report", out)
    assert code == 0, err
    report = json.loads((out / "report" / "study-report.json").read_text())
    for name, numeric, rows in (("clean.csv", CLEAN_NUMERIC, report["clean"]),
                                ("stress.csv", STRESS_NUMERIC, report["stress"])):
        with (out / "report" / name).open(newline="") as handle:
            table = list(csv.DictReader(handle))
        assert len(table) == len(rows)
        columns = [c for c in table[0] if c in numeric or c.endswith(("_mean", "_std"))]
        assert set(numeric) <= set(columns) and len(columns) > len(numeric) - 3
        filled = 0
        for line in table:
            for column in columns:
                if line[column] != "":
                    float(line[column])  # a number, not "0.0577 ± 0.0009" or "+2.1%"
                    filled += 1
        assert filled > len(table) * 4
    stress = list(csv.DictReader((out / "report" / "stress.csv").open(newline="")))
    for line, row in zip(stress, report["stress"]):
        assert float(line["drop_mean"]) == pytest.approx(row["drop_pct"]["mean"])
        assert float(line["ci_low"]) == pytest.approx(row["drop_pct"]["ci95"][0])
    clean = list(csv.DictReader((out / "report" / "clean.csv").open(newline="")))
    for line, row in zip(clean, report["clean"]):
        assert float(line["recall@5_mean"]) == pytest.approx(row["test"]["recall@5"]["mean"])
        assert float(line["recall@5_std"]) == pytest.approx(row["test"]["recall@5"]["std"])


def test_perturb_compare_and_study_report_sign_the_drop_reduction_alike(pair, tmp_path, capsys, monkeypatch):
    """The same plain/MG pair under the same stress report: one number, one sign, one wording."""
    from robustrec.cli.perturb import finish_report
    from robustrec.studies.plan import read_manifest

    monkeypatch.setenv("COLUMNS", "250")
    (cell,) = [c for c in read_manifest(pair)["cells"].values() if c["kind"] == "stress"]
    (report_path,) = cell["result"]["reports"]
    stress_report = json.loads((pair / report_path).read_text())
    drops = {entry["mg"]: entry["levels"][0]["summary"]["recall@5"]["drop_pct"] for entry in stress_report["checkpoints"]}
    reduction = drops[False] - drops[True]  # plain's drop − MG's drop
    assert abs(reduction) >= 0.01
    shown, opposite = f"{reduction:+.2f}", f"{-reduction:+.2f}"

    finish_report(stress_report, tmp_path, False, False)  # what `perturb noise` prints for this report
    perturb_out = capsys.readouterr().out
    code, compare_out, err = run_cli(capsys, "compare", pair / report_path)
    assert code == 0, err
    code, study_out, err = run_cli(capsys, "study", "report", pair)
    assert code == 0, err
    study = json.loads((pair / "report" / "study-report.json").read_text())
    (mg_row,) = [r for r in study["stress"] if r["strategy"] == "mg"]
    assert mg_row["vs_plain"]["mean_difference"] == pytest.approx(reduction)
    for name, text in (("perturb", perturb_out), ("compare", compare_out), ("study report", study_out)):
        flat = " ".join(text.split())
        assert shown in text and opposite not in text, f"{name}:\n{text}"
        assert "drop reduction" in flat and "> 0: " in flat and "drops less" in flat, name
    for path in tmp_path.iterdir():
        path.unlink()


def test_report_of_another_metric_keeps_the_recall_report(pair, capsys):
    folder = pair / "report"
    code, _, err = run_cli(capsys, "study", "report", pair)
    assert code == 0, err
    recall = {name: (folder / name).read_bytes() for name in ("study-report.json", "clean.csv", "stress.csv",
                                                               "drops.png")}
    code, out, err = run_cli(capsys, "study", "report", pair, "--metric", "ndcg")
    assert code == 0, err
    for name, content in recall.items():
        assert (folder / name).read_bytes() == content, f"{name} was overwritten by the ndcg report"
    ndcg = json.loads((folder / "study-report-ndcg@5.json").read_text())
    assert ndcg["key"] == "ndcg@5" and json.loads(recall["study-report.json"])["key"] == "recall@5"
    for name in ("clean-ndcg@5.csv", "stress-ndcg@5.csv", "drops-ndcg@5.png"):
        assert (folder / name).stat().st_size > 0 and name in out
    code, _, err = run_cli(capsys, "study", "report", pair, "--correction", "bh")
    assert code == 0, err
    assert json.loads((folder / "study-report-bh.json").read_text())["correction"] == "Benjamini–Hochberg"
    assert (folder / "study-report.json").read_bytes() == recall["study-report.json"]


def _copy_with_states(pair, target, state_of):
    body = json.loads((pair / "study.json").read_text())
    for cell in body["cells"].values():
        state = state_of(cell)
        if state != cell["state"]:
            cell.update(state=state, result=None, error=f"RuntimeError: {cell['id']} broke\n(second line)")
    target.mkdir()
    (target / "study.json").write_text(json.dumps(body))
    return target


def test_report_of_a_study_with_no_finished_cell_is_one_line(pair, tmp_path, capsys):
    folder = _copy_with_states(pair, tmp_path / "failed", lambda cell: "failed")
    line = assert_one_line_error(*run_cli(capsys, "study", "report", folder), "nothing to report", "3 failed",
                                 "broke (second line)")
    assert "{" not in line and "'done'" not in line
    assert not (folder / "report").exists()


def test_report_of_an_unfinished_study_says_so_in_words(pair, tmp_path, capsys):
    folder = _copy_with_states(pair, tmp_path / "half", lambda cell: "failed" if cell["kind"] == "stress"
                               else cell["state"])
    code, out, err = run_cli(capsys, "study", "report", folder)
    assert code == 0, err
    assert "not every cell is done (2 done, 1 failed)" in " ".join(out.split()) and "{" not in out


def test_compare_folder_with_two_datasets_gives_one_section_each(pair, tmp_path, capsys, monkeypatch):
    from robustrec.studies.plan import read_manifest

    monkeypatch.setenv("COLUMNS", "200")
    (cell,) = [c for c in read_manifest(pair)["cells"].values() if c["kind"] == "stress"]
    body = json.loads((pair / cell["result"]["reports"][0]).read_text())
    other = json.loads(json.dumps(body))
    other["dataset"].update(name="elsewhere", fingerprint="0123456789abcdef", interactions_fingerprint="fedcba9876543210")
    folder = tmp_path / "reports"
    folder.mkdir()
    for name, content in (("a.json", body), ("b.json", body), ("c.json", other)):
        (folder / name).write_text(json.dumps(content))
    code, out, err = run_cli(capsys, "compare", folder)
    assert code == 0, err
    mine = body["dataset"]["interactions_fingerprint"]
    assert f"synthetic (data {mine}): 2 report(s)" in out and "elsewhere (data fedcba9876543210): 1 report(s)" in out
    assert out.index(f"data {mine}): 2 report(s)") < out.index("elsewhere (data")
    titles = [line.rstrip() for line in out.splitlines() if line.startswith("noise on ")]
    assert titles == [f"noise on synthetic (data {mine}), 2 report(s)", "noise on elsewhere (data fedcba9876543210), "
                      "1 report(s)"], out
    # named files: same data only
    assert_one_line_error(*run_cli(capsys, "compare", folder / "a.json", folder / "c.json"), "different data")


def test_neighbours_fill_that_fell_back_to_zeros_says_so(pair, tmp_path, capsys, monkeypatch):
    from robustrec.studies.plan import read_manifest

    monkeypatch.setenv("COLUMNS", "100")
    runs = sorted(pair / c["result"]["run_dir"] for c in read_manifest(pair)["cells"].values() if c["kind"] == "train")
    code, out, err = run_cli(capsys, "perturb", "modality", *runs, "--missing", "text", "--rate", "0.5,1",
                             "--fill", "neighbours", "--repeats", "2", "--report-dir", tmp_path, "-q")
    assert code == 0, err
    assert out.count("note:") == 1, out
    note = " ".join(out[out.index("note:"):].split())
    note = note[:note.index("wrote")]
    assert "rate 1 " in note and "--fill neighbours" in note and "filled with zeros" in note, out
    (path,) = tmp_path.glob("*.json")
    report = json.loads(path.read_text())
    entry = report["checkpoints"][0]
    half, full = entry["levels"]
    n_items = report["dataset"]["items"]
    assert [t.get("zero_filled", 0) for t in half["trials"]] == [0, 0] and "fill_used" not in half["parameters"]
    assert [t["zero_filled"] for t in full["trials"]] == [n_items, n_items]
    assert full["parameters"]["fill_used"].startswith("zeros")
    for file in tmp_path.iterdir():
        file.unlink()


def test_one_data_fingerprint_in_inspect_reports_compare_and_runs(pair, synthetic_dir, capsys, monkeypatch):
    from robustrec.studies.plan import read_manifest

    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(capsys, "data", "inspect", "--dataset", "synthetic", "--data-dir", synthetic_dir, "--json")
    assert code == 0, err
    inspected = json.loads(out)
    cells = read_manifest(pair)["cells"].values()
    (stress,) = [c for c in cells if c["kind"] == "stress"]
    report_path = pair / stress["result"]["reports"][0]
    report = json.loads(report_path.read_text())
    run = next(pair / c["result"]["run_dir"] for c in cells if c["kind"] == "train")
    stored = json.loads((run / "data.json").read_text())
    shown = inspected["fingerprint"]
    assert shown == stored["interactions_fingerprint"] == report["dataset"]["interactions_fingerprint"]
    assert {m["modality"]: m["fingerprint"] for m in inspected["modalities"]} == {
        m: info["fingerprint"] for m, info in stored["modalities"].items()}
    code, out, err = run_cli(capsys, "data", "inspect", "--dataset", "synthetic", "--data-dir", synthetic_dir)
    assert code == 0 and f"data {shown})" in out
    code, out, err = run_cli(capsys, "compare", report_path)
    assert code == 0 and f"(data {shown})" in out


def _report_with_many_drops() -> dict:
    """A study report of 60 stress rows: 3 stresses × 2 levels × 5 models × 2 strategies."""
    rng = __import__("numpy").random.default_rng(0)
    rows = []
    for index, title in enumerate(["noise", "modality: missing text (fill neighbours, k 10 via image)",
                                   "adversarial: features, FGSM"], start=1):
        for level in (0.01, 0.1):
            for model in ("bprmf", "vbpr", "lattice", "freedom", "lightgcn"):
                for strategy in ("plain", "mg"):
                    mean = float(rng.normal(5, 3))
                    rows.append({"dataset": "synthetic", "stress_index": index, "kind": title.split(":")[0],
                                 "title": title, "description": "", "strength": level, "model": model,
                                 "strategy": strategy, "per_seed": {"0": mean, "1": mean}, "user_p": {},
                                 "drop_pct": {"mean": mean, "std": 1.0, "n": 2, "ci95": [mean - 2, mean + 2]},
                                 "significant_seeds": 1, "cells": [], "reports": []})
    return {"study": "many", "key": "recall@5", "correction": "Holm", "alpha": 0.05, "clean": [], "stress": rows,
            "seeds": [0, 1], "valid_metric": "recall@20", "selection": "each", "complete": True,
            "cells": {"done": 1}}


def test_drops_png_stays_legible_with_60_bars(tmp_path):
    import matplotlib.pyplot as plt
    from PIL import Image

    from robustrec.studies.report import drops_figure, write_outputs

    report = _report_with_many_drops()
    fig = drops_figure(report, report["stress"])
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        panels = [ax for ax in fig.axes if ax.get_yticklabels()]
        assert len(panels) == 3  # one panel per stress
        for ax in panels:
            labels = ax.get_yticklabels()
            assert len(labels) == 20 and all(label.get_fontsize() >= 7 for label in labels)
            assert all(label.get_fontsize() >= 7 for label in ax.get_xticklabels())
            boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.y0)
            assert all(a.y1 <= b.y0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
            assert all(box.x0 >= 0 for box in boxes), "a label is cut at the left edge"
    finally:
        plt.close(fig)
    written = write_outputs(report, tmp_path)
    (png,) = [path for path in written if path.suffix == ".png"]
    with Image.open(png) as image:
        width, height = image.size
    assert 600 <= width <= 1600 and height <= 4000 and 0.25 <= height / width <= 4
    for path in written:
        path.unlink()


@pytest.mark.parametrize("width", [80, 100])
def test_protocol_audit_table_shows_every_value_at_narrow_widths(audited, width, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = run_cli(capsys, "study", "report", audited)
    assert code == 0, err
    report = json.loads((audited / "report" / "study-report.json").read_text())
    audit = out[out.index("protocol audit of"):out.index("wrote ")]
    assert "…" not in audit and max(cell_len(line) for line in audit.splitlines()) <= width
    shown = []
    for row in report["audit"]:
        shown += [f"{v:.4f}" for v in row["values"].values() if v is not None]
        shown += [f"{v:+.2f}" for v in list(row.get("gain_pct", {}).values()) + list(row.get("optimism_pts", {}).values())
                  if v is not None]
    assert shown and not [value for value in shown if value not in audit], audit
