"""Protocol audit: selection = "test"/"test-epoch" trains every grid point on every seed, keeps
its own choices on validation, and the report adds the optimistic test-selected gains."""

from __future__ import annotations

import json

import pytest

from cli_helpers import run_cli
from robustrec.studies.execute import InlineExecutor, run_study
from robustrec.studies.plan import read_manifest
from robustrec.studies.report import build_report
from robustrec.studies.spec import load_study

STUDY = """
name = "audit"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf"]
strategies = ["plain", "mg"]
seeds = [0, 1]
selection = "{selection}"

[train]
epochs = 3
patience = 3
batch_size = 512

[grid.bprmf]
reg_weight = [1e-4, 1e-1]
"""


@pytest.fixture(scope="module")
def audited(tmp_path_factory, synthetic_dir):
    folder = tmp_path_factory.mktemp("audit")
    path = folder / "study.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)).replace("{selection}", "test-epoch"))
    run_study(load_study(path), folder / "out", InlineExecutor(threads=1))
    return folder / "out"


def test_every_point_is_trained_on_every_seed_with_test_tracked(audited):
    cells = read_manifest(audited)["cells"]
    train = [c for c in cells.values() if c["kind"] == "train" and c["spec"]["strategy"] != "baseline"]
    assert len(train) == 2 * 2 * 2 and all(c["state"] == "done" for c in train)  # strategies × points × seeds
    # the default baseline (pop) is fitted once per seed, outside the audit's grid
    assert sorted(c["id"] for c in cells.values() if c["spec"]["strategy"] == "baseline") == [
        "train/synthetic/pop/baseline/g0/s0", "train/synthetic/pop/baseline/g0/s1"]
    history = json.loads((audited / train[0]["result"]["run_dir"] / "history.json").read_text())
    assert all(set(record["test"]) >= {"recall@5", "ndcg@20"} for record in history)


def test_the_audit_reports_each_protocol_and_the_optimism(audited):
    report = build_report(audited, "recall", 5)
    rows = {row["strategy"]: row for row in report["audit"]}
    assert set(rows) == {"plain", "mg"}
    for row in rows.values():
        values = row["values"]
        assert values["test"] >= values["validation"] - 1e-12  # the best single run beats the mean of a choice
        assert values["test-epoch"] is not None and row["runs"] == 4
    mg = rows["mg"]
    for protocol in ("test", "test-epoch"):
        assert mg["optimism_pts"][protocol] == pytest.approx(mg["gain_pct"][protocol] - mg["gain_pct"]["validation"])
    # the clean table is unchanged by the audit: validation-chosen runs only
    clean = {row["strategy"]: row for row in report["clean"]}
    assert clean["mg"]["test"]["recall@5"]["mean"] == pytest.approx(mg["values"]["validation"])


def test_a_normal_study_has_no_audit_and_tracks_no_test(tmp_path, synthetic_dir):
    path = tmp_path / "study.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)).replace("{selection}", "each"))
    study = load_study(path)
    assert not study.audits_test and not study.train_config("synthetic", "bprmf", "plain", {}, 0).track_test
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)).replace("{selection}", "nope"))
    with pytest.raises(Exception, match="selection must be"):
        load_study(path)


def test_the_study_report_prints_the_audit_labelled_optimistic(audited, capsys):
    code, out, _ = run_cli(capsys, "study", "report", audited)
    assert code == 0 and "OPTIMISTIC" in out and "optimism" in out


def test_the_markdown_report_carries_the_audit(audited, tmp_path, capsys):
    code, _, _ = run_cli(capsys, "study", "report", audited, "--markdown", tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert code == 0 and "## Protocol audit: OPTIMISTIC" in text and "| bprmf | mg |" in text
