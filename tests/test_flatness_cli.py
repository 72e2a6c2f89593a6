"""Sharpness numbers (`robustrec flatness`): random and filter-normalised loss rise, ρ-sharpness,
the top Hessian eigenvalue by power iteration; one implementation shared with the noise test."""

import json

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.flatness import (direction_loss_rise, hessian_top_eigenvalue, noise_sensitivity, random_direction,
                                training_loss, training_triplets)
from robustrec.models import build_model
from flatness_helpers import Quadratic


def test_power_iteration_finds_the_top_eigenvalue_of_a_known_hessian():
    result = hessian_top_eigenvalue(Quadratic(), (None,), iterations=200, tolerance=1e-7)
    assert result["value"] == pytest.approx(5.0, rel=1e-3) and result["method"] == "autograd"
    assert result["converged"] and result["autograd_vs_difference"] < 1e-2


def test_filter_normalised_rows_have_the_weights_row_norms(small_data):
    model = build_model("lightgcn", small_data, seed=0)
    directions = random_direction(model, seed=3, normalization="filter")
    for param, d in zip((p for p in model.parameters() if p.requires_grad), directions):
        assert torch.allclose(d.norm(dim=1), param.detach().norm(dim=1), rtol=1e-5)
    raw = random_direction(model, seed=3)
    assert not any(torch.allclose(a, b) for a, b in zip(raw, directions))


def test_noise_sensitivity_is_the_unnormalised_direction_rise(small_data):
    model = build_model("freedom", small_data, seed=0)
    sample = training_triplets(small_data, 512, seed=0)
    seeds = [4, 5, 6]
    assert np.array_equal(noise_sensitivity(model, sample, 1e-2, seeds),
                          direction_loss_rise(model, sample, 1e-2, seeds, "none"))
    assert np.array_equal(direction_loss_rise(model, sample, 0.0, seeds, "filter"), np.zeros(3))


def test_loss_of_a_stochastic_model_is_a_function_of_its_weights(small_data):
    """BM3's loss draws dropout views: with the loss RNG fixed, equal weights give equal losses and
    the global RNG is left as it was."""
    model = build_model("bm3", small_data, seed=0)
    sample = training_triplets(small_data, 256, seed=0)
    state = torch.random.get_rng_state()
    assert training_loss(model, sample) == training_loss(model, sample)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_cli_table_json_and_mg_ratios(bprmf_pair, tmp_path, capsys, monkeypatch):
    import robustrec.cli.flatness as flat_cli
    from rich.console import Console

    monkeypatch.setattr(flat_cli, "console", Console(width=80, force_terminal=False))
    out_json = tmp_path / "flat.json"
    code, out, err = run_cli(capsys, "flatness", *bprmf_pair, "--hessian", "--draws", "4", "--json", out_json)
    assert code == 0, err
    assert max(map(len, out.splitlines())) <= 80
    assert "bprmf-synthetic-mg / bprmf-synthetic (< 1: MG flatter)" in out and "λ max" in out
    payload = json.loads(out_json.read_text())
    names = [r["name"] for r in payload["runs"]]
    assert names == ["bprmf-synthetic", "bprmf-synthetic-mg"]
    for run in payload["runs"]:
        assert len(run["random_rise"]["values"]) == 4 and run["hessian"]["iterations"] >= 1
        assert np.isfinite(run["rho_sharpness"]) and run["rho"] > 0
    # deterministic: the same command gives the same numbers
    code, _, _ = run_cli(capsys, "flatness", *bprmf_pair, "--hessian", "--draws", "4", "--json", tmp_path / "again.json")
    again = json.loads((tmp_path / "again.json").read_text())
    for a, b in zip(payload["runs"], again["runs"]):
        assert a["random_rise"] == b["random_rise"] and a["hessian"]["value"] == b["hessian"]["value"]


@pytest.mark.parametrize("args, fragment", [
    (["--sigma", "-1"], "--sigma must be a finite number in [0, 100], got -1"),
    (["--draws", "1"], "--draws must be >= 2"),
    (["--rho", "-0.5"], "--rho must be a finite number in [0, 1000], got -0.5"),
    (["--hessian-iterations", "0"], "--hessian-iterations must be >= 1"),
    (["--json", "."], "is a folder"),
    (["--json", "nowhere/x.json"], "does not exist"),
])
def test_bad_input_is_one_line(bprmf_pair, tmp_path, capsys, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run_cli(capsys, "flatness", *bprmf_pair, *args), fragment)
    assert list(tmp_path.iterdir()) == []
