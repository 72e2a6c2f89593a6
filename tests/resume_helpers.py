"""Shared by the resume tests: interrupt a fit, compare two fits bitwise."""

import torch

from robustrec.training import TrainerCallback


class KillAfter(TrainerCallback):
    """Interrupts the fit at the end of epoch ``k`` (after its state was saved)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def on_epoch_end(self, record):
        if record.epoch == self.k:
            raise KeyboardInterrupt


def assert_same_fit(a, b):
    (model_a, result_a), (model_b, result_b) = a, b
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert torch.equal(state_a[key], state_b[key]), key
    assert result_a.best_epoch == result_b.best_epoch
    assert result_a.stopped_early == result_b.stopped_early
    assert result_a.valid.summary() == result_b.valid.summary()
    assert result_a.test.summary() == result_b.test.summary()
    assert [(r.epoch, r.loss, r.valid, r.best) for r in result_a.history] == \
           [(r.epoch, r.loss, r.valid, r.best) for r in result_b.history]
