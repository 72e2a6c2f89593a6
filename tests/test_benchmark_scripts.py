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


def test_quality_summary_from_a_runs_log_picks_the_grid_point_on_validation(tmp_path):
    import json

    quality = _load("quality_general")

    def run(params, alpha2, seed, valid, rec5):
        test = {"recall@5": rec5, "ndcg@5": rec5 / 2, "recall@20": rec5 * 2}
        return {"model": "selfcf", "params": params, "alpha2": alpha2, "seed": seed, "best_epoch": 3,
                "epochs": 5, "valid_recall@20": valid, "test": test}

    a, b = {"dropout": "0.3"}, {"dropout": "0.5"}
    runs = [run(a, None, 0, 0.10, 0.50), run(b, None, 0, 0.20, 0.01),  # b wins on valid despite test
            run(b, None, 1, 0.19, 0.03), run(a, None, 1, 0.30, 0.90),  # a's seed-1 run is no repeat
            run(b, 0.1, 0, 0.21, 0.02), run(b, 0.1, 1, 0.22, 0.04)]
    log = tmp_path / "runs.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in runs) + "\n")
    plain, mg = quality.summaries_from_log(str(log), [0, 1, 2])
    assert (plain["mode"], plain["params"], plain["seeds"]) == ("plain", b, [0, 1])
    assert plain["test_recall@5_mean"] == pytest.approx(0.02)
    assert (mg["mode"], mg["alpha2"], mg["seeds"]) == ("mg", 0.1, [0, 1])
    assert "| selfcf | mg | dropout=0.5, α2=0.1 |" in quality.render([plain, mg])


def test_bench_steps_modes_always_include_plain_and_reject_unknown_ones(capsys):
    bench = _load("bench_steps")
    assert bench.parse_args(["--modes", "sam,amr"]).modes == ["plain", "sam", "amr"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--modes", "sam,nosuch"])
    assert "unknown mode(s) nosuch" in capsys.readouterr().err
