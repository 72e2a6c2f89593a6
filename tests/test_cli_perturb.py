"""``robustrec perturb noise`` and ``robustrec compare`` through the real entry point."""

import json
import shutil

import pytest

from cli_helpers import assert_one_line_error, cli_code, run_cli
from robustrec.checkpoints import save_run
from robustrec.data import load_dataset
from robustrec.models import build_model
from robustrec.training import TrainConfig, Trainer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, synthetic_dir):
    """A baseline and its MG twin on the built-in synthetic data, one epoch each."""
    root = tmp_path_factory.mktemp("ckpt")
    data = load_dataset("synthetic", synthetic_dir)
    paths = []
    for mg in (False, True):
        config = TrainConfig(epochs=1, batch_size=1024, lr=0.01, mg=mg, data_dir=str(synthetic_dir))
        model = build_model("lightgcn", data)
        paths.append(save_run(root / f"lightgcn-synthetic{'-mg' if mg else ''}", model, config, data,
                              Trainer(config).fit(model, data)))
    return paths


@pytest.fixture(scope="module")
def report(checkpoints, tmp_path_factory):
    """One report made by the CLI, shared by the compare tests."""
    out = tmp_path_factory.mktemp("reports")
    assert cli_code("perturb", "noise", *checkpoints, "--sigma", "0,0.05", "--repeats", "2", "--report-dir", out,
                    "--csv", "--plot", "-q") == 0
    (path,) = out.glob("*.json")
    return path


def test_noise_writes_report_csv_and_plot(report):
    assert {p.suffix for p in report.parent.iterdir()} == {".json", ".csv", ".png"}
    content = json.loads(report.read_text())
    assert content["settings"]["levels"] == [0.0, 0.05] and content["settings"]["repeats"] == 2
    assert content["settings"]["target"] == "all"
    base = content["checkpoints"][0]
    assert all(t["metrics"] == base["clean"] for t in base["levels"][0]["trials"])
    assert content["mg_gains"]


def test_noise_prints_tables(checkpoints, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, "perturb", "noise", *checkpoints, "--sigma", "0.01",
                           "--repeats", "1", "--no-flatness", "--report-dir", tmp_path, "-q", "--metric", "ndcg",
                           "--k", "10")
    assert code == 0
    assert "NDCG@10" in out and "Mirror Gradient gain" in out and "lightgcn-synthetic-mg" in out
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_compare_renders_reports(report, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli(capsys, "compare", report, report)
    assert code == 0 and "REC@5" in out and "Mirror Gradient gain" in out


def test_compare_fits_80_columns(report, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "compare", report)
    assert code == 0 and "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert "lightgcn-synthetic → lightgcn-synthetic-mg" in out and "Mirror Gradient gain" in out


def _assert_one_line_error(result, fragment, tmp_path):
    assert_one_line_error(*result, fragment)
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("flags, fragment", [
    (["--sigma", "-1e-3"], "--sigma must be"),
    (["--sigma", "1e-3,abc"], "--sigma must be a number"),
    (["--repeats", "0"], "--repeats must be >= 1"),
    (["--target", "users"], "--target must be"),
    (["--metric", "hits"], "--metric must be"),
    (["--k", "7"], "--k must be"),
])
def test_bad_flags_are_one_line_errors(checkpoints, tmp_path, capsys, monkeypatch, flags, fragment):
    result = run_cli(capsys, "perturb", "noise", checkpoints[0], *flags, "--report-dir", tmp_path, "-q")
    _assert_one_line_error(result, fragment, tmp_path)


def test_missing_and_corrupt_checkpoints(checkpoints, tmp_path, capsys, monkeypatch):
    result = run_cli(capsys, "perturb", "noise", tmp_path / "nope", "--report-dir", tmp_path, "-q")
    _assert_one_line_error(result, "not found", tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(checkpoints[0], broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    result = run_cli(capsys, "perturb", "noise", broken, "--report-dir", tmp_path, "-q")
    _assert_one_line_error(result, "corrupt", tmp_path)


def test_mixed_datasets_are_refused(checkpoints, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other-data"
    shutil.copytree(checkpoints[1], other)
    meta = json.loads((other / "data.json").read_text())
    meta.update(name="elsewhere", fingerprint="0123456789abcdef", interactions_fingerprint="0123456789abcdef")
    (other / "data.json").write_text(json.dumps(meta))
    result = run_cli(capsys, "perturb", "noise", checkpoints[0], other, "--report-dir", tmp_path, "-q")
    _assert_one_line_error(result, "different data", tmp_path)


def test_compare_errors(report, tmp_path, capsys, monkeypatch):
    not_ours = tmp_path / "x.txt"
    not_ours.write_text('{"results": []}')
    _assert_one_line_error(run_cli(capsys, "compare", not_ours), "not a robustrec report", tmp_path)
    changed = json.loads(report.read_text())
    changed["dataset"].update(fingerprint="ffffffffffffffff", interactions_fingerprint="ffffffffffffffff")
    elsewhere = tmp_path / "elsewhere.report"
    elsewhere.write_text(json.dumps(changed))
    assert_one_line_error(*run_cli(capsys, "compare", report, elsewhere), "different data")


def test_compare_unknown_metric_or_k(report, tmp_path, capsys, monkeypatch):
    _assert_one_line_error(run_cli(capsys, "compare", report, "--metric", "hits"), "--metric", tmp_path)
    _assert_one_line_error(run_cli(capsys, "compare", report, "--k", "7"), "recall@7", tmp_path)
