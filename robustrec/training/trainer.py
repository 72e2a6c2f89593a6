"""One trainer for every model and step strategy: epochs, early stopping, best-weight restore."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from robustrec.data.dataset import InteractionData
from robustrec.data.sampler import BPRSampler
from robustrec.device import model_device, resolve_device
from robustrec.errors import CheckpointError, ConfigError
from robustrec.evaluation import EvalResult, evaluate_splits, full_ranking
from robustrec.training.config import TrainConfig
from robustrec.training.optim import build_optimizer
from robustrec.training.state import (TrainingState, differences, has_state, load_state, mismatch_error,
                                      restore_optimizer, save_state)


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    valid: float
    seconds: float
    eval_seconds: float
    best: bool = False
    #: test metrics after this epoch (metric@K -> value), only with ``track_test``
    test: dict | None = None


class TrainerCallback:
    """Progress hooks; the library never prints, the CLI draws bars from these."""

    def on_train_start(self, max_epochs: int, batches_per_epoch: int) -> None: ...

    def on_resume(self, history: list[EpochRecord]) -> None:
        """Called after ``on_train_start`` when a fit continues from saved state;
        ``history`` holds the epochs already done."""

    def on_batch_end(self, index: int, loss: float) -> None: ...

    def on_epoch_end(self, record: EpochRecord) -> None: ...


@dataclass
class TrainResult:
    best_epoch: int
    valid: EvalResult
    test: EvalResult
    history: list[EpochRecord] = field(default_factory=list)
    stopped_early: bool = False


class Trainer:
    """Fits a model with the config's optimizer and step strategy, early-stopping on validation.

    ``device`` ("auto", "cpu", "cuda", "cuda:N" or a ``torch.device``; None: wherever the model
    already is) is where ``fit`` moves the model (weights, features, graphs) before training;
    batches follow the model. The device is not part of the config: a run's identity and its
    resume check do not depend on it.
    """

    def __init__(self, config: TrainConfig, callbacks: list[TrainerCallback] | None = None,
                 device=None) -> None:
        self.config = config.validate()
        self.strategy = config.strategy()
        self.objective = config.objective()
        self.callbacks = callbacks or []
        self.device = None if device is None else resolve_device(device)

    def fit(self, model, data: InteractionData, state_dir: str | Path | None = None) -> TrainResult:
        """Train ``model`` on ``data``; equal configs and seeds give bitwise-equal weights.

        With ``state_dir``, the full training state (weights, best-so-far weights, optimizer,
        RNG and sampler state, history) is written there after every epoch, and a fit that
        finds a state there continues after its last epoch, ending bitwise where an
        uninterrupted fit would; the state must come from the same config (``data_dir``
        aside) and data, else a CheckpointError. The caller removes the folder when done
        (``robustrec.training.state.clear_state``).

        Deterministic algorithms are on while fitting: on CPU with several threads the
        backward of advanced indexing (``table[ids]``) otherwise accumulates in a varying order
        (on CUDA ops without a deterministic kernel warn; see ``robustrec.device``).
        """
        if self.device is not None:
            model.to(self.device)
        with deterministic():
            return self._fit(model, data, None if state_dir is None else Path(state_dir))

    def _fit(self, model, data: InteractionData, state_dir: Path | None) -> TrainResult:
        if not getattr(model, "trainable", True):
            return self._fit_once(model, data)
        cfg = self.config
        device = model_device(model)
        torch.manual_seed(cfg.seed)  # seeds the CUDA generators too
        sampler = BPRSampler(data, cfg.batch_size, seed=cfg.seed)
        optimizer = build_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
        history: list[EpochRecord] = []
        best_value, best_epoch, best_state = -1.0, 0, _snapshot(model)
        fingerprint = data.fingerprint() if state_dir is not None else ""
        resumed = state_dir is not None and has_state(state_dir)
        if resumed:
            saved = load_state(state_dir)
            diffs = differences(saved.config, dataclasses.asdict(cfg), saved.fingerprint, fingerprint)
            if diffs:
                raise mismatch_error(state_dir, diffs)
            _restore(saved, model, optimizer, sampler, state_dir)
            history = [EpochRecord(**r) for r in saved.history]
            best_value, best_epoch = saved.best_value, saved.best_epoch
            best_state = _snapshot(model) if saved.best is None else saved.best
        for cb in self.callbacks:
            cb.on_train_start(cfg.epochs, len(sampler))
            if resumed:
                cb.on_resume(list(history))
        epoch = len(history)
        while epoch < cfg.epochs and epoch - best_epoch < cfg.patience:
            epoch += 1
            record = self._epoch(model, data, sampler, optimizer, epoch)
            if record.valid > best_value:
                best_value, best_epoch, best_state = record.valid, epoch, _snapshot(model)
                record.best = True
            history.append(record)
            if state_dir is not None:
                save_state(state_dir, TrainingState(
                    epoch=epoch, best_epoch=best_epoch, best_value=best_value,
                    history=[dataclasses.asdict(r) for r in history], model=model.state_dict(),
                    best=None if best_epoch == epoch else best_state, optimizer=optimizer.state_dict(),
                    torch_rng=torch.get_rng_state(), sampler_rng=sampler.rng_state(),
                    model_state=model.epoch_state(), config=dataclasses.asdict(cfg), fingerprint=fingerprint,
                    cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None))
            for cb in self.callbacks:
                cb.on_epoch_end(record)
        model.load_state_dict(best_state)
        model.eval()
        final = evaluate_splits(model, data, ("valid", "test"), batch_size=cfg.eval_batch_size)
        return TrainResult(best_epoch, final["valid"], final["test"], history,
                           stopped_early=len(history) < cfg.epochs)

    def _fit_once(self, model, data: InteractionData) -> TrainResult:
        """A model with nothing to learn (``trainable = False``) was fitted when it was built:
        one evaluation, recorded as epoch 1 (loss 0, no optimizer, no state to resume)."""
        from robustrec.training.strategies import PlainStep

        if not isinstance(self.strategy, PlainStep) or self.objective is not None:
            raise ConfigError(not_trainable_message(model.name, self.config.strategy_name()))
        start = time.perf_counter()
        for cb in self.callbacks:
            cb.on_train_start(1, 0)
        model.eval()
        final = evaluate_splits(model, data, ("valid", "test"), batch_size=self.config.eval_batch_size)
        record = EpochRecord(1, 0.0, final["valid"][self.config.valid_metric], 0.0,
                             time.perf_counter() - start, best=True,
                             test=final["test"].summary() if self.config.track_test else None)
        for cb in self.callbacks:
            cb.on_epoch_end(record)
        return TrainResult(1, final["valid"], final["test"], [record], stopped_early=False)

    def _epoch(self, model, data, sampler, optimizer, epoch: int) -> EpochRecord:
        start = time.perf_counter()
        device = model_device(model)
        model.train()
        model.pre_epoch()
        trained = model if self.objective is None else self.objective.bind(model)  # AMR: the adversarial loss
        total, count = 0.0, 0
        for index, batch in enumerate(sampler.epoch()):  # drawn on the CPU (numpy), moved per batch
            batch = tuple(t.to(device) for t in batch)
            loss = self.strategy.step(trained, optimizer, batch, index)
            if loss != loss:  # NaN
                raise FloatingPointError(f"training loss became NaN at epoch {epoch}, batch {index}; "
                                         "lower --lr or check the features")
            total, count = total + loss, count + 1
            for cb in self.callbacks:
                cb.on_batch_end(index, loss)
        train_seconds = time.perf_counter() - start
        valid = full_ranking(model, data, "valid", batch_size=self.config.eval_batch_size)
        test = (full_ranking(model, data, "test", batch_size=self.config.eval_batch_size).summary()
                if self.config.track_test else None)
        eval_seconds = time.perf_counter() - start - train_seconds
        return EpochRecord(epoch, total / max(count, 1), valid[self.config.valid_metric],
                           train_seconds, eval_seconds, test=test)


def not_trainable_message(model: str, strategy: str) -> str:
    return (f"model {model!r} is a fitted baseline with nothing to learn: training it with {strategy} "
            f"does not apply (train it plain)")


@contextlib.contextmanager
def deterministic():
    """Deterministic algorithms on (warn-only), without filling every new tensor first.

    ``torch.use_deterministic_algorithms`` also turns on ``fill_uninitialized_memory``, which
    writes NaN into every ``torch.empty`` result (a debugging aid): each gathered feature
    block, gradient buffer and sparse-product output was written twice, ~10-25% of an epoch.
    No result depends on it (bitwise-identical weights), so it stays off while fitting.
    """
    import torch.utils.deterministic as flags

    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(), flags.fill_uninitialized_memory)
    torch.use_deterministic_algorithms(True, warn_only=True)
    flags.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        flags.fill_uninitialized_memory = previous[2]


def _restore(saved: TrainingState, model, optimizer, sampler, state_dir: Path) -> None:
    try:
        model.load_state_dict(saved.model)
        model.load_epoch_state(saved.model_state)
        restore_optimizer(optimizer, saved.optimizer)
        sampler.set_rng_state(saved.sampler_rng)
        torch.set_rng_state(saved.torch_rng)
        device = model_device(model)
        if saved.cuda_rng is not None and device.type == "cuda":  # a CPU state resumed on CUDA: fresh draws
            torch.cuda.set_rng_state(saved.cuda_rng, device)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"unfinished training state in {state_dir} does not fit this model "
                              f"({str(exc).splitlines()[0]}); pass --no-resume to discard it") from None


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
