"""Resumable training state: what an interrupted fit needs to continue bitwise-identically.

A state folder (the CLI uses ``<checkpoint-dir>/.<run-name>.partial/``) holds two files,
rewritten after every epoch:

  state-<epoch>.safetensors  current weights (``model.<name>``), best-so-far weights
                             (``best.<name>``; absent when the last epoch is the best),
                             optimizer tensors (``optimizer.<param>.<key>``: Adam's moments and
                             ``step`` ...), torch's CPU RNG state (``rng.torch``) and, for a
                             fit on a GPU, that device's CUDA RNG state (``rng.cuda``)
  state.json                 epochs done, best epoch and value, history, the BPR sampler's
                             numpy bit-generator state, the optimizer's other state and param
                             groups, the model's ``epoch_state()``, the TrainConfig, the data
                             fingerprint and versions; it names its tensor file

The tensor file is written first under a new name, then ``state.json`` is replaced atomically
(both with ``robustrec.files.write_atomic``: a temporary file renamed into place, with the
user's umask mode), then the older tensor file is deleted: a process killed at any moment leaves
the previous complete state or the new one. Files are not fsync'ed (that tripled the cost of a
save, e.g. 0.2–0.9 s → 1.4–2.3 s for BM3's 384 MiB state on Baby), so an OS crash or power
cut may lose the latest state (a truncated file fails to load with a CheckpointError). A full
disk is a one-line ``DiskFullError``: the previous state is kept (the run resumes from it once
there is room), and a first state that could not be written leaves no folder behind.
Nothing is pickled.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from robustrec.errors import CheckpointError

STATE_JSON = "state.json"
FORMAT = 1
#: config fields that may differ on resume: the data's fingerprint is compared instead
IGNORED_FIELDS = ("data_dir",)


@dataclass
class TrainingState:
    """Everything the trainer carries from one epoch to the next."""

    epoch: int  # epochs completed
    best_epoch: int
    best_value: float
    history: list[dict]  # EpochRecord fields
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None  # None: the current weights are the best
    optimizer: dict  # torch.optim.Optimizer.state_dict()
    torch_rng: torch.Tensor
    sampler_rng: dict
    model_state: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    fingerprint: str = ""
    cuda_rng: torch.Tensor | None = None  # the training device's generator, for a fit on CUDA


def has_state(folder: str | Path) -> bool:
    return (Path(folder) / STATE_JSON).is_file()


def save_state(folder: str | Path, state: TrainingState) -> None:
    """Write ``state`` into ``folder`` (created if needed), replacing the previous state atomically."""
    from safetensors.torch import save_file

    from robustrec import __version__
    from robustrec.files import disk_full_as_error, write_atomic, write_json_atomic

    folder = Path(folder)
    created = not folder.exists()
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    if state.best is not None:
        tensors.update({f"best.{k}": v for k, v in state.best.items()})
    optimizer_tensors, optimizer_rest = _split_optimizer(state.optimizer)
    tensors.update(optimizer_tensors)
    tensors["rng.torch"] = state.torch_rng
    if state.cuda_rng is not None:
        tensors["rng.cuda"] = state.cuda_rng
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}

    name = f"state-{state.epoch:05d}.safetensors"
    document = {
        "format": FORMAT,
        "tensors": name,
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "best_value": state.best_value,
        "best_is_current": state.best is None,
        "history": state.history,
        "sampler_rng": state.sampler_rng,
        "optimizer": optimizer_rest,
        "model_state": state.model_state,
        "config": state.config,
        "fingerprint": state.fingerprint,
        "versions": {"robustrec": __version__, "torch": torch.__version__},
    }
    try:
        with disk_full_as_error(folder / name):
            folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / name, lambda tmp: save_file(tensors, str(tmp)), fsync=False)
        write_json_atomic(folder / STATE_JSON, document, fsync=False)
    except BaseException:
        _undo(folder, name, created)
        raise
    for old in folder.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def _undo(folder: Path, name: str, created: bool) -> None:
    """After a failed save: drop a folder this save created and which holds no state; else
    the new tensor file, unless ``state.json`` already names it (the previous state stays)."""
    if created and not has_state(folder):
        shutil.rmtree(folder, ignore_errors=True)
        return
    try:
        named = json.loads((folder / STATE_JSON).read_text()).get("tensors")
    except (OSError, ValueError, AttributeError):
        named = None
    if named != name:
        (folder / name).unlink(missing_ok=True)


def read_state_info(folder: str | Path) -> dict:
    """``state.json`` of ``folder`` (no tensors); a CheckpointError if unreadable."""
    from robustrec.files import read_json

    path = Path(folder) / STATE_JSON
    info = read_json(path, "unfinished training state", CheckpointError, hint="pass --no-resume to discard it")
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"unfinished training state {path} has an unknown format; "
                              "pass --no-resume to discard it")
    return info


def load_state(folder: str | Path) -> TrainingState:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    info = read_state_info(folder)
    try:
        tensors = load_file(str(folder / info["tensors"]))
    except (SafetensorError, OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"unfinished training state in {folder} is corrupt ({exc}); "
                              "pass --no-resume to discard it") from None
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "best": {}, "optimizer": {}}
    for key, value in tensors.items():
        prefix, _, rest = key.partition(".")
        if prefix in groups:
            groups[prefix][rest] = value
    try:
        return TrainingState(
            epoch=info["epoch"], best_epoch=info["best_epoch"], best_value=info["best_value"],
            history=info["history"], model=groups["model"],
            best=None if info["best_is_current"] else groups["best"],
            optimizer=_join_optimizer(groups["optimizer"], info["optimizer"]),
            torch_rng=tensors["rng.torch"], sampler_rng=info["sampler_rng"],
            model_state=info["model_state"], config=info["config"], fingerprint=info["fingerprint"],
            cuda_rng=tensors.get("rng.cuda"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"unfinished training state in {folder} is incomplete (missing {exc}); "
                              "pass --no-resume to discard it") from None


def clear_state(folder: str | Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def differences(stored: dict, current: dict, stored_fingerprint: str | None = None,
                current_fingerprint: str | None = None) -> list[str]:
    """What differs between a stored state's config (and data) and this run's, as
    ``field stored → current`` strings; ``IGNORED_FIELDS`` are skipped."""
    from robustrec.training.config import TrainConfig

    stored, current = TrainConfig.with_defaults(stored), TrainConfig.with_defaults(current)
    out = [f"{key} {stored.get(key)!r} → {current.get(key)!r}"
           for key in sorted(set(stored) | set(current))
           if key not in IGNORED_FIELDS and stored.get(key) != current.get(key)]
    if stored_fingerprint is not None and current_fingerprint is not None \
            and stored_fingerprint != current_fingerprint:
        out.append(f"data fingerprint {stored_fingerprint} → {current_fingerprint}")
    return out


def mismatch_error(folder: str | Path, diffs: list[str]) -> CheckpointError:
    return CheckpointError(f"the unfinished run in {folder} was started with different settings "
                           f"({'; '.join(diffs)}); rerun with its settings to resume it, "
                           "or pass --no-resume to discard it")


# --- optimizer state: tensors to safetensors, the rest to JSON ---------------------------
def _split_optimizer(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        scalars[str(index)] = {}
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{index}.{key}"] = value
            else:
                scalars[str(index)][key] = value
    return tensors, {"state": scalars, "param_groups": state_dict["param_groups"]}


def _join_optimizer(tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict] = {int(index): dict(entry) for index, entry in rest["state"].items()}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def restore_optimizer(optimizer: torch.optim.Optimizer, state_dict: dict) -> None:
    """``load_state_dict`` after turning JSON lists back into the tuples the fresh optimizer
    holds (Adam's ``betas``), so param groups come back with their original types."""
    groups = []
    for fresh, saved in zip(optimizer.param_groups, state_dict["param_groups"]):
        groups.append({k: tuple(v) if isinstance(fresh.get(k), tuple) and isinstance(v, list) else v
                       for k, v in saved.items()})
    optimizer.load_state_dict({"state": state_dict["state"], "param_groups": groups})

