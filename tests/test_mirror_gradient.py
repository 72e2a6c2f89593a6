"""Mirror Gradient semantics pinned by hand computation (docs/design.md §2)."""

import pytest
import torch

from robustrec.errors import ConfigError
from robustrec.training.strategies import MirrorGradientStep, PlainStep, SharpnessAwareStep
from step_helpers import Quadratic, _batch


def test_optimizer_form_with_sgd_matches_hand_computation():
    lr, a1, a2 = 0.1, 1.0, 0.3
    model = Quadratic([2.0, -1.0])
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    MirrorGradientStep(a1, a2, beta=3).step(model, opt, _batch(), index=0)
    w = torch.tensor([2.0, -1.0])
    w_mid = w - lr * a1 * w            # step on α1·L
    w_end = w_mid + lr * a2 * w_mid    # step on −α2·L at the updated weights
    assert torch.allclose(model.w.detach(), w_end)


def test_literal_form_matches_algorithm_one_and_leaves_optimizer_state_alone():
    lr, a1, a2 = 0.05, 1.0, 0.2
    model = Quadratic([1.0, 3.0])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    MirrorGradientStep(a1, a2, beta=1, form="literal").step(model, opt, _batch(2.0), index=0)
    w = torch.tensor([1.0, 3.0])
    w_mid = w - a1 * lr * 2.0 * w
    w_end = w_mid + a2 * lr * 2.0 * w_mid
    assert torch.allclose(model.w.detach(), w_end)
    assert len(opt.state) == 0  # Adam moments untouched


def test_mirror_batches_are_multiples_of_beta():
    calls = []

    class Recorder(PlainStep):
        def step(self, model, optimizer, batch, index):
            calls.append(index)
            return 0.0

    strategy = MirrorGradientStep(beta=3, base=Recorder())
    model = Quadratic([1.0])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for index in range(8):
        strategy.step(model, opt, _batch(), index)
    assert calls == [1, 2, 4, 5, 7]
    assert [i for i in range(8) if strategy.is_mirror_batch(i)] == [0, 3, 6]


def test_mirror_step_uses_a_fresh_forward_pass_on_the_same_batch():
    seen = []

    class Spy(Quadratic):
        def loss(self, users, pos, neg):
            seen.append((users.clone(), self.w.detach().clone()))
            return super().loss(users, pos, neg)

    model = Spy([1.0])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    MirrorGradientStep(1.0, 0.1, beta=1).step(model, opt, _batch(4.0), index=0)
    assert len(seen) == 2
    assert torch.equal(seen[0][0], seen[1][0])        # same triplets
    assert not torch.equal(seen[0][1], seen[1][1])    # at the updated parameters


@pytest.mark.parametrize("optimizer", [torch.optim.Adam, torch.optim.SGD, torch.optim.RMSprop, torch.optim.Adagrad])
def test_mirror_step_runs_with_every_optimizer(optimizer):
    model = Quadratic([1.0, -2.0])
    opt = optimizer(model.parameters(), lr=0.01)
    before = model.w.detach().clone()
    MirrorGradientStep().step(model, opt, _batch(), index=0)
    assert not torch.equal(before, model.w.detach())


def test_mirror_composes_with_sam_on_normal_batches():
    model = Quadratic([1.0])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    strategy = MirrorGradientStep(beta=2, base=SharpnessAwareStep(rho=0.5))
    strategy.step(model, opt, _batch(), index=1)
    # SAM: gradient at w + ρ·sign(w) = 1.5 → w = 1 − 0.1·1.5
    assert torch.allclose(model.w.detach(), torch.tensor([0.85]))


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(alpha1=0.1, alpha2=0.1), "alpha1 > alpha2"),
    (dict(alpha1=0.1, alpha2=0.2), "alpha1 > alpha2"),
    (dict(alpha2=0.0), "alpha2 > 0"),
    (dict(beta=0), "beta >= 1"),
    (dict(form="fancy"), "form"),
])
def test_invalid_hyper_parameters_rejected(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        MirrorGradientStep(**kwargs)
