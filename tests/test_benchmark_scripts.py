"""The benchmark scripts' argument handling (they are run by hand; their timings are not tested)."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_bench_training_rejects_unknown_model(capsys):
    bench = _load("bench_training")
    assert bench.main(["--models", "lightgcn,nosuchmodel"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err


def test_bench_training_accepts_every_registered_model():
    from robustrec.models import available_models

    bench = _load("bench_training")
    assert bench.resolve_models(",".join(available_models())) == list(available_models())


def test_quality_grid_flags_replace_the_default_grid():
    quality = _load("quality_general")
    args = quality.parse_args(["--grid", "layergcn.reg_weight=1e-3,1e-4", "--mg-alpha2", "0.1,0.2"])
    assert args.grids["layergcn"] == {"reg_weight": ["1e-3", "1e-4"]}
    assert len(quality.mode_points(args, "layergcn", "mg")) == 4
    assert len(quality.mode_points(args, "layergcn", "plain")) == 2
    assert len(quality.mode_points(args, "selfcf", "plain")) == len(quality.DEFAULT_GRIDS["selfcf"]["dropout"])


def test_quality_bad_grid_flag_is_a_usage_error():
    quality = _load("quality_general")
    with pytest.raises(SystemExit):
        quality.parse_args(["--grid", "layergcn=1"])


def test_quality_mg_from_plain_reuses_the_chosen_point_and_needs_both_modes():
    quality = _load("quality_general")
    args = quality.parse_args(["--mg-params", "from-plain", "--mg-alpha2", "0.1,0.2"])
    chosen = {"dropout": "0.1", "reg_weight": "1e-3"}
    assert quality.mode_points(args, "layergcn", "mg", chosen) == [(chosen, 0.1), (chosen, 0.2)]
    with pytest.raises(SystemExit):
        quality.parse_args(["--mg-params", "from-plain", "--modes", "mg"])
