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
