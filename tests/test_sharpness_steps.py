"""ASAM and SGBD (sharpness-aware Mirror Gradient) steps, pinned by hand computation, and the
`--step` flag end to end."""

import json

import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.training import TrainConfig
from robustrec.training.strategies import (AdaptiveSharpnessAwareStep, MirrorGradientStep, PlainStep,
                                           SharpMirrorStep, SharpnessAwareStep)
from step_helpers import Quadratic, _batch


def test_asam_step_matches_hand_computation():
    lr, rho, eta = 0.1, 0.5, 0.01
    w = torch.tensor([2.0, -1.0])
    model = Quadratic(w.tolist())
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    AdaptiveSharpnessAwareStep(rho=rho, eta=eta).step(model, opt, _batch(), index=0)
    t = w.abs() + eta
    eps = rho * t * t * w / torch.linalg.norm(t * w)   # ε = ρ T²g/‖Tg‖, g = w
    expected = w - lr * (w + eps)                      # gradient at w + ε, applied from w
    assert torch.allclose(model.w.detach(), expected)


def test_asam_is_not_sam():
    a, b = Quadratic([2.0, -0.1]), Quadratic([2.0, -0.1])
    SharpnessAwareStep(0.5).step(a, torch.optim.SGD(a.parameters(), lr=0.1), _batch(), 0)
    AdaptiveSharpnessAwareStep(0.5).step(b, torch.optim.SGD(b.parameters(), lr=0.1), _batch(), 0)
    assert not torch.allclose(a.w, b.w)


@pytest.mark.parametrize("form", ["optimizer", "literal"])
def test_sgbd_with_rho_zero_is_mirror_gradient_exactly(form):
    torch.manual_seed(0)
    start = torch.randn(5).tolist()
    runs = []
    for strategy in (MirrorGradientStep(1.0, 0.2, 2, form), SharpMirrorStep(1.0, 0.2, 2, form, rho=0.0)):
        model = Quadratic(start)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        for index in range(6):
            strategy.step(model, opt, _batch(1.0 + index), index)
        runs.append(model.w.detach().clone())
    assert torch.equal(runs[0], runs[1])


def test_sgbd_mirror_step_takes_gradients_at_the_sam_point():
    lr, a1, a2, rho = 0.1, 1.0, 0.3, 0.2
    w = torch.tensor([2.0, -1.0])
    model = Quadratic(w.tolist())
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    SharpMirrorStep(a1, a2, beta=3, rho=rho).step(model, opt, _batch(), index=0)
    sharp = lambda v: v + rho * v / torch.linalg.norm(v)   # θ + ρ g/‖g‖ with g = θ
    w_mid = w - lr * a1 * sharp(w)
    w_end = w_mid + lr * a2 * sharp(w_mid)
    assert torch.allclose(model.w.detach(), w_end)
    # a non-mirror batch is the base (plain) step
    before = model.w.detach().clone()
    SharpMirrorStep(a1, a2, beta=3, rho=rho).step(model, opt, _batch(), index=1)
    assert torch.allclose(model.w.detach(), before - lr * before)


def test_config_builds_each_step():
    kinds = {"plain": PlainStep, "sam": SharpnessAwareStep, "asam": AdaptiveSharpnessAwareStep}
    for step, cls in kinds.items():
        config = TrainConfig(step=step, sam_rho=0.1 if step != "plain" else 0.0).validate()
        assert type(config.strategy()) is cls
    mg_asam = TrainConfig(step="asam", sam_rho=0.5, mg=True).validate().strategy()
    assert isinstance(mg_asam, MirrorGradientStep) and type(mg_asam.base) is AdaptiveSharpnessAwareStep
    assert type(TrainConfig(step="sgbd", mg=True, sam_rho=0.05).validate().strategy()) is SharpMirrorStep
    with pytest.raises(ConfigError, match="needs --rho > 0"):
        TrainConfig(step="asam", sam_rho=0.0).validate()


@pytest.mark.parametrize("args, name, label", [
    (["--step", "asam"], "bprmf-synthetic-asam", "ASAM"),
    (["--step", "asam", "--mg"], "bprmf-synthetic-asam-mg", "Mirror Gradient + ASAM"),
    (["--step", "sgbd", "--rho", "0.1"], "bprmf-synthetic-sgbd", "SGBD (sharpness-aware Mirror Gradient)"),
    (["--step", "mg"], "bprmf-synthetic-mg", "Mirror Gradient"),
])
def test_step_flag_end_to_end(capsys, tmp_path, synthetic_dir, args, name, label):
    code, out, err = run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q", "--threads", "1",
                             "--data-dir", synthetic_dir, "--checkpoint-dir", tmp_path, *args)
    assert code == 0, err
    assert f"{label} steps" in " ".join(out.split())
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["mg"] == ("mg" in name or "sgbd" in name)
    assert config["step"] == {"mg": "plain"}.get(args[1], args[1])
    if args[1] == "asam":
        assert config["sam_rho"] == 0.5  # ASAM's default ρ


@pytest.mark.parametrize("args, fragment", [
    (["--step", "bogus"], "unknown --step 'bogus'"),
    (["--step", "sam", "--rho", "-1"], "--rho must be >= 0"),
    (["--step", "asam", "--rho", "0"], "needs --rho > 0"),
])
def test_bad_steps_are_one_line_errors(capsys, tmp_path, synthetic_dir, args, fragment):
    assert_one_line_error(*run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q", "--data-dir",
                                   synthetic_dir, "--checkpoint-dir", tmp_path / "ck", *args), fragment)
    assert not (tmp_path / "ck").exists()
