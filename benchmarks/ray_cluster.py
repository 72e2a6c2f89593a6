"""A study on a real two-node Ray cluster, with the worker node lost mid-study.

The cluster runs on this machine as Ray's own tests run one (``ray.cluster_utils.Cluster``): a
head node and a worker node, each with its own raylet, object store and worker processes, one
CPU each, sharing the study folder through the file system (as nodes share NFS in a real
cluster). The study is driven by ``robustrec study run --ray-address ADDRESS`` in its own process, as a
user runs it; cells spread over both nodes.

As soon as a training cell runs on the worker node (its run lock is held by a process whose
parent is that node's raylet), the worker node is removed (``Cluster.remove_node``: its raylet
and workers are killed). Ray runs the lost cells again on the head node; the script then checks
that the study's report (clean table and stress results) is the one an uninterrupted in-process
run of the same study gives, and prints the timings:

    PYTHONPATH=. python benchmarks/ray_cluster.py            # ~1-2 min on 2 cores
    PYTHONPATH=. python benchmarks/ray_cluster.py --json out.json

Exit 0 when the reports agree and the loss hit a running cell, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STUDY = """
name = "ray-cluster"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf", "lightgcn"]
strategies = ["plain", "mg"]
seeds = [0, 1]

[train]
epochs = {epochs}
patience = {epochs}
batch_size = 256

[[stress]]
kind = "noise"
sigma = [1e-2]
repeats = 3
flatness = false
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per training cell (longer cells: "
                                                              "the loss lands mid-training)")
    parser.add_argument("--quick", action="store_true", help="one model, one strategy (what the test runs)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    return parser.parse_args(argv)


def _parent(pid: int) -> int:
    """The parent PID of ``pid`` (Linux /proc), 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cell_on(folder: Path, raylet: int) -> str | None:
    """The run folder whose lock a worker of the raylet ``raylet`` holds, if any."""
    from robustrec.locks import holder

    for lock in folder.rglob(".*.lock"):
        if lock.name == ".study.lock":
            continue
        pid = holder(lock)
        if pid and _parent(pid) == raylet:
            return lock.name[1:-len(".lock")]
    return None


def comparable(report: dict) -> dict:
    """The numbers of a study report that must not depend on where its cells ran."""
    keep = ("clean", "stress")
    return json.loads(json.dumps({key: report.get(key) for key in keep}, sort_keys=True, default=str))


def study_text(data: Path, epochs: int, quick: bool) -> str:
    text = STUDY.replace("{data}", str(data)).replace("{epochs}", str(epochs))
    if quick:
        text = text.replace('models = ["bprmf", "lightgcn"]', 'models = ["lightgcn"]')
        text = text.replace('strategies = ["plain", "mg"]', 'strategies = ["plain"]')
    return text


def run_scenario(epochs: int = 6, quick: bool = False, work: Path | None = None) -> dict:
    """Run the study inline and on the two-node cluster with the node loss; the figures as a dict."""
    import ray
    from ray.cluster_utils import Cluster

    from robustrec.studies.execute import InlineExecutor, run_study
    from robustrec.studies.plan import read_manifest
    from robustrec.studies.report import build_report
    from robustrec.studies.spec import load_study
    from robustrec.synthetic.folder import ensure_synthetic

    own = work is None
    work = Path(tempfile.mkdtemp(prefix="rr-ray-")) if own else work
    session = Path(tempfile.gettempdir()) / "ray"  # Ray's session files (sockets need a short path)
    session_existed = session.exists()
    figures: dict = {"epochs": epochs}
    try:
        data = work / "data"
        ensure_synthetic(data)
        study_file = work / "study.toml"
        study_file.write_text(study_text(data, epochs, quick))
        study = load_study(study_file)

        start = time.perf_counter()
        run_study(study, work / "inline", InlineExecutor(threads=1))
        figures["inline_seconds"] = time.perf_counter() - start

        start = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        worker = cluster.add_node(num_cpus=1)
        try:
            ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
            cluster.wait_for_nodes()
            figures["cluster_start_seconds"] = time.perf_counter() - start
            figures["nodes_before"] = len([n for n in ray.nodes() if n["Alive"]])
            raylet = worker.all_processes["raylet"][0].process.pid
            figures["worker_node"] = worker.node_id[:8]
            lost: dict = {}
            folder = work / "cluster"

            def watch() -> None:  # remove the worker node while it trains a cell
                while not lost.get("stop"):
                    name = _cell_on(folder, raylet) if folder.exists() else None
                    if name:
                        time.sleep(0.5)  # let it train a little: the retry resumes or restarts it
                        lost["cell"], lost["at"] = name, time.perf_counter() - begin
                        cluster.remove_node(worker)
                        return
                    time.sleep(0.05)

            begin = time.perf_counter()
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            # the driver is `robustrec study run --ray-address`, in its own process, as a user runs it
            driver = subprocess.run([sys.executable, "-m", "robustrec", "study", "run", str(study_file), "--out",
                                     str(folder), "--ray-address", cluster.address, "--threads", "1", "--quiet"],
                                    capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            lost["stop"] = True
            watcher.join()
            figures["driver_exit"] = driver.returncode
            figures["driver_output"] = (driver.stdout + driver.stderr)[-2000:]
            figures["cluster_study_seconds"] = time.perf_counter() - begin
            figures["lost_cell"], figures["lost_at_seconds"] = lost.get("cell"), lost.get("at")
            figures["nodes_after"] = len([n for n in ray.nodes() if n["Alive"]])
            manifest = read_manifest(folder)
            figures["cells"] = {cid: {"state": c["state"], "host": c.get("host")}
                                for cid, c in manifest["cells"].items()}
        finally:
            ray.shutdown()
            cluster.shutdown()
        figures["hosts"] = sorted({c["host"] for c in figures["cells"].values() if c["host"]})
        figures["all_done"] = all(c["state"] == "done" for c in figures["cells"].values())
        inline, clustered = build_report(work / "inline"), build_report(work / "cluster")
        figures["same_report"] = comparable(inline) == comparable(clustered)
        figures["ok"] = bool(figures["driver_exit"] == 0 and figures["all_done"] and figures["same_report"] and figures["lost_cell"]
                             and figures["nodes_after"] == 1)
        return figures
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
        if not session_existed:
            shutil.rmtree(session, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = run_scenario(args.epochs, args.quick)
    print(f"inline study              {figures['inline_seconds']:6.1f} s")
    print(f"cluster start (2 nodes)   {figures['cluster_start_seconds']:6.1f} s")
    print(f"study on the cluster      {figures['cluster_study_seconds']:6.1f} s  "
          f"(nodes {figures['nodes_before']} -> {figures['nodes_after']})")
    at = figures["lost_at_seconds"]
    print(f"worker node {figures['worker_node']} removed at {at:.1f} s, while it trained {figures['lost_cell']}"
          if at is not None
          else "worker node never held a training cell: nothing was lost")
    for cid, cell in sorted(figures["cells"].items()):
        print(f"  {cell['state']:<7} {cid:<40} {cell['host']}")
    if figures["driver_exit"]:
        print(f"the driver exited with {figures['driver_exit']}:\n{figures['driver_output']}")
    print(f"every cell done: {figures['all_done']}; report equals the uninterrupted run: {figures['same_report']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    sys.exit(main())
