"""`robustrec train` after an interruption: rerunning the command continues the run and
writes the same run folder as an uninterrupted run, bit for bit."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.training import EpochRecord, Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    threads = torch.get_num_threads()  # --threads sets torch's global thread count
    yield
    torch.set_num_threads(threads)


def _args(checkpoints, data_dir, *extra):
    return ["train", "--model", "bprmf", "--mg", "--epochs", "4", "--batch-size", "1024", "-q",
            "--checkpoint-dir", checkpoints, "--data-dir", data_dir, *extra]


def _interrupt_during(monkeypatch, epoch):
    """Ctrl-C in the middle of ``epoch`` (the state of the epoch before is on disk)."""
    real = Trainer._epoch

    def interrupted(self, model, data, sampler, optimizer, e):
        if e == epoch:
            raise KeyboardInterrupt
        return real(self, model, data, sampler, optimizer, e)

    monkeypatch.setattr(Trainer, "_epoch", interrupted)


def assert_same_run(a: Path, b: Path):
    from safetensors.torch import load_file

    weights_a, weights_b = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key
    assert json.loads((a / "metrics.json").read_text()) == json.loads((b / "metrics.json").read_text())
    history_a, history_b = (json.loads((p / "history.json").read_text()) for p in (a, b))
    assert [(r["epoch"], r["loss"], r["valid"], r["best"]) for r in history_a] == \
           [(r["epoch"], r["loss"], r["valid"], r["best"]) for r in history_b]


def test_interrupted_run_resumes_on_rerun(capsys, tmp_path, synthetic_dir, monkeypatch):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    code, _, err = run_cli(capsys, *_args(whole, synthetic_dir))
    assert code == 0, err

    _interrupt_during(monkeypatch, 3)
    code, out, err = run_cli(capsys, *_args(cut, synthetic_dir))
    monkeypatch.undo()
    assert code == 130
    partial = cut / ".bprmf-synthetic-mg.partial"
    assert err.startswith("interrupted; training state of epoch 2 kept in") and "rerun the same command" in err
    assert err.count("\n") == 1  # one line on stderr (stdout has the epochs trained before)
    assert sorted(p.name for p in cut.iterdir()) == [partial.name]  # no run folder yet

    code, out, err = run_cli(capsys, *_args(cut, synthetic_dir))
    assert code == 0, err
    assert "resuming bprmf-synthetic-mg after epoch 2 of at most 4" in out
    assert sorted(p.name for p in cut.iterdir()) == ["bprmf-synthetic-mg"]  # the partial state is gone
    assert_same_run(whole / "bprmf-synthetic-mg", cut / "bprmf-synthetic-mg")


def test_other_flags_are_refused_and_no_resume_starts_over(capsys, tmp_path, synthetic_dir, monkeypatch):
    _interrupt_during(monkeypatch, 2)
    code, _, _ = run_cli(capsys, *_args(tmp_path, synthetic_dir))
    monkeypatch.undo()
    assert code != 0
    partial = tmp_path / ".bprmf-synthetic-mg.partial"

    for extra in ([], ["--resume"]):
        code, out, err = run_cli(capsys, *_args(tmp_path, synthetic_dir, "--lr", "0.01", "--beta", "2", *extra))
        assert_one_line_error(code, out, err, "beta 3 → 2; lr 0.001 → 0.01", "--no-resume")
        assert (partial / "state.json").is_file()

    code, out, err = run_cli(capsys, *_args(tmp_path, synthetic_dir, "--lr", "0.01", "--no-resume"))
    assert code == 0, err
    assert "discarded the unfinished run" in out and "resuming" not in out
    assert len(json.loads((tmp_path / "bprmf-synthetic-mg" / "history.json").read_text())) == 4
    assert not partial.exists()


def test_resume_with_nothing_to_resume_starts_fresh(capsys, tmp_path, synthetic_dir):
    code, out, err = run_cli(capsys, *_args(tmp_path, synthetic_dir, "--epochs", "1", "--resume"))
    assert code == 0, err
    assert "nothing to resume" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bprmf-synthetic-mg"]


def test_progress_bar_starts_at_the_resumed_epoch():
    from rich.console import Console

    from robustrec.cli.progress import RichTrainProgress, train_progress

    progress = train_progress(Console(file=io.StringIO()))
    bar = RichTrainProgress(progress, "recall@20")
    bar.on_train_start(10, 5)
    bar.on_resume([EpochRecord(1, 0.5, 0.2, 1.0, 0.1, best=True), EpochRecord(2, 0.4, 0.3, 1.0, 0.1, best=True),
                   EpochRecord(3, 0.3, 0.25, 1.0, 0.1)])
    task = progress.tasks[0]
    assert task.completed == 3 and bar.best == (2, 0.3)
    bar.on_epoch_end(EpochRecord(4, 0.2, 0.1, 1.0, 0.1))
    assert task.completed == 4 and "best 0.3000 @ 2" in task.fields["info"]


def _epochs_done(state_json: Path) -> int:
    try:
        return json.loads(state_json.read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def test_kill_9_then_rerun_gives_the_same_run(capsys, tmp_path, synthetic_dir):
    """A real ``kill -9`` of ``robustrec train`` in another process, after its state of epoch
    ≥ 1 is on disk; rerunning the command finishes the run exactly as an uninterrupted one."""
    args = ["train", "--model", "lightgcn", "--mg", "--epochs", "4", "--batch-size", "1024", "--threads", "1",
            "-q", "--data-dir", str(synthetic_dir), "--checkpoint-dir"]
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    state = killed / ".lightgcn-synthetic-mg.partial" / "state.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "robustrec", *args, str(killed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while proc.poll() is None and _epochs_done(state) < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    done = _epochs_done(state)
    assert 1 <= done < 4 and not (killed / "lightgcn-synthetic-mg").exists()

    code, out, err = run_cli(capsys, *args, killed)
    assert code == 0, err
    assert f"resuming lightgcn-synthetic-mg after epoch {done}" in out
    assert not state.parent.exists()
    code, _, err = run_cli(capsys, *args, whole)
    assert code == 0, err
    assert_same_run(whole / "lightgcn-synthetic-mg", killed / "lightgcn-synthetic-mg")
