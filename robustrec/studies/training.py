"""The train pipeline: data → model → trainer → run folder, one function for the CLI, studies and
benchmarks. It never prints: what a user should be told comes back as notes or goes to callbacks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: receives one line a front end may show (resuming, discarded state, the modalities read)
Note = Callable[[str], None]


@dataclass
class TrainOutcome:
    """What ``train_run`` did: the run folder, the resolved config and the trainer's result."""

    run_dir: Path
    config: object
    result: object
    data: object
    seconds: float

    def metrics(self) -> dict:
        """The run's metrics.json content: best epoch, valid and test metrics at every K."""
        return {"best_epoch": self.result.best_epoch, "epochs": len(self.result.history),
                "stopped_early": self.result.stopped_early, "valid": self.result.valid.summary(),
                "test": self.result.test.summary()}


def partial_dir(run_dir: Path) -> Path:
    """Where the unfinished run of ``run_dir`` keeps its resumable state."""
    return run_dir.parent / f".{run_dir.name}.partial"


def default_run_name(config) -> str:
    """<model>-<dataset> (<file stem>.<Class> for a model file), then -sam/-asam/-sgbd for those steps, -amr with AMR adversarial
    training, then -mg with Mirror Gradient."""
    from robustrec.models.sources import parse_reference

    step = f"-{config.step}" if config.step in ("sam", "asam", "sgbd") else ""
    amr = "-amr" if config.adversarial == "amr" else ""
    model = parse_reference(config.model).label  # a model file: <stem>.<Class>
    return f"{model}-{config.dataset}{step}{amr}" + ("-mg" if config.mg and config.step != "sgbd" else "")


def prepare_data(config, data=None):
    """(data, config): the dataset with the modalities the model reads, and the config recording
    exactly those (reloading the run uses them). ``data``: the dataset already loaded, with at
    least those modalities (a study loads each dataset once)."""
    from robustrec.data import load_dataset
    from robustrec.models import get_model_class
    from robustrec.models.base import resolve_modalities

    cls = get_model_class(config.model)
    if data is None:
        from robustrec.synthetic.folder import prepare_dataset

        prepare_dataset(config.dataset, config.data_dir)  # the built-in dataset is made on first use
        data = load_dataset(config.dataset, config.data_dir, config.modalities if cls.multimodal else ())
    chosen = resolve_modalities(cls, data, config.modalities)
    return data.select_modalities(chosen), dataclasses.replace(config, modalities=list(chosen))


def train_run(config, run_dir: str | Path, *, callbacks=(), overwrite: bool = False, resume: bool | None = None,
              threads: int = 0, note: Note | None = None, data=None, device=None,
              discard_stale: bool = False, lock_wait: float = 0.0) -> TrainOutcome:
    """Train ``config`` and save the run folder ``run_dir`` atomically.

    ``resume``: True/None continue an unfinished run of the same name from its last finished
    epoch (None: only if its settings match — a mismatch is an error naming the differences;
    True: also note when there is none); False discards it. ``discard_stale``: an unfinished run
    with other settings is discarded instead of refused (a study cell owns its run folder). ``threads`` > 0 sets torch's CPU
    threads. ``data``: an already loaded dataset (a study reuses one across cells). ``device``:
    where to train ("auto", "cpu", "cuda[:N]" or a torch.device; None: the CPU), recorded in
    meta.json and not in the config, so it never changes the run's identity or resume check.

    The run name is locked (``.<name>.lock`` beside the run folder) from before its unfinished
    state is read to after the folder is saved: a second process training the same name gets
    ``LockedError`` at once (after ``lock_wait`` seconds when > 0), naming the holder's PID.
    """
    from robustrec.device import resolve_device
    from robustrec.errors import CheckpointError
    from robustrec.locks import run_lock

    note = note or (lambda line: None)
    device = None if device is None else resolve_device(device)
    run_dir = Path(run_dir)
    if run_dir.exists() and not overwrite:
        raise CheckpointError(f"{run_dir} already exists; pass --name NAME or --overwrite")
    # one process per run name, from its unfinished state to the saved folder (resume, --no-resume)
    with run_lock(run_dir, wait=lock_wait):
        if run_dir.exists() and not overwrite:  # saved by a holder that finished meanwhile
            raise CheckpointError(f"{run_dir} already exists; pass --name NAME or --overwrite")
        return _train_locked(config, run_dir, callbacks, overwrite, resume, threads, note, data, device, discard_stale)


def _train_locked(config, run_dir: Path, callbacks, overwrite: bool, resume: bool | None, threads: int,
                  note: Note, data, device, discard_stale: bool = False) -> TrainOutcome:
    import time

    import torch

    from robustrec.checkpoints import save_run
    from robustrec.device import describe_device
    from robustrec.training import Trainer
    from robustrec.training.state import clear_state, differences, has_state, mismatch_error, read_state_info

    if threads > 0:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    data, config = prepare_data(config, data)
    state_dir = partial_dir(run_dir)
    if resume is False and state_dir.exists():
        clear_state(state_dir)
        note(f"discarded the unfinished run in {state_dir}")
    elif has_state(state_dir):
        info = read_state_info(state_dir)
        diffs = differences(info["config"], dataclasses.asdict(config))
        if diffs and not discard_stale:
            raise mismatch_error(state_dir, diffs)
        if diffs:  # a study cell whose spec changed: its old unfinished run is not this one
            clear_state(state_dir)
            note(f"discarded the unfinished run in {state_dir} (other settings: {'; '.join(diffs)})")
        else:
            note(f"resuming {run_dir.name} after epoch {info['epoch']} of at most {config.epochs} "
                 f"(state in {state_dir}; --no-resume starts over)")
    elif resume:
        note(f"nothing to resume in {state_dir}; starting from epoch 1")
    model = config.model_spec.build(data, config.seed)
    note(f"{config.model} on {data.name} ({data.n_users} users, {data.n_items} items, {data.n_train} train "
         f"interactions), {config.strategy_name()} steps, {config.optimizer} lr {config.lr}")
    if config.modalities:
        note("modalities: " + ", ".join(modality_note(data, m) for m in config.modalities))
    if device is not None and device.type != "cpu":
        note(f"device: {describe_device(device)}")
    result = Trainer(config, list(callbacks), device=device).fit(model, data, state_dir)
    save_run(run_dir, model, config, data, result, overwrite=overwrite)
    clear_state(state_dir)
    return TrainOutcome(run_dir, config, result, data, time.perf_counter() - start)


def modality_note(data, modality: str) -> str:
    """``text (384-d, 819/1,994 items with content)``: what the model reads of one modality."""
    dim, covered = data.features[modality].shape[1], int(data.coverage(modality).sum())
    content = "" if covered == data.n_items else f", {covered:,}/{data.n_items:,} items with content"
    return f"{modality} ({dim}-d{content})"
