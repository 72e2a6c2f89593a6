"""Running a study: cells executed in this process, a local process pool, or as Ray tasks.

``run_cell(spec, folder, threads)`` is the one function every executor calls; it returns a
plain dict (picklable, JSON-able) and never raises for a cell's own failure: the error comes
back as one line, with the traceback kept beside it in the manifest. The driver
(``run_study``) plans cells, submits those whose inputs are done, records each result in the
manifest as it arrives, and plans again, until nothing is left to run.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from pathlib import Path

from robustrec.errors import ConfigError, RobustRecError
from robustrec.studies.plan import Cell, Manifest, plan
from robustrec.studies.spec import Study


class StudyRunCallback:
    """Progress hooks of ``run_study`` (the library never prints)."""

    def on_cells_planned(self, total: int, done: int) -> None: ...

    def on_cell_start(self, cell: Cell) -> None: ...

    def on_cell_end(self, cell: Cell) -> None: ...


#: seconds a training cell waits for its run folder's lock: the driver holds the study lock, so the
#: only other holder is an earlier attempt of the same cell still ending (a Ray task retried on
#: another node after its node was lost, whose process has not yet exited)
RETRY_LOCK_WAIT = 120.0


def run_cell(kind: str, spec: dict, folder: str, threads: int = 0, device: str = "cpu") -> dict:
    """Run one cell on ``device`` (resolved where the cell runs: "auto" takes that machine's GPU);
    {'ok': True, 'result': ..., 'seconds': s} or {'ok': False, 'error': line, 'detail': tb}."""
    start = time.perf_counter()
    host = socket.gethostname()
    try:
        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        result = (_train(spec, Path(folder), device) if kind == "train" else _stress(spec, Path(folder), device))
        return {"ok": True, "result": result, "seconds": time.perf_counter() - start, "host": host}
    except KeyboardInterrupt:
        raise
    except RobustRecError as exc:
        return {"ok": False, "error": str(exc), "detail": None, "seconds": time.perf_counter() - start, "host": host}
    except Exception as exc:  # a cell's bug must not stop the study: recorded with its traceback
        line = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        return {"ok": False, "error": line, "detail": traceback.format_exc(),
                "seconds": time.perf_counter() - start, "host": host}


def _train(spec: dict, folder: Path, device: str) -> dict:
    from robustrec.checkpoints import read_run, run_identity
    from robustrec.config import from_dict
    from robustrec.errors import CheckpointError
    from robustrec.studies.training import train_run
    from robustrec.training import TrainConfig

    config = from_dict(TrainConfig, spec["config"], "study cell config")
    run_dir = folder / spec["run_dir"]
    if run_dir.exists():  # saved before the manifest heard of it (a kill in between): reuse if it is this cell's
        try:
            run = read_run(run_dir)
            if _same_config(run.config, spec["config"]):
                return {"run_dir": spec["run_dir"], **run.metrics, "epochs": len(run.history), "reused": True,
                        "identity": run_identity(run_dir)}
        except CheckpointError:
            pass
    outcome = train_run(config, run_dir, overwrite=True, resume=None, device=device, discard_stale=True,
                        lock_wait=RETRY_LOCK_WAIT)
    return {"run_dir": spec["run_dir"], **outcome.metrics(), "train_seconds": outcome.seconds,
            "identity": run_identity(run_dir)}


def _same_config(saved: dict, wanted: dict) -> bool:
    """Whether a run folder's config is the one a cell wants (a field the run predates has its default)."""
    from robustrec.training import TrainConfig

    saved, full = TrainConfig.with_defaults(saved), TrainConfig.with_defaults(wanted)
    return all(saved.get(k) == full.get(k) for k in set(saved) | set(full)
               if not (k == "modalities" and wanted.get(k) is None))


def _stress(spec: dict, folder: Path, device: str) -> dict:
    from robustrec.checkpoints import load_checkpoints
    from robustrec.config import from_dict
    from robustrec.device import resolve_device
    from robustrec.reports import save_report
    from robustrec.studies.runner import StudySettings
    from robustrec.studies.stresses import load_plugins, stress_spec

    if "plugin" in spec:  # a user's kind: import its file here too (a pool or Ray worker starts bare)
        loaded = load_plugins([spec["plugin"]["path"]])[0]
        if loaded["sha256"] != spec["plugin"]["sha256"]:
            raise ConfigError(f"plug-in {spec['plugin']['path']} changed after the study was planned; run the "
                              f"study again")
    stress = stress_spec(spec["kind"], spec["options"])
    settings = from_dict(StudySettings, dict(spec["settings"]), "stress settings").validate()
    loaded, data = load_checkpoints([folder / path for path in spec["checkpoints"]], device=device)
    outcome = stress.run(loaded, data, settings, [], device=str(resolve_device(device)))
    report_dir = folder / spec["report_dir"]
    report_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, report in enumerate(outcome.reports):
        tag = report["settings"].get("file_tag")
        name = spec["report_name"] + (f"-{tag}" if tag else "") + ("" if len(outcome.reports) == 1 or tag
                                                                   else f"-{number}")
        path = report_dir / f"{name}.json"
        save_report(report, path)
        written.append(str(path.relative_to(folder)))
    return {"reports": written, "notes": outcome.notes}


# --- executors ---------------------------------------------------------------------------------


class InlineExecutor:
    """Cells one after the other in this process (one worker: no start-up cost, Ctrl-C direct)."""

    name = "inline"

    def __init__(self, threads: int = 0, device: str = "cpu") -> None:
        self.threads, self.device = threads, device
        self.queue: list[tuple[Cell, str]] = []

    @property
    def capacity(self) -> int:
        return 1

    def submit(self, cell: Cell, folder: str) -> None:
        self.queue.append((cell, folder))

    def wait_one(self) -> tuple[str, dict]:
        cell, folder = self.queue.pop(0)
        return cell.id, run_cell(cell.kind, cell.spec, folder, self.threads, self.device)

    def close(self, cancel: bool = False) -> None:
        self.queue.clear()


class PoolExecutor:
    """A local process pool: ``workers`` processes (spawned) with ``threads`` torch threads each."""

    name = "local pool"

    def __init__(self, workers: int, threads: int, device: str = "cpu") -> None:
        import concurrent.futures
        import multiprocessing

        self.workers, self.threads, self.device = workers, threads, device
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
            initargs=(threads,))
        self.futures: dict = {}

    @property
    def capacity(self) -> int:
        return self.workers

    def submit(self, cell: Cell, folder: str) -> None:
        future = self.pool.submit(run_cell, cell.kind, cell.spec, folder, self.threads, self.device)
        self.futures[future] = cell.id

    def wait_one(self) -> tuple[str, dict]:
        import concurrent.futures

        done, _ = concurrent.futures.wait(list(self.futures), return_when=concurrent.futures.FIRST_COMPLETED)
        future = next(iter(done))
        cid = self.futures.pop(future)
        try:
            return cid, future.result()
        except Exception as exc:  # the worker died (killed, out of memory)
            return cid, {"ok": False, "error": f"worker process failed: {type(exc).__name__}: {exc}",
                         "detail": None, "seconds": None}

    def close(self, cancel: bool = False) -> None:
        if cancel:  # stop the cells in flight now (their training state stays resumable)
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        self.pool.shutdown(wait=True, cancel_futures=cancel)


def _init_worker(threads: int) -> None:
    import multiprocessing
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    parent = multiprocessing.parent_process()
    if parent is not None:  # a killed driver (kill -9) takes its workers along: none keeps training
        threading.Thread(target=_exit_with, args=(parent,), daemon=True, name="driver-watch").start()
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


def _exit_with(parent) -> None:
    """Exit this worker when ``parent`` ends (the pool ends its workers first when it shuts down,
    so this only acts on a driver that died): an orphan would train on holding its run's lock."""
    parent.join()
    os._exit(1)


def _ray_cell(kind: str, spec: dict, folder: str, threads: int, device: str) -> dict:
    """``run_cell`` as a Ray task, its outcome naming the node that ran it."""
    import ray

    outcome = run_cell(kind, spec, folder, threads, device)
    outcome["host"] = f"{outcome.get('host')} node {ray.get_runtime_context().get_node_id()[:8]}"
    return outcome


class RayExecutor:
    """Every cell a Ray task with ``threads`` CPUs (and one GPU on a CUDA device); the Ray instance
    is the one already initialised, else RAY_ADDRESS / ``address``, else a local one.

    Cells spread over the nodes (``SPREAD``). A cell whose worker or node is lost mid-run (a
    node removed, a raylet killed, a machine gone) is run again on a surviving node, up to
    ``retries`` times: its training resumes from its last finished epoch where the study folder
    is shared, and the result is the one an uninterrupted run gives (a cell's own error is an
    outcome, never retried)."""

    name = "ray"

    def __init__(self, threads: int, device: str = "cpu", address: str | None = None, retries: int = 3) -> None:
        ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     log_to_driver=False)
        self.ray, self.threads, self.device = ray, max(threads, 1), device
        gpus = 1 if device.startswith("cuda") else 0
        self.remote = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=retries,
                                 scheduling_strategy="SPREAD")(_ray_cell)
        self.refs: dict = {}

    @property
    def capacity(self) -> int:
        cpus = int(self.ray.cluster_resources().get("CPU", 1))
        return max(1, cpus // self.threads)

    def submit(self, cell: Cell, folder: str) -> None:
        self.refs[self.remote.remote(cell.kind, cell.spec, folder, self.threads, self.device)] = cell.id

    def wait_one(self) -> tuple[str, dict]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        cid = self.refs.pop(ready[0])
        try:
            return cid, self.ray.get(ready[0])
        except Exception as exc:  # the task's worker died
            return cid, {"ok": False, "error": f"ray task failed: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                         "detail": None, "seconds": None}

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self.refs:
                self.ray.cancel(ref, force=True)
        self.refs.clear()


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs the ray package: pip install 'robustrec[ray]'") from None
    return ray


def worker_layout(workers: int, threads: int, cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) with workers × threads ≤ cores; 0 means automatic."""
    cores = cores or os.cpu_count() or 1
    if workers < 0 or threads < 0:
        raise ConfigError(f"--workers and --threads must be >= 0, got {workers} and {threads}")
    workers = workers or max(1, cores // max(threads, 1))
    threads = threads or max(1, cores // workers)
    if workers * threads > cores:
        raise ConfigError(f"{workers} workers × {threads} threads = {workers * threads} exceeds the {cores} cores: "
                          f"torch threads beyond the cores make every cell slower; lower --workers or --threads")
    return workers, threads


# --- the driver ----------------------------------------------------------------------------------


def run_study(study: Study, folder: str | Path, executor, callbacks: list[StudyRunCallback] | None = None,
              retry_failed: bool = False) -> Manifest:
    """Run (or resume) ``study`` in ``folder`` until every plannable cell is done, failed or blocked.

    The folder is locked for the whole run (``study_lock``): a second driver gets ``LockedError``
    at once, naming this one's PID, and ``study status`` knows running cells from interrupted ones."""
    from robustrec.locks import study_lock

    folder = Path(folder).resolve()
    try:
        lock = study_lock(folder)
        lock.__enter__()
    except BaseException:
        executor.close(cancel=True)
        raise
    try:
        return _run_study(study, folder, executor, callbacks or [], retry_failed)
    finally:
        lock.__exit__(None, None, None)


def _run_study(study: Study, folder: Path, executor, callbacks: list[StudyRunCallback],
               retry_failed: bool) -> Manifest:
    manifest = Manifest.open(folder, study)
    if retry_failed:
        for cell in manifest.cells.values():
            if cell.state == "failed":
                cell.state = "pending"
    _fill_identities(manifest)
    running: set[str] = set()
    try:
        while True:
            manifest.merge(plan(study, manifest))
            _block(manifest)
            ready = [c for c in manifest.cells.values() if c.state == "pending" and c.id not in running
                     and all(manifest.cells[d].state == "done" for d in c.deps if d in manifest.cells)
                     and all(d in manifest.cells for d in c.deps)]
            _notify(callbacks, "on_cells_planned", len(manifest.cells), manifest.counts()["done"])
            for cell in ready[:max(0, executor.capacity - len(running))]:
                cell.state, cell.attempts = "running", cell.attempts + 1
                running.add(cell.id)
                executor.submit(cell, str(folder))
                _notify(callbacks, "on_cell_start", cell)
            if not running:
                break
            manifest.save()
            cid, outcome = executor.wait_one()
            running.discard(cid)
            cell = manifest.cells[cid]
            cell.seconds, cell.host = outcome.get("seconds"), outcome.get("host")
            if outcome["ok"]:
                cell.state, cell.result, cell.error, cell.detail = "done", outcome["result"], None, None
            else:
                cell.state, cell.error, cell.detail = "failed", outcome["error"], outcome.get("detail")
            _notify(callbacks, "on_cell_end", cell)
    except BaseException:
        for cid in running:
            manifest.cells[cid].state = "pending"
        executor.close(cancel=True)
        manifest.save()
        raise
    executor.close()
    manifest.save()
    return manifest


def _fill_identities(manifest: Manifest) -> None:
    """Every done training cell's output identity is taken again from its run folder: a folder
    whose weights changed since (retrained by hand, replaced) updates it, so the stress cells
    that read it are redone; a folder gone or damaged redoes the training. Cells recorded
    before cells carried identities get theirs here."""
    from robustrec.checkpoints import run_identity
    from robustrec.errors import CheckpointError

    for cell in manifest.cells.values():
        if cell.kind == "train" and cell.state == "done":
            try:
                cell.result["identity"] = run_identity(manifest.folder / cell.spec["run_dir"])
            except (CheckpointError, OSError):
                cell.state, cell.result = "pending", None


def _block(manifest: Manifest) -> None:
    """Cells that need a failed (or blocked) cell cannot run: blocked, naming the first such input."""
    changed = True
    while changed:
        changed = False
        for cell in manifest.cells.values():
            if cell.state != "pending":
                continue
            bad = [d for d in cell.deps if d in manifest.cells and manifest.cells[d].state in ("failed", "blocked")]
            if bad:
                cell.state, cell.error, changed = "blocked", f"needs {bad[0]}, which {manifest.cells[bad[0]].state}", True


def _notify(callbacks, hook: str, *args) -> None:
    for cb in callbacks:
        getattr(cb, hook)(*args)


