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


def test_bench_device_times_the_cpu_and_says_cuda_is_absent(capsys, tmp_path, synthetic_dir, monkeypatch):
    import json

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    bench = _load("bench_device")
    out_json = tmp_path / "device.json"
    assert bench.main(["--model", "lightgcn", "--dataset", "synthetic", "--data-dir", str(synthetic_dir),
                       "--epochs", "2", "--batch-size", "512", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "CUDA is absent on this machine" in out and "CPU / CUDA" not in out
    runs = json.loads(out_json.read_text())["runs"]
    assert [r["device"] for r in runs] == ["cpu"] and len(runs[0]["epoch_s"]) == 2
    assert runs[0]["steady_epoch_s"] == runs[0]["epoch_s"][1] and runs[0]["test_ranking_s"] > 0


def test_bench_device_prints_the_cpu_over_cuda_ratio():
    bench = _load("bench_device")
    row = {"setup_s": 1.0, "steady_valid_ranking_s": 1.0, "valid_recall@20": 0.1}
    lines = bench.render([{**row, "device": "cpu", "steady_epoch_s": 6.0, "test_ranking_s": 2.0},
                          {**row, "device": "cuda:0", "steady_epoch_s": 0.5, "test_ranking_s": 0.25}], None)
    assert lines[-1] == "CPU / CUDA: epoch ×12.0, full ranking ×8.0"


def test_bench_device_rejects_an_unknown_model(capsys):
    bench = _load("bench_device")
    assert bench.main(["--model", "nosuchmodel"]) == 2
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err

def test_bench_steps_modes_always_include_plain_and_reject_unknown_ones(capsys):
    bench = _load("bench_steps")
    assert bench.parse_args(["--modes", "sam,amr"]).modes == ["plain", "sam", "amr"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--modes", "sam,nosuch"])
    assert "unknown mode(s) nosuch" in capsys.readouterr().err
