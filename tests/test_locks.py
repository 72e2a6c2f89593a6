"""One process per run folder and per study folder, and shared preparation safe under concurrency:
the synthetic dataset made once when workers ask at once, a second `train` of one name or
`study run` of one folder refused at once naming the holder's PID, a killed holder blocking
nobody, and `study status` telling interrupted cells from running ones."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cli_helpers import run_cli
from robustrec.errors import RobustRecError
from robustrec.locks import LockedError, hold, holder, waiting

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    threads = torch.get_num_threads()  # --threads sets torch's global thread count
    yield
    torch.set_num_threads(threads)


def _start(args: list, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _stop(proc: subprocess.Popen) -> None:
    """Kill (if still running) and reap ``proc``, closing its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _wait_for_holder(lock: Path, proc: subprocess.Popen) -> None:
    """Until ``proc`` holds ``lock`` (its PID written in it), failing if it ends first."""
    deadline = time.monotonic() + 300
    while holder(lock) != proc.pid:
        if proc.poll() is not None:
            pytest.fail(f"the process ended before it held {lock}: {proc.communicate()[1]}")
        if time.monotonic() > deadline:
            pytest.fail(f"{lock} never held by {proc.pid}")
        time.sleep(0.02)


def _go_when_ready(procs: list, go: Path) -> None:
    """Once every process wrote ``<go>.<pid>`` (imports done), write ``go`` and remove those."""
    ready = [go.with_name(f"{go.name}.{proc.pid}") for proc in procs]
    deadline = time.monotonic() + 300
    while not all(path.exists() for path in ready):
        assert all(proc.poll() is None for proc in procs), [proc.communicate()[1] for proc in procs]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    go.write_text("")
    for path in ready:
        path.unlink()


def _kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


# --- the lock itself -------------------------------------------------------------------------------


def test_hold_refuses_a_second_holder_and_cleans_up(tmp_path):
    lock = tmp_path / "made" / ".x.lock"
    child = ("import sys\nfrom robustrec.locks import hold\n"
             "with hold(sys.argv[1], 'run x', 'pick another'):\n    sys.stdout.write('held'); sys.stdout.flush()\n"
             "    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", child, str(lock)], env=ENV, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.read(4) == "held"
        assert holder(lock) == proc.pid
        with pytest.raises(LockedError, match=rf"^run x is being written by another robustrec process "
                                              rf"\(pid {proc.pid}\); pick another$"):
            with hold(lock, "run x", "pick another"):
                pass
        assert isinstance(LockedError("x"), RobustRecError)
        proc.stdin.close()
        assert proc.wait() == 0
    finally:
        _stop(proc)
    assert holder(lock) is None
    assert not (tmp_path / "made").exists()  # the folder made for the lock, and the lock file, are gone
    with hold(lock, "run x", "pick another"):  # re-entrant in one process
        with hold(lock, "run x", "pick another"):
            assert holder(lock) == os.getpid()
        assert lock.exists()
    assert not lock.exists()


def test_a_lock_whose_holder_was_killed_blocks_nobody(tmp_path):
    lock = tmp_path / ".x.lock"
    child = "import sys, time\nfrom robustrec.locks import hold\nwith hold(sys.argv[1], 'x', 'y'):\n    time.sleep(600)\n"
    proc = _start(["-c", child, lock], tmp_path)
    try:
        _wait_for_holder(lock, proc)
        _kill_9(proc)
    finally:
        _stop(proc)
    assert lock.read_text().strip() == str(proc.pid)  # left behind by the killed holder, but not held
    assert holder(lock) is None
    with hold(lock, "x", "y"):
        assert lock.read_text().strip() == str(os.getpid())


def test_waiting_waits_for_the_holder(tmp_path):
    lock = tmp_path / ".prep.lock"
    child = ("import sys, time\nfrom robustrec.locks import hold\nwith hold(sys.argv[1], 'x', 'y'):\n"
             "    time.sleep(1)\n    open(sys.argv[2], 'w').write('made')\n")
    made = tmp_path / "made"
    proc = _start(["-c", child, lock, made], tmp_path)
    try:
        _wait_for_holder(lock, proc)
        with waiting(lock) as locked:
            assert locked and made.read_text() == "made"  # got the lock only once the holder was done
    finally:
        _stop(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made"]


# --- shared preparation: the synthetic dataset -------------------------------------------------------

FAKE_ENCODER = """
import sys, time
import numpy as np
import robustrec.synthetic.folder as module
from robustrec.data.synthetic import SyntheticSpec

class Slow:  # stands in for MiniLM: slow enough that both processes prepare at once
    def encode(self, texts):
        time.sleep(1.0)
        return np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)

module._text_encoder = lambda: Slow()
open(sys.argv[2] + f".{__import__('os').getpid()}", "w").close()  # ready
while not __import__('os').path.exists(sys.argv[2]):
    time.sleep(0.005)
module.ensure_synthetic(sys.argv[1], SyntheticSpec(n_users=60, n_items=40))
print('ok')
"""


def test_two_processes_preparing_the_synthetic_dataset_at_once(tmp_path):
    data_dir, go = tmp_path / "data", tmp_path / "go"
    procs = [_start(["-c", FAKE_ENCODER, data_dir, go], tmp_path) for _ in range(2)]
    try:
        _go_when_ready(procs, go)  # both start preparing at once
        errors = [proc.communicate()[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], errors
    finally:
        for proc in procs:
            _stop(proc)
    assert sorted(p.name for p in data_dir.iterdir()) == ["synthetic"]  # no temporaries, no lock left
    assert (data_dir / "synthetic" / "synthetic.inter").is_file()


def test_losing_the_rename_to_another_process_uses_its_folder(tmp_path, monkeypatch):
    import numpy as np

    import robustrec.synthetic.folder as module
    from robustrec.data.synthetic import SyntheticSpec

    class Fake:
        def encode(self, texts):
            return np.ones((len(texts), 4), np.float32)

    monkeypatch.setattr(module, "_text_encoder", lambda: Fake())
    spec = SyntheticSpec(n_users=40, n_items=30)
    module.write_synthetic(tmp_path / "synthetic", spec)
    before = (tmp_path / "synthetic" / "synthetic.inter").read_bytes()
    module.write_synthetic(tmp_path / "synthetic", spec)  # as if it lost the race: the other's folder stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]
    assert (tmp_path / "synthetic" / "synthetic.inter").read_bytes() == before


STUDY = """
name = "two-seeds"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf"]
strategies = ["plain"]
seeds = [0, 1]

[train]
epochs = {epochs}
patience = {epochs}
batch_size = 1024

[[stress]]
kind = "noise"
sigma = [1e-2]
repeats = 1
flatness = false
"""


def _study(folder: Path, data_dir, epochs: int) -> Path:
    path = folder / "study.toml"
    path.write_text(STUDY.replace("{data}", str(data_dir)).replace("{epochs}", str(epochs)))
    return path


def test_two_seed_synthetic_study_passes_its_first_run_on_two_workers(tmp_path):
    """Both pool workers load the synthetic data at once on a fresh data dir: it is made once."""
    from robustrec.studies.execute import PoolExecutor, run_study
    from robustrec.studies.spec import load_study

    study = load_study(_study(tmp_path, tmp_path / "data", 1))
    manifest = run_study(study, tmp_path / "out", PoolExecutor(2, 1))
    assert {cell.id: cell.error for cell in manifest.cells.values() if cell.state != "done"} == {}
    assert len([c for c in manifest.cells if "/baseline/" not in c]) == 4  # and the pop baseline's
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["synthetic"]
    assert not (tmp_path / "out" / ".study.lock").exists()


# --- one process per run folder and per study folder ------------------------------------------------


def test_second_train_of_one_name_refuses_at_once_then_runs_after_a_kill_9(tmp_path, synthetic_dir, capsys):
    ck = tmp_path / "ck"
    base = ["train", "--model", "bprmf", "--threads", "1", "-q", "--data-dir", synthetic_dir,
            "--checkpoint-dir", ck, "--name", "x"]
    first = _start(["-m", "robustrec", *base, "--epochs", "100000", "--patience", "100000"], tmp_path)
    try:
        _wait_for_holder(ck / ".x.lock", first)
        for extra in ([], ["--no-resume"]):  # --no-resume must not clear the state the first one writes
            code, out, err = run_cli(capsys, *base, "--epochs", "1", *extra)
            assert code == 2 and out == ""
            assert err.strip() == (f"Error: {ck / 'x'} is being written by another robustrec process "
                                   f"(pid {first.pid}); wait for it or pick another --name")
            assert first.poll() is None  # refused while the first still trains: it did not wait
        _kill_9(first)
    finally:
        _stop(first)
    code, out, err = run_cli(capsys, *base, "--epochs", "1", "--no-resume")
    assert code == 0, err
    assert sorted(p.name for p in ck.iterdir()) == ["x"]  # no lock, no partial state left


def test_second_study_run_refuses_at_once_and_status_tells_interrupted(tmp_path, synthetic_dir, capsys):
    study, out = _study(tmp_path, synthetic_dir, 100000), tmp_path / "out"
    lock = out / ".study.lock"
    args = ["-m", "robustrec", "study", "run", study, "--out", out, "--workers", "1", "--threads", "1", "-q"]
    first = _start(args, tmp_path)
    try:
        _wait_for_holder(lock, first)
        code, stdout, err = run_cli(capsys, *args[2:])
        assert code == 2 and stdout == ""
        assert err.strip() == (f"Error: study folder {out} is being written by another robustrec process "
                               f"(pid {first.pid}); wait for it, or follow it with `robustrec study status`")
        assert first.poll() is None
        deadline = time.monotonic() + 300
        while '"running"' not in ((out / "study.json").read_text() if (out / "study.json").exists() else ""):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        code, stdout, _ = run_cli(capsys, "study", "status", out)
        assert code == 0 and f"driven by robustrec process {first.pid}" in stdout
        assert "running  train/synthetic/bprmf/plain/g0/s0" in stdout and "interrupted" not in stdout
        _kill_9(first)
    finally:
        _stop(first)
    code, stdout, _ = run_cli(capsys, "study", "status", out)
    assert code == 0 and "1 interrupted" in stdout and "running" not in stdout
    assert "interrupted train/synthetic/bprmf/plain/g0/s0" in stdout
    assert f"--out {out}` resumes them" in " ".join(stdout.split())
    second = _start(args, tmp_path)  # the killed driver's lock blocks nobody
    try:
        _wait_for_holder(lock, second)
    finally:
        _stop(second)


# --- shared caches: written by several processes, nothing lost, built once ----------------------------


def test_text_embedding_cache_saved_by_two_processes_keeps_both_rows(tmp_path):
    """Two stress cells (workers) open one cache file, each encodes its own texts, both save."""
    import numpy as np

    from robustrec.features.text_cache import TextEmbeddingCache

    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    identity = {"encoder": "fake", "folder": str(model), "backend": "test", "packages": {}, "device": "cpu"}
    path = tmp_path / "cache" / "tiny.fake.npz"
    first, second = TextEmbeddingCache.open(path, identity), TextEmbeddingCache.open(path, identity)
    first.put("red dress", np.ones(3, np.float32))
    second.put("blue jeans", np.full(3, 2.0, np.float32))
    assert first.save() is None and second.save() is None
    again = TextEmbeddingCache.open(path, identity)
    assert again.loaded == 2
    np.testing.assert_array_equal(again.get("red dress"), np.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.fake.npz"]


def test_caption_cache_flushed_by_two_processes_keeps_both_captions(tmp_path):
    from robustrec.captioning.cache import CaptionCache

    path = tmp_path / "captions" / "blip.json"
    first, second = (CaptionCache.open(path, "blip", "tiny", "sha256:x") for _ in range(2))
    first.add(1, "a red dress")
    first.skip(3, "unreadable image")
    second.add(2, "blue jeans")
    second.add(3, "a hat")
    first.flush()
    second.flush()
    first.add(4, "shoes")
    first.flush()  # the caption of item 3 beats first's skip
    stored = CaptionCache.load(path)
    assert stored.captions == {1: "a red dress", 2: "blue jeans", 3: "a hat", 4: "shoes"}
    assert stored.skipped == {}
    assert sorted(p.name for p in path.parent.iterdir()) == ["blip.json"]


BUILD = """
import sys, time
import numpy as np
from robustrec.cache import cached_arrays

def build():
    with open(sys.argv[1], "a") as log:
        log.write("built\\n")
    time.sleep(1.0)
    return {"x": np.arange(5)}

open(sys.argv[2] + f".{__import__('os').getpid()}", "w").close()  # ready
while not __import__('os').path.exists(sys.argv[2]):
    time.sleep(0.005)
assert cached_arrays("graphs", "k1", build)["x"].tolist() == [0, 1, 2, 3, 4]
"""


def test_graph_cache_missed_by_two_processes_at_once_is_built_once(tmp_path):
    log, go = tmp_path / "log", tmp_path / "go"
    env = {**ENV, "ROBUSTREC_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD, str(log), str(go)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        _go_when_ready(procs, go)
        errors = [proc.communicate()[1] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0], errors
    finally:
        for proc in procs:
            _stop(proc)
    assert log.read_text() == "built\n"
    assert sorted(p.name for p in (tmp_path / "cache" / "graphs").iterdir()) == ["k1.npz"]


def test_feature_extraction_refuses_a_folder_another_process_writes(tmp_path):
    import json

    import numpy as np

    from robustrec.features.extract import LOCK, extract_features, plan_extraction

    class Encoder:
        modality, encoder_id, version, dim, preprocessing = "text", "fake:ones", "1", 4, {"text": "as is"}

        def encode(self, batch):
            return np.ones((len(batch), self.dim), np.float32)

    source = tmp_path / "src" / "toy"
    source.mkdir(parents=True)
    (source / "toy.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t0\n" for u in range(3)
                                                                          for i in range(4)))
    (source / "toy.items.jsonl").write_text("".join(json.dumps({"itemID": i, "title": f"item {i}"}) + "\n"
                                                    for i in range(4)))
    out = tmp_path / "out"
    lock = out / "toy" / LOCK
    child = "import sys, time\nfrom robustrec.locks import hold\nwith hold(sys.argv[1], 'x', 'y'):\n    time.sleep(600)\n"
    other = _start(["-c", child, lock], tmp_path)  # stands in for an extraction writing out/toy
    try:
        _wait_for_holder(lock, other)
        plan = plan_extraction(tmp_path / "src", "toy", ["text"], out)
        with pytest.raises(LockedError, match=rf"^features of {out / 'toy'} is being written by another robustrec "
                                              rf"process \(pid {other.pid}\)"):
            extract_features(plan, {"text": Encoder()})
        assert sorted(p.name for p in (out / "toy").iterdir()) == [LOCK]  # nothing of ours
    finally:
        _stop(other)
    results = extract_features(plan_extraction(tmp_path / "src", "toy", ["text"], out), {"text": Encoder()})
    assert results[0].covered == 4 and not lock.exists()


def test_a_killed_pool_driver_takes_its_workers_along(tmp_path, synthetic_dir):
    """kill -9 of `study run` on a process pool: its workers end too, so none trains on holding a
    run's lock (an orphan would make the next `study run` fail that cell), and the study resumes."""
    study, out = _study(tmp_path, synthetic_dir, 100000), tmp_path / "out"
    pool = ("import sys\nfrom robustrec.studies.execute import PoolExecutor, run_study\n"
            "from robustrec.studies.spec import load_study\n"
            "run_study(load_study(sys.argv[1]), sys.argv[2], PoolExecutor(2, 1))\n")
    args = ["-c", pool, study, out]  # two workers whatever the cores (`study run` would refuse 2 on 1 core)
    run_lock = out / "runs" / "synthetic" / ".bprmf-plain-g0-s0.lock"
    driver = _start(args, tmp_path)
    try:
        deadline = time.monotonic() + 300
        while not holder(run_lock):
            assert driver.poll() is None and time.monotonic() < deadline, "no worker started training"
            time.sleep(0.02)
        worker = holder(run_lock)
        assert worker != driver.pid
        _kill_9(driver)
    finally:
        _stop(driver)
    deadline = time.monotonic() + 120
    while holder(run_lock) is not None:  # the worker exits (and its lock goes) once its driver is gone
        assert time.monotonic() < deadline, f"worker {worker} outlived its driver"
        time.sleep(0.05)
    second = _start(args, tmp_path)
    try:
        deadline = time.monotonic() + 300
        while holder(run_lock) in (None, worker):  # a new worker trains that cell again
            assert second.poll() is None, second.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        _stop(second)
