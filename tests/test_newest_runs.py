"""`robustrec perturb <kind>` without CHECKPOINT: the newest run under --checkpoint-dir and its
plain/MG twin, said on the terminal; a clear refusal when there is none."""

import json
import os
import shutil
import time

import pytest

from cli_helpers import assert_one_line_error, run_cli


def _train(capsys, ck, data_dir, *extra):
    code, _, err = run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q", "--threads", "1",
                           "--data-dir", data_dir, "--checkpoint-dir", ck, *extra)
    assert code == 0, err


def _touch_later(run):
    """Make ``run`` the newest (file times, not sleeps)."""
    stamp = time.time() + 5
    os.utime(run / "model.safetensors", (stamp, stamp))


def _copy_runs(ck, *runs):
    """Copies of the shared runs (file times kept) under ``ck``, oldest first."""
    for run in runs:
        shutil.copytree(run, ck / run.name)


def test_newest_run_and_its_twin_are_taken(capsys, tmp_path, synthetic_dir, bprmf_pair):
    ck = tmp_path / "ck"
    _copy_runs(ck, *bprmf_pair)
    _train(capsys, ck, synthetic_dir, "--name", "other-seed", "--seed", "3")  # newer plain run, same data
    _touch_later(ck / "bprmf-synthetic-mg")
    (ck / "notes").mkdir()  # not a run folder: ignored
    code, out, err = run_cli(capsys, "perturb", "noise", "--checkpoint-dir", ck, "--sigma", "0.01", "--repeats", "2",
                             "--no-flatness", "--report-dir", tmp_path / "r", "-q")
    assert code == 0, err
    assert "no CHECKPOINT given: using the newest runs under" in out
    report = json.loads(next((tmp_path / "r").glob("*.json")).read_text())
    # the MG run is the newest; its twin is the newest plain run of the same model and data
    assert [e["name"] for e in report["checkpoints"]] == ["other-seed", "bprmf-synthetic-mg"]


def test_a_lone_run_is_taken_and_said(capsys, tmp_path, synthetic_run):
    ck = tmp_path / "ck"
    _copy_runs(ck, synthetic_run("bprmf"))
    code, out, err = run_cli(capsys, "perturb", "noise", "--checkpoint-dir", ck, "--sigma", "0.01", "--repeats", "2",
                             "--no-flatness", "--report-dir", tmp_path / "r", "-q")
    assert code == 0, err
    assert "bprmf-synthetic (no plain/MG twin of it found)" in out


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_no_run_is_a_one_line_error(capsys, tmp_path, make):
    ck = tmp_path / "ck"
    if make == "empty":
        ck.mkdir()
        (ck / ".x.partial").mkdir()
    elif make == "file":
        ck.write_text("x")
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", "--checkpoint-dir", ck, "--report-dir", tmp_path / "r"),
                          "no CHECKPOINT given")
    assert not (tmp_path / "r").exists()
