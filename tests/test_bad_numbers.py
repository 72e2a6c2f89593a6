"""Non-finite or absurd numbers (inf, 1e30) are refused before any work, one line, exit 2, nothing
written, on every command and in study files; no result file ever holds NaN or Infinity."""

import json

import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.limits import LIMITS, check_number, finite_json
from test_study import STUDY, write_study

PAIR = "<pair>"  # replaced by the two checkpoints of the bprmf_pair fixture
PERTURB = ["--report-dir", "out"]
TRAIN = ["train", "--model", "bprmf", "--epochs", "1", "--checkpoint-dir", "out", "--data-dir", "<data>"]

CASES = [
    (["landscape", PAIR, "--out-dir", "out"], "--span", []),
    (["flatness", PAIR, "--json", "out.json"], "--sigma", []),
    (["flatness", PAIR, "--json", "out.json"], "--step", []),
    (["flatness", PAIR, "--json", "out.json"], "--rho", []),
    (["perturb", "noise", PAIR, *PERTURB], "--sigma", []),
    (["perturb", "adversarial", PAIR, *PERTURB], "--eps", []),
    (["perturb", "caption", PAIR, *PERTURB], "--rate", []),
    (["perturb", "text", PAIR, *PERTURB, "--edit", "swap"], "--rate", []),
    (["perturb", "modality", PAIR, *PERTURB, "--missing", "text"], "--rate", []),
    (["perturb", "modality", PAIR, *PERTURB, "--noise", "text"], "--sigma", []),
    (["perturb", "image", PAIR, *PERTURB], "--rate", []),
    (["perturb", "image", PAIR, *PERTURB, "--edit", "blur"], "--radius", []),
    (["perturb", "image", PAIR, *PERTURB, "--edit", "crop"], "--crop-fraction", []),
    (["perturb", "image", PAIR, *PERTURB, "--edit", "color"], "--brightness", []),
    (["perturb", "image", PAIR, *PERTURB, "--edit", "occlude"], "--occlusion", []),
    (TRAIN, "--lr", []),
    (TRAIN, "--weight-decay", []),
    (TRAIN, "--alpha1", ["--mg"]),
    (TRAIN, "--alpha2", ["--mg"]),
    (TRAIN, "--alpha1", []),  # unused without --mg, but saved in the run's config.json
    (TRAIN, "--rho", ["--step", "sam"]),
    (TRAIN, "--adv-eps", ["--model", "vbpr", "--adversarial", "amr"]),
    (TRAIN, "--adv-reg", ["--model", "vbpr", "--adversarial", "amr"]),
]


@pytest.mark.parametrize("value, shown", [("inf", "inf"), ("1e30", "1e+30"), ("-inf", "-inf")])
@pytest.mark.parametrize("command, flag, extra", CASES, ids=[f"{c[0]}-{c[1] if c[0] == 'perturb' else ''}{f}"
                                                             for c, f, _ in CASES])
def test_non_finite_or_absurd_value_is_refused_before_any_work(bprmf_pair, synthetic_dir, tmp_path, capsys,
                                                               monkeypatch, command, flag, extra, value, shown):
    monkeypatch.chdir(tmp_path)
    args = []
    for arg in command:
        args += [str(p) for p in bprmf_pair] if arg == PAIR else [arg.replace("<data>", str(synthetic_dir))]
    line = assert_one_line_error(*run_cli(capsys, *args, *extra, f"{flag}={value}"), prefix=f"Error: {flag} must be")
    assert line.endswith(f"got {shown}"), line
    assert list(tmp_path.iterdir()) == [], list(tmp_path.iterdir())


@pytest.mark.parametrize("table, fragment", [
    ("[[stress]]\nkind = 'noise'\nsigma = [1e-2, inf]\n", "--sigma must be a finite number"),
    ("[[stress]]\nkind = 'noise'\nsigma = [1e30]\n", "--sigma must be a finite number in [0, 100], got 1e+30"),
    ("[[stress]]\nkind = 'adversarial'\neps = [1e30]\n", "--eps must be a finite number in [0, 100], got 1e+30"),
    ("[[stress]]\nkind = 'modality'\nnoise = 'text'\nsigma = [inf]\n", "--sigma must be a finite number"),
    ("[[stress]]\nkind = 'image'\nedit = 'blur'\nradius = inf\n", "radius must be a finite number, got inf"),
    ("[[stress]]\nkind = 'text'\nedit = 'swap'\nrate = [nan]\n", "--rate must be in [0, 1], got nan"),
    ("[strategy.mg]\nalpha1 = inf\n", "alpha1 must be a finite number"),
])
def test_study_with_non_finite_stress_values_is_refused_before_any_training(synthetic_dir, tmp_path, capsys,
                                                                            monkeypatch, table, fragment):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, synthetic_dir, STUDY + "\n" + table)
    assert_one_line_error(*run_cli(capsys, "study", "run", path), fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]


def test_study_train_table_with_inf_is_refused(synthetic_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, synthetic_dir, STUDY.replace("batch_size = 512", "batch_size = 512\nlr = inf"))
    assert_one_line_error(*run_cli(capsys, "study", "run", path), "lr must be a finite number")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]


def test_every_limit_states_its_range_and_takes_its_bounds():
    for option, limit in LIMITS.items():
        assert limit.high < 1e6 and check_number(limit.high, "--x", option) == limit.high
        with pytest.raises(ConfigError, match=rf"--x must be a finite number in [\[(]{limit.low:g}, {limit.high:g}\]"):
            check_number(limit.high * 2 + 1, "--x", option)
        with pytest.raises(ConfigError, match="got nan"):
            check_number(float("nan"), "--x", option)


def test_result_files_never_hold_nan_or_infinity(bprmf_pair, tmp_path, capsys, monkeypatch):
    """A loss that overflows is a clear one-line error, not a landscape file with an `Infinity` token."""
    import robustrec.flatness.landscape as landscape

    real = landscape.loss_surface

    def overflowing(*args, **kwargs):
        result = real(*args, **kwargs)
        result["surface"][0][0] = float("inf")
        return result

    monkeypatch.setattr(landscape, "loss_surface", overflowing)
    assert_one_line_error(*run_cli(capsys, "landscape", bprmf_pair[0], "--grid", "3", "--triplets", "64", "-q",
                                   "--out-dir", tmp_path / "land"), "surface[0][0] = inf", "lower --span")
    assert not (tmp_path / "land").exists() or list((tmp_path / "land").iterdir()) == []
    with pytest.raises(ConfigError, match=r"runs\[1\]\.loss = nan"):
        finite_json({"runs": [{"loss": 1.0}, {"loss": float("nan")}]}, "a sharpness number", "lower --sigma")
    assert json.loads(finite_json({"a": [1.5]}, "x", "y")) == {"a": [1.5]}


def test_model_parameter_inf_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run_cli(capsys, "train", "--model", "bprmf", "--data-dir", tmp_path / "nodata",
                                   "--dataset", "nosuch", "--checkpoint-dir", "out", "-p", "reg_weight=inf"),
                          "bprmf.reg_weight must be a finite number, got 'inf'")
    assert list(tmp_path.iterdir()) == []


def test_study_grid_with_inf_is_refused_before_any_training(synthetic_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, synthetic_dir, STUDY.replace("reg_weight = [1e-4, 1e-1]", "reg_weight = [1e-4, inf]"))
    assert_one_line_error(*run_cli(capsys, "study", "run", path), "bprmf.reg_weight must be a finite number, got 'inf'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]
