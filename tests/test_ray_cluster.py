"""A study on a real two-node Ray cluster (separate raylets and object stores on this machine, as
Ray's own tests run one) that loses its worker node mid-study: the lost cells run again on the
head node and the report equals the uninterrupted in-process run (``benchmarks/ray_cluster.py``)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _scenario():
    spec = importlib.util.spec_from_file_location("ray_cluster", BENCHMARKS / "ray_cluster.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_study_survives_losing_a_node_of_a_two_node_cluster(tmp_path):
    pytest.importorskip("ray", reason="ray is an optional extra: make setup installs it")
    figures = _scenario().run_scenario(epochs=4, quick=True, work=tmp_path)
    assert figures["nodes_before"] == 2 and figures["nodes_after"] == 1
    assert figures["lost_cell"], "the worker node was removed while it trained a cell"
    assert figures["all_done"], figures["cells"]
    # every cell finished on the surviving head node, including the one the worker node held
    assert figures["hosts"] and not any(figures["worker_node"] in host for host in figures["hosts"])
    assert figures["same_report"]


def test_a_lock_held_by_an_ending_attempt_is_waited_for(tmp_path):
    import multiprocessing
    import time

    from robustrec.errors import RobustRecError
    from robustrec.locks import run_lock

    run = tmp_path / "runs" / "r"
    # locks are re-entrant within a process: an earlier attempt, still ending, is another process

    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    child = ctx.Process(target=_hold_for, args=(str(run), 1.5, started))
    child.start()
    assert started.wait(30)
    begin = time.monotonic()
    with pytest.raises(RobustRecError, match="another robustrec process"):
        with run_lock(run):
            pass
    assert time.monotonic() - begin < 1.0
    with run_lock(run, wait=30):  # the retried cell waits until the first attempt ends
        waited = time.monotonic() - begin
    child.join()
    assert 0.5 < waited < 30


def _hold_for(run: str, seconds: float, started) -> None:
    import time

    from robustrec.locks import run_lock

    with run_lock(run):
        started.set()
        time.sleep(seconds)
