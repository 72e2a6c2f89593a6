"""One trainer for every model and step strategy: epochs, early stopping, best-weight restore."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from robustrec.data.dataset import InteractionData
from robustrec.data.sampler import BPRSampler
from robustrec.evaluation import EvalResult, evaluate_splits, full_ranking
from robustrec.training.config import TrainConfig
from robustrec.training.optim import build_optimizer


@dataclass
class EpochRecord:
    epoch: int
    loss: float
    valid: float
    seconds: float
    eval_seconds: float
    best: bool = False


class TrainerCallback:
    """Progress hooks; the library never prints, the CLI draws bars from these."""

    def on_train_start(self, max_epochs: int, batches_per_epoch: int) -> None: ...

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
    """Fits a model with the config's optimizer and step strategy, early-stopping on validation."""

    def __init__(self, config: TrainConfig, callbacks: list[TrainerCallback] | None = None) -> None:
        self.config = config.validate()
        self.strategy = config.strategy()
        self.callbacks = callbacks or []

    def fit(self, model, data: InteractionData) -> TrainResult:
        """Train ``model`` on ``data``; equal configs and seeds give bitwise-equal weights.

        Deterministic algorithms are on while fitting: on CPU with several threads the
        backward of advanced indexing (``table[ids]``) otherwise accumulates in a varying order.
        """
        previous = (torch.are_deterministic_algorithms_enabled(),
                    torch.is_deterministic_algorithms_warn_only_enabled())
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return self._fit(model, data)
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])

    def _fit(self, model, data: InteractionData) -> TrainResult:
        cfg = self.config
        torch.manual_seed(cfg.seed)
        sampler = BPRSampler(data, cfg.batch_size, seed=cfg.seed)
        optimizer = build_optimizer(cfg.optimizer, model.parameters(), cfg.lr, cfg.weight_decay)
        for cb in self.callbacks:
            cb.on_train_start(cfg.epochs, len(sampler))
        history: list[EpochRecord] = []
        best_value, best_epoch, best_state = -1.0, 0, _snapshot(model)
        for epoch in range(1, cfg.epochs + 1):
            record = self._epoch(model, data, sampler, optimizer, epoch)
            if record.valid > best_value:
                best_value, best_epoch, best_state = record.valid, epoch, _snapshot(model)
                record.best = True
            history.append(record)
            for cb in self.callbacks:
                cb.on_epoch_end(record)
            if epoch - best_epoch >= cfg.patience:
                break
        model.load_state_dict(best_state)
        model.eval()
        final = evaluate_splits(model, data, ("valid", "test"), batch_size=cfg.eval_batch_size)
        return TrainResult(best_epoch, final["valid"], final["test"], history,
                           stopped_early=len(history) < cfg.epochs)

    def _epoch(self, model, data, sampler, optimizer, epoch: int) -> EpochRecord:
        start = time.perf_counter()
        model.train()
        model.pre_epoch()
        total, count = 0.0, 0
        for index, batch in enumerate(sampler.epoch()):
            loss = self.strategy.step(model, optimizer, batch, index)
            if loss != loss:  # NaN
                raise FloatingPointError(f"training loss became NaN at epoch {epoch}, batch {index}; "
                                         "lower --lr or check the features")
            total, count = total + loss, count + 1
            for cb in self.callbacks:
                cb.on_batch_end(index, loss)
        train_seconds = time.perf_counter() - start
        valid = full_ranking(model, data, "valid", batch_size=self.config.eval_batch_size)
        eval_seconds = time.perf_counter() - start - train_seconds
        return EpochRecord(epoch, total / max(count, 1), valid[self.config.valid_metric],
                           train_seconds, eval_seconds)


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
