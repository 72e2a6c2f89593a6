"""Checkpoints are data, not code: safetensors weights + JSON metadata, written atomically.

Layout of ``<root>/<run-name>/``:
  model.safetensors  learned weights (features and derived graphs are rebuilt from the data)
  config.json        the full TrainConfig
  metrics.json       best epoch, valid and test metrics at every K
  history.json       one record per epoch
  data.json          dataset summary and content fingerprint
  meta.json          library versions, creation time, the device it trained on, and
                     ``weights_sha256``: the SHA-256 of model.safetensors, checked on every load
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from robustrec import __version__
from robustrec.errors import CheckpointError, RobustRecError
from robustrec.files import disk_full_as_error, disk_full_error, file_sha256, fsync_dir, fsync_tree, read_json
from robustrec.paths import umask_mode

FILES = ("model.safetensors", "config.json", "metrics.json", "history.json", "data.json", "meta.json")


@dataclass
class Run:
    """A saved run's metadata (weights are read separately by ``load_model``)."""

    path: Path
    config: dict
    metrics: dict
    history: list
    data: dict
    meta: dict
    #: SHA-256 of model.safetensors as loaded (set by ``load_model``; None before a load)
    weights_sha256: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def run_identity(run_dir: str | Path) -> dict:
    """What a run folder's users depend on: the SHA-256 of its weights and config, and the
    fingerprints of the data it was trained on. A study's stress cell records the identity of
    every run it reads, so a retrained run invalidates exactly the cells that used it."""
    import hashlib

    run = read_run(run_dir)
    weights = file_sha256(run.path / "model.safetensors")
    recorded = run.meta.get("weights_sha256")
    if recorded and recorded != weights:
        raise CheckpointError(f"{run.path / 'model.safetensors'} is not the file this run saved (SHA-256 "
                              f"{weights[:12]}…, meta.json records {recorded[:12]}…): it was changed or damaged")
    config = hashlib.sha256(json.dumps(run.config, sort_keys=True).encode()).hexdigest()
    features = {m: info.get("fingerprint") for m, info in sorted(run.data.get("modalities", {}).items())}
    return {"weights_sha256": weights, "config_sha256": config,
            "interactions_fingerprint": run.data.get("interactions_fingerprint") or run.data.get("fingerprint"),
            "features": features}


def save_run(run_dir: Path, model, config, data, result, overwrite: bool = False) -> Path:
    """Write a run folder atomically: everything lands in a temp folder renamed into place."""
    from safetensors.torch import save_file
    import torch

    from robustrec.device import describe_device, model_device

    run_dir = Path(run_dir)
    if run_dir.exists() and not overwrite:
        raise CheckpointError(f"{run_dir} already exists; pass --name NAME or --overwrite")
    with disk_full_as_error(run_dir):
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"))
        weights_sha256 = file_sha256(tmp / "model.safetensors")
        _write_json(tmp / "config.json", dataclasses.asdict(config))
        _write_json(tmp / "metrics.json", {
            "best_epoch": result.best_epoch,
            "valid": result.valid.summary(),
            "test": result.test.summary(),
        })
        _write_json(tmp / "history.json", [dataclasses.asdict(r) for r in result.history])
        _write_json(tmp / "data.json", {**data.describe(), "data_dir": str(Path(config.data_dir).resolve())})
        _write_json(tmp / "meta.json", {"robustrec": __version__, "torch": torch.__version__,
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                        "device": describe_device(model_device(model)),
                                        "weights_sha256": weights_sha256})
        umask_mode(tmp)
        fsync_tree(tmp)
        _replace_dir(tmp, run_dir)
        fsync_dir(run_dir.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full_error(exc, run_dir)
        if full is not None:
            raise full from None
        raise
    return run_dir


def _replace_dir(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def read_run(run_dir: str | Path) -> Run:
    """Read a run's metadata; a missing or corrupt file is a CheckpointError."""
    path = Path(run_dir)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {str(run_dir)!r} not found (expected a run folder)")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise CheckpointError(f"{path} is not a robustrec checkpoint: missing {', '.join(missing)}")
    parts = {}
    for key in ("config", "metrics", "history", "data", "meta"):
        parts[key] = read_json(path / f"{key}.json", "checkpoint file", CheckpointError)
    return Run(path, **parts)


def load_model(run_dir: str | Path, data=None, data_dir: str | None = None, device=None):
    """(model, data, run): rebuild the run's model on its dataset and load its weights.

    The dataset is reloaded from the config (``data_dir`` overrides where it lives) unless
    ``data`` is given; its fingerprint must match the one stored at training time. The model
    is built and loaded on the CPU, then moved to ``device`` ("auto", "cpu", "cuda[:N]", a
    ``torch.device``; None: stays on the CPU), whatever device it was trained on.
    """
    import hashlib

    from safetensors import SafetensorError
    from safetensors.torch import load

    from robustrec.device import resolve_device

    device = None if device is None else resolve_device(device)
    run = read_run(run_dir)
    config = run_config(run)
    if data is None:
        data = load_model_data(run, data_dir, config.modalities)
    check_run_data(run, data)
    check_run_source(run, config)
    model = config.model_spec.build(data, config.seed)
    weights = run.path / "model.safetensors"
    try:
        blob = weights.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read {weights}: {exc.strerror or exc}") from None
    try:
        state = load(blob)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{run.path}/model.safetensors is corrupt: {exc}") from None
    bad = [key for key, tensor in state.items() if tensor.is_floating_point() and not bool(tensor.isfinite().all())]
    if bad:
        raise CheckpointError(f"{run.path}/model.safetensors is corrupt: non-finite values (NaN or inf) in "
                              f"{', '.join(sorted(bad))}")
    run.weights_sha256 = hashlib.sha256(blob).hexdigest()
    recorded = run.meta.get("weights_sha256")
    if recorded and recorded != run.weights_sha256:  # a finite bit flip, or another file put in its place
        raise CheckpointError(f"{weights} is not the file this run saved (SHA-256 {run.weights_sha256[:12]}…, "
                              f"meta.json records {recorded[:12]}…): it was changed or damaged; retrain it")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{run.path}/model.safetensors does not fit model {config.model}: "
                              f"{str(exc).splitlines()[0]}") from None
    if device is not None:
        model.to(device)
    model.eval()
    return model, data, run


def check_run_data(run: Run, data) -> None:
    """Refuse ``data`` unless it is what ``run`` was trained on: the same interactions and, for
    every modality the run used, the same feature values (named per feature file)."""
    stored = run.data
    if "interactions_fingerprint" not in stored:  # runs written before per-modality fingerprints
        if data.fingerprint() != stored.get("fingerprint"):
            raise CheckpointError(f"{run.path} was trained on data with fingerprint {stored.get('fingerprint')}, "
                                  f"but {data.name} now has {data.fingerprint()}")
        return
    if data.interactions_fingerprint() != stored["interactions_fingerprint"]:
        raise CheckpointError(f"{run.path} was trained on other interactions than {data.name} now holds "
                              f"(fingerprint {stored['interactions_fingerprint']}, now "
                              f"{data.interactions_fingerprint()}); retrain on this data")
    current = data.feature_fingerprints()
    for modality, info in stored.get("modalities", {}).items():
        if modality not in current:
            raise CheckpointError(f"{run.path} was trained with {modality} features ({info['file']}), "
                                  f"which {data.name} no longer has")
        if current[modality] != info["fingerprint"]:
            raise CheckpointError(f"the {modality} features of {data.name} changed since {run.path} was trained "
                                  f"({info['file']}: fingerprint {info['fingerprint']}, now {current[modality]}); "
                                  f"restore the file or retrain")


def check_run_source(run: Run, config=None) -> None:
    """Refuse a run whose model comes from a file that changed (or vanished) since it was
    trained: one line naming the file and both SHA-256 prefixes (config.json's ``model_source``)."""
    from robustrec.models.sources import source_changed_message

    source = (config or run_config(run)).model_source
    problem = source_changed_message(source, str(run.path)) if source else None
    if problem:
        raise CheckpointError(problem)


def run_config(run: Run):
    """The run's TrainConfig (``modalities`` None for runs that predate that record: all)."""
    from robustrec.config import from_dict
    from robustrec.training import TrainConfig

    try:
        return from_dict(TrainConfig, run.config, what="checkpoint config")
    except RobustRecError as exc:
        raise CheckpointError(f"{run.path}/config.json: {exc}") from None


def load_model_data(run: Run, data_dir: str | None, modalities=None):
    """The dataset ``run`` was trained on, with the features of ``modalities`` (None: all);
    ``data_dir`` overrides where it lives."""
    from robustrec.data import load_dataset

    config = run_config(run)
    # the absolute location recorded at training time first; a relative config path only if
    # nothing absolute was recorded (runs must not depend on, or write into, the current folder)
    recorded = run.data.get("data_dir")
    candidates = [data_dir] if data_dir else [recorded or config.data_dir]
    if not data_dir and Path(config.data_dir).is_absolute() and config.data_dir != recorded:
        candidates.append(config.data_dir)
    error = None
    for candidate in [c for c in candidates if c]:
        try:
            from robustrec.synthetic.folder import prepare_dataset

            prepare_dataset(config.dataset, candidate)  # the built-in dataset is made again if it was removed
            return load_dataset(config.dataset, candidate, modalities)
        except RobustRecError as exc:
            error = exc
    raise CheckpointError(f"cannot load dataset {config.dataset!r} of {run.path}: {error}")


def newest_runs(root: str | Path) -> list[Path]:
    """The run folders a stress test takes when none is named: the newest run under ``root``
    and, when one exists, its twin — the newest run of the same model, dataset (interactions)
    and modalities (and adversarial training) trained with the other strategy (plain ↔ Mirror
    Gradient). Baseline first.
    """
    root = Path(root)
    if not root.is_dir():
        raise CheckpointError(f"no CHECKPOINT given and {str(root)!r} is not a folder of runs; train one with "
                              f"`robustrec train` or name the run folders")
    runs = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            run = read_run(folder)
        except CheckpointError:
            continue  # not a run folder (reports, partial state, ...)
        runs.append((os.stat(folder / "model.safetensors").st_mtime_ns, folder.name, run))
    if not runs:
        raise CheckpointError(f"no CHECKPOINT given and no run folder under {root}; train one with "
                              f"`robustrec train` or name the run folders")
    runs.sort(key=lambda item: (item[0], item[1]), reverse=True)
    newest = runs[0][2]

    def key(run: Run) -> tuple:
        return (run.config.get("model"), run.config.get("dataset"),
                run.data.get("interactions_fingerprint") or run.data.get("fingerprint"),
                tuple(run.config.get("modalities") or ()), run.config.get("adversarial") or "none")

    twins = [run for _, _, run in runs[1:] if key(run) == key(newest)
             and bool(run.config.get("mg")) != bool(newest.config.get("mg"))]
    chosen = [newest] + twins[:1]
    chosen.sort(key=lambda run: bool(run.config.get("mg")))
    return [run.path for run in chosen]


@dataclass
class LoadedCheckpoint:
    model: object
    run: object


def load_checkpoints(paths: list[str | Path], data_dir: str | None = None, device=None):
    """(checkpoints, data): every run read first, refused unless all share one data fingerprint;
    the models are moved to ``device`` (see ``load_model``); perturbed copies stay there."""
    from robustrec.device import resolve_device

    device = None if device is None else resolve_device(device)
    if not paths:
        raise CheckpointError("no checkpoint given")
    runs = [read_run(path) for path in paths]
    prints = {_interactions_print(run) for run in runs}
    if len(prints) > 1:
        listing = ", ".join(f"{run.name} ({run.data.get('name')}, {_interactions_print(run)})" for run in runs)
        raise CheckpointError(f"checkpoints were trained on different data: {listing}")
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        raise CheckpointError(f"checkpoint folder names must be distinct, got {', '.join(names)}")
    data = _shared_data(runs, data_dir)
    loaded = []
    for path in paths:
        model, data, run = load_model(path, data=data, data_dir=data_dir, device=device)
        loaded.append(LoadedCheckpoint(model, run))
    return loaded, data


def _interactions_print(run) -> str:
    return run.data.get("interactions_fingerprint") or run.data.get("fingerprint")


def _shared_data(runs, data_dir: str | None):
    """The dataset of the first run, with the features every run reads (their union); each
    model then takes its own modalities, checked against what it was trained on."""
    wanted = [run.config.get("modalities") for run in runs]
    union = None if any(w is None for w in wanted) else sorted({m for w in wanted for m in w})
    return load_model_data(runs[0], data_dir, union)
