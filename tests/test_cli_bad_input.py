"""Every usage mistake is a short message and a non-zero exit; outputs are checked before work;
runs do not depend on the current folder; files get the user's umask."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args, fragment", [
    (["--bogus"], "No such option: --bogus"),
    (["train", "--epochs", "abc"], "Invalid value for '--epochs'"),
    (["train", "--threads", "-1"], "Invalid value for '--threads'"),
    (["perturb", "noise", "x", "--threads", "-2"], "Invalid value for '--threads'"),
    (["evaluate"], "Missing argument"),
    (["compare"], "Missing argument 'REPORT...'"),
    (["nope"], "No such command 'nope'"),
    (["perturb", "nope"], "No such command 'nope'"),
    (["train", "--model"], "requires an argument"),
])
def test_usage_mistakes_exit_2_with_click_usage_message(capsys, args, fragment):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert fragment in err and "Traceback" not in err + out
    assert err.rstrip().splitlines()[-1].startswith("Error:")


def test_bare_command_shows_help_and_exits_2(capsys):
    code, out, err = run_cli(capsys)
    assert code == 2 and "Usage" in out + err and "train" in out + err and "Traceback" not in out + err


@pytest.mark.parametrize("args", [["-h"], ["train", "-h"], ["perturb", "-h"], ["perturb", "noise", "-h"],
                                  ["compare", "-h"]])
def test_dash_h_is_help(capsys, args):
    code, out, _ = run_cli(capsys, *args)
    assert code == 0 and "Usage" in out


def test_console_script_usage_error_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "robustrec", "train", "--epochs", "abc"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "Invalid value for '--epochs'" in proc.stderr


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, synthetic_dir):
    proc = subprocess.Popen([sys.executable, "-m", "robustrec", "train", "--epochs", "1000", "--patience", "1000",
                             "--data-dir", str(synthetic_dir), "--checkpoint-dir", str(tmp_path / "c")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # wait for the first line (training has started), then press Ctrl-C
        first = proc.stdout.readline()
        assert "lightgcn on synthetic" in first
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)  # once: a Ctrl-C landing in a lazy import must not be lost
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert err.count("\n") == 1 and err.startswith("interrupted; ") and "Traceback" not in err
    assert not (tmp_path / "c" / "lightgcn-synthetic").exists()


SWALLOWED_INTERRUPT = """
import os, signal, sys, weakref
from robustrec.cli.app import _install_sigint
from robustrec.cli.interrupt import Interrupted
_install_sigint()
class Thing: pass
thing = Thing()
ref = weakref.ref(thing, lambda r: os.kill(os.getpid(), signal.SIGINT))  # handled inside the callback
try:
    del thing
    for _ in range(100):
        __import__("time").sleep(0.02)
    sys.exit(1)
except Interrupted:
    sys.exit(0)
"""


def test_an_interrupt_python_would_swallow_is_delivered_again():
    """Ctrl-C during a weakref callback (lazy imports use them) is 'ignored' by Python itself."""
    proc = subprocess.run([sys.executable, "-c", SWALLOWED_INTERRUPT], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "Exception ignored" not in proc.stderr


# --- outputs are checked before any work -----------------------------------------------------
def test_checkpoint_dir_that_is_a_file_fails_before_training(capsys, tmp_path, synthetic_dir):
    (tmp_path / "file").write_text("x")
    code, out, err = run_cli(capsys, "train", "--epochs", "1", "--data-dir", synthetic_dir,
                             "--checkpoint-dir", tmp_path / "file")
    assert_one_line_error(code, out, err, "--checkpoint-dir", "is a file")
    assert "lightgcn on" not in out  # refused before the data was loaded
    code, _, err = run_cli(capsys, "train", "--data-dir", synthetic_dir, "--checkpoint-dir", tmp_path / "file" / "sub")
    assert code == 2 and "cannot be created" in err


def test_report_dir_that_is_a_file_fails_before_loading(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(capsys, "perturb", "noise", tmp_path / "no-such-run", "--report-dir", tmp_path / "file")
    assert code == 2 and "--report-dir" in err and "is a file" in err  # checked before the checkpoint


@pytest.mark.parametrize("args, fragment", [
    (["--adversarial", "fgsm"], "unknown --adversarial 'fgsm'"),
    (["--adversarial", "amr", "--adv-eps", "-0.1"], "--adv-eps must be a finite number >= 0"),
    (["--adversarial", "amr", "--adv-reg", "-1"], "--adv-reg must be a finite number >= 0"),
    (["--adversarial", "amr", "--model", "bprmf"], "model 'bprmf' uses no item features; AMR supports"),
    (["--adversarial", "amr", "--model", "slmrec"], "does not read its item features in its training loss"),
])
def test_bad_adversarial_training_is_one_line_and_writes_nothing(capsys, tmp_path, synthetic_dir, args, fragment):
    code, out, err = run_cli(capsys, "train", "--model", "vbpr", "--epochs", "1", "-q", "--data-dir", synthetic_dir,
                             "--checkpoint-dir", tmp_path / "ck", *args)
    assert_one_line_error(code, out, err, fragment)
    assert not (tmp_path / "ck").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--eps", "-0.1"], "--eps must be a finite number >= 0"),
    (["--eps", "0.1,abc"], "--eps must be a number or a comma-separated list"),
    (["--steps", "0"], "--steps must be >= 1"),
    (["--target", "weights"], "--target must be one of features, embeddings"),
    (["--repeats", "0"], "--repeats must be >= 1"),
])
def test_bad_adversarial_stress_is_one_line_and_writes_nothing(capsys, tmp_path, args, fragment):
    # refused before the checkpoint is read
    assert_one_line_error(*run_cli(capsys, "perturb", "adversarial", tmp_path / "no-such-run", "--report-dir",
                                   tmp_path / "rep", *args), fragment)
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", ".hidden"])
def test_run_name_must_be_a_plain_folder_name(capsys, tmp_path, synthetic_dir, name):
    ckpt = tmp_path / "ckpt"
    code, _, err = run_cli(capsys, "train", "--epochs", "1", "--data-dir", synthetic_dir,
                           "--checkpoint-dir", ckpt, "--name", name)
    assert code == 2 and "--name must be a plain folder name" in err
    assert not ckpt.exists() and not (tmp_path / "x").exists()


# --- data files -------------------------------------------------------------------------------
def _toy(tmp_path, inter="userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t0\n1\t0\t2\n"):
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.inter").write_text(inter)
    return tmp_path / "data"


@pytest.mark.parametrize("write, fragment", [
    (lambda p: np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True), "pickled Python objects"),
    (lambda p: p.write_bytes(b"\x80\x04K\x01."), "pickled Python objects"),
    (lambda p: p.write_bytes(b"not numpy at all"), "is not a .npy array file"),
    (lambda p: np.savez(open(p, "wb"), a=np.zeros((2, 3))), "is an .npz archive"),
])
def test_feature_file_that_is_not_an_array(capsys, tmp_path, write, fragment):
    data_dir = _toy(tmp_path)
    write(data_dir / "toy" / "image_feat.npy")
    line = assert_one_line_error(*run_cli(capsys, "train", "--model", "vbpr", "--dataset", "toy", "--data-dir",
                                          data_dir, "--checkpoint-dir", tmp_path / "c"), fragment)
    assert "allow_pickle" not in line


def test_non_integer_id_is_shown_as_written(capsys, tmp_path):
    data_dir = _toy(tmp_path, "userID\titemID\tx_label\n0\t12.5\t0\n1\t1\t0\n")
    code, _, err = run_cli(capsys, "train", "--dataset", "toy", "--data-dir", data_dir,
                           "--checkpoint-dir", tmp_path / "c")
    assert code == 2 and "not an integer: '12.5'" in err and "np.float64" not in err


# --- evaluate ---------------------------------------------------------------------------------
@pytest.fixture
def run_dir(tmp_path, synthetic_run):
    """A copy of the session's BPR-MF run, which these tests change."""
    import shutil

    return shutil.copytree(synthetic_run("bprmf"), tmp_path / "ckpt" / "bprmf-synthetic")


def test_evaluate_exits_non_zero_when_metrics_differ(capsys, run_dir):
    assert run_cli(capsys, "evaluate", run_dir)[0] == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["test"]["recall@5"] += 0.01
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    code, out, err = run_cli(capsys, "evaluate", run_dir)
    assert code == 1 and "differ from the stored ones" in err and "recall@5" in err


def test_non_finite_weights_are_refused_at_load(capsys, run_dir):
    from safetensors.torch import load_file, save_file

    state = load_file(str(run_dir / "model.safetensors"))
    key = sorted(state)[0]
    state[key][0, 0] = float("nan")
    save_file(state, str(run_dir / "model.safetensors"))
    for args in (["evaluate", run_dir], ["perturb", "noise", run_dir, "--report-dir", run_dir.parent / "r", "-q"]):
        assert_one_line_error(*run_cli(capsys, *args), "non-finite values", key)
    assert not (run_dir.parent / "r").exists()


# --- working directory and file modes ---------------------------------------------------------
def test_runs_do_not_depend_on_the_current_folder(capsys, tmp_path, monkeypatch):
    train_here, elsewhere = tmp_path / "a", tmp_path / "b"
    train_here.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(train_here)
    code, _, _ = run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q")  # built-in data in ./data
    assert code == 0 and (train_here / "data" / "synthetic").is_dir()
    config = json.loads((train_here / "checkpoints" / "bprmf-synthetic" / "config.json").read_text())
    assert os.path.isabs(config["data_dir"])
    monkeypatch.chdir(elsewhere)
    run = train_here / "checkpoints" / "bprmf-synthetic"
    assert run_cli(capsys, "evaluate", run)[0] == 0
    assert run_cli(capsys, "perturb", "noise", run, "--repeats", "1", "--no-flatness", "-q",
                   "--report-dir", tmp_path / "r")[0] == 0
    assert os.listdir(elsewhere) == []  # nothing regenerated or written here


def test_outputs_get_the_users_umask(capsys, tmp_path, synthetic_dir):
    old = os.umask(0o022)
    try:
        code, _, _ = run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q", "--data-dir", synthetic_dir,
                             "--checkpoint-dir", tmp_path / "ckpt")
        assert code == 0
        run = tmp_path / "ckpt" / "bprmf-synthetic"
        assert run_cli(capsys, "perturb", "noise", run, "--repeats", "1", "--no-flatness", "-q", "--csv",
                       "--report-dir", tmp_path / "r")[0] == 0
    finally:
        os.umask(old)
    files = [p for p in [*run.iterdir(), *(tmp_path / "r").iterdir()]]
    assert {p.suffix for p in files} >= {".safetensors", ".json", ".csv"}
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}
    assert oct(run.stat().st_mode & 0o777) == "0o755"
