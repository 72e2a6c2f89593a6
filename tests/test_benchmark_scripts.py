"""The benchmark scripts' argument handling (they are run by hand; their timings are not tested)."""

import importlib.util
import sys
from pathlib import Path

import pytest

from robustrec.errors import ConfigError

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


def test_bench_scale_rejects_unknown_presets_and_models(capsys):
    bench = _load("bench_scale")
    assert bench.main(["--presets", "baby,huge"]) == 2
    assert "--presets must name some of baby" in capsys.readouterr().err
    assert bench.main(["--presets", "baby", "--models", "nosuchmodel"]) == 2
    with pytest.raises(SystemExit):
        bench.main(["--presets", "baby", "--param", "no-equals-sign"])
    assert "--param takes KEY=VALUE" in capsys.readouterr().err


def test_bench_scale_times_every_phase_and_fits_log_log_slopes(tmp_path, synthetic_dir, monkeypatch):
    import json

    import torch

    monkeypatch.setenv("ROBUSTREC_CACHE", str(tmp_path))
    bench = _load("bench_scale")
    threads = torch.get_num_threads()
    try:
        row = bench.run_worker(bench.parse_args(["--repeats", "2", "--threads", "1", "--param", "n_layers=1"]),
                               "lightgcn", str(synthetic_dir), "synthetic")
        with pytest.raises(ConfigError, match="nosuch"):  # --param reaches the model's typed Params
            bench.run_worker(bench.parse_args(["--param", "nosuch=1"]), "lightgcn", str(synthetic_dir), "synthetic")
    finally:
        torch.set_num_threads(threads)
    assert row["params"] == {"n_layers": "1"}
    assert set(row["seconds"]) == set(row["cpu_seconds"]) == set(row["peak_mib"]) == set(bench.PHASES)
    assert row["seconds"]["epoch"] > 0 and row["peak_mib"]["noise"] > 0 and row["report_mib"] > 0
    assert row["interactions"] > row["train"] > 0
    # a made-up power law: time ∝ n^1.5, memory ∝ n
    rows = [{**row, "interactions": n, "cpu_seconds": {p: n ** 1.5 for p in bench.PHASES},
             "peak_mib": {p: n / 1000 for p in bench.PHASES}} for n in (10**4, 10**5, 10**6)]
    fitted = bench.slopes(rows)["lightgcn"]
    assert fitted["epoch"] == pytest.approx(1.5) and fitted["peak_rss"] == pytest.approx(1.0)
    saved = tmp_path / "rows.txt"
    saved.write_text("\n".join(f"done {r['dataset']} lightgcn: {json.dumps(r)}" for r in rows))
    assert bench.main(["--from-rows", str(saved), "--plot", str(tmp_path / "scale.svg"),
                       "--json", str(tmp_path / "scale.json")]) == 0
    assert (tmp_path / "scale.svg").stat().st_size > 0
    assert json.loads((tmp_path / "scale.json").read_text())["slopes"]["lightgcn"]["noise"] == pytest.approx(1.5)
