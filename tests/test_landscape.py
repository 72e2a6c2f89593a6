"""`robustrec landscape`: the loss on a grid of two random directions (Li et al. 2018), the MG
paper's Figure 3 setting, data saved to redraw, PNG, bad input."""

import json

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.flatness import random_direction, training_loss, training_triplets
from robustrec.flatness.landscape import loss_surface
from robustrec.models import build_model
from flatness_helpers import Quadratic


def test_surface_of_a_known_quadratic_is_exact():
    model = Quadratic()
    before = model.theta.detach().clone()
    result = loss_surface(model, (None,), grid=5, span=2.0, normalization="none", seed=1)
    d1, d2 = (random_direction(model, s, "none")[0] for s in (2, 3))
    theta, A = before.double(), model.A.double()
    axis = np.linspace(-2, 2, 5)
    for i, b in enumerate(axis):
        for j, a in enumerate(axis):
            point = theta + a * d1.double() + b * d2.double()
            assert result["surface"][i][j] == pytest.approx(float(0.5 * point @ A @ point), rel=1e-4)
    assert result["slice"] == pytest.approx(result["surface"][2], rel=1e-6)  # b = 0 is the middle row
    assert result["center_loss"] == pytest.approx(float(0.5 * theta @ A @ theta), rel=1e-5)
    assert torch.equal(model.theta.detach(), before)  # the model is not modified


def test_center_of_a_real_model_is_its_training_loss(small_data):
    model = build_model("lightgcn", small_data, seed=0)
    sample = training_triplets(small_data, 256, seed=0)
    result = loss_surface(model, sample, grid=3, span=0.5)
    assert result["surface"][1][1] == pytest.approx(training_loss(model, sample), rel=1e-6)
    assert result["normalization"] == "filter" and result["parameters"] > 0


def test_cli_writes_data_and_png_and_the_paper_setting(bprmf_pair, tmp_path, capsys):
    out = tmp_path / "land"
    code, stdout, err = run_cli(capsys, "landscape", *bprmf_pair, "--grid", "5", "--plot", "--out-dir", out, "-q")
    assert code == 0, err
    for run in bprmf_pair:
        data = json.loads((out / f"landscape-{run.name}.json").read_text())
        assert np.asarray(data["surface"]).shape == (5, 5) and len(data["slice"]) == 5
        assert data["run"] == run.name and data["normalization"] == "filter"
        assert (out / f"landscape-{run.name}.png").read_bytes()[:4] == b"\x89PNG"
    code, _, err = run_cli(capsys, "landscape", bprmf_pair[0], "--paper", "--out-dir", tmp_path / "paper", "-q",
                           "--triplets", "256")
    assert code == 0, err
    data = json.loads((tmp_path / "paper" / f"landscape-{bprmf_pair[0].name}.json").read_text())
    assert (data["grid"], data["span"], data["normalization"]) == (20, 100.0, "none")
    assert data["axis"][0] == -100.0 and data["axis"][-1] == 100.0


@pytest.mark.parametrize("args, fragment", [
    (["--grid", "2"], "--grid must be between 3 and 101"),
    (["--grid", "500"], "--grid must be between 3 and 101"),
    (["--span", "0"], "--span must be a finite number in (0, 1000], got 0"),
    (["--span", "-1"], "--span must be a finite number in (0, 1000], got -1"),
])
def test_bad_input_is_one_line(bprmf_pair, tmp_path, capsys, args, fragment):
    assert_one_line_error(*run_cli(capsys, "landscape", bprmf_pair[0], *args, "--out-dir", tmp_path / "land"), fragment)
    assert not (tmp_path / "land").exists()
