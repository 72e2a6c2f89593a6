"""CLI behaviour as a user sees it: outputs, exit codes, one-line errors, nothing half-written."""

import json
import subprocess
import sys

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli


def test_help_lists_commands(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0
    for command in ("train", "evaluate", "models"):
        assert command in out


def test_help_does_not_import_torch():
    code = "import sys; from robustrec.cli import app; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_models_lists_registry(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "lightgcn" in out and "bprmf" in out


def test_train_then_evaluate_reproduces_metrics(capsys, tmp_path, synthetic_dir):
    args = ["train", "--model", "bprmf", "--epochs", "3", "--checkpoint-dir", tmp_path, "-q",
            "--batch-size", "1024", "--data-dir", synthetic_dir]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    run = tmp_path / "bprmf-synthetic"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(json.loads((run / "history.json").read_text())) == 3
    code, out, err = run_cli(capsys, "evaluate", run)
    assert code == 0, err
    assert "match the stored ones" in out
    assert f"{metrics['test']['recall@5']:.4f}" in out


def test_mg_run_name_and_config(capsys, tmp_path, synthetic_dir):
    code, _, err = run_cli(capsys, "train", "--model", "bprmf", "--mg", "--alpha2", "0.2", "--beta", "2",
                           "--epochs", "1", "--checkpoint-dir", tmp_path, "-q", "--data-dir", synthetic_dir)
    assert code == 0, err
    config = json.loads((tmp_path / "bprmf-synthetic-mg" / "config.json").read_text())
    assert (config["mg"], config["alpha2"], config["beta"]) == (True, 0.2, 2)


def _inter(tmp_path, text, name="toy"):
    (tmp_path / name).mkdir()
    (tmp_path / name / f"{name}.inter").write_text(text)
    return tmp_path


@pytest.mark.parametrize("extra, fragment", [
    (["--model", "nope"], "unknown model"),
    (["--optimizer", "lbfgs"], "unknown optimizer"),
    (["--mg", "--alpha1", "0.1", "--alpha2", "0.2"], "alpha1 > alpha2"),
    (["--mg", "--beta", "0"], "beta >= 1"),
    (["--mg", "--mg-form", "weird"], "form"),
    (["--epochs", "0"], "epochs"),
    (["--lr", "-1"], "lr"),
    (["--dataset", "nope", "--data-dir", "/definitely/missing"], "does not exist"),
    (["--dataset", "nope"], "nope.inter not found"),
    (["--param", "n_layers"], "key=value"),
    (["--param", "bogus=1"], "unknown lightgcn parameter"),
])
def test_bad_input_is_one_line_error_and_writes_nothing(capsys, tmp_path, synthetic_dir, extra, fragment):
    ckpt = tmp_path / "ckpt"
    code, out, err = run_cli(capsys, "train", "--epochs", "1", "--checkpoint-dir", ckpt,
                             "--data-dir", synthetic_dir, *extra)
    assert_one_line_error(code, out, err, fragment)
    assert not ckpt.exists()


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("userID\titemID\n0\t1\n", "missing column"),
    ("userID\titemID\tx_label\n0\t-4\t0\n", "negative"),
])
def test_bad_data_files_via_cli(capsys, tmp_path, text, fragment):
    data_dir = _inter(tmp_path, text)
    code, _, err = run_cli(capsys, "train", "--dataset", "toy", "--data-dir", data_dir,
                           "--checkpoint-dir", tmp_path / "ckpt")
    assert code == 2 and fragment in err and not (tmp_path / "ckpt").exists()


def test_multimodal_model_without_features_names_missing_file(capsys, tmp_path, baby_dir):
    import robustrec.models as models

    multimodal = [n for n, c in models.available_models().items() if c.multimodal]
    if not multimodal:
        pytest.fail("no multimodal model registered")
    code, out, err = run_cli(capsys, "train", "--model", multimodal[0], "--dataset", "baby",
                             "--data-dir", baby_dir, "--checkpoint-dir", tmp_path / "c")
    assert_one_line_error(code, out, err, "_feat.npy", "needs at least one item modality")


def test_feature_rows_mismatch_via_cli(capsys, tmp_path):
    data_dir = _inter(tmp_path, "userID\titemID\tx_label\n0\t0\t0\n0\t1\t1\n1\t1\t0\n1\t0\t2\n")
    np.save(data_dir / "toy" / "text_feat.npy", np.zeros((5, 3), np.float32))
    code, _, err = run_cli(capsys, "train", "--model", "vbpr", "--dataset", "toy", "--data-dir", data_dir,
                           "--checkpoint-dir", tmp_path / "c")
    assert code == 2 and "5 rows but the dataset has 2 items" in err


def test_existing_run_is_not_overwritten(capsys, tmp_path, synthetic_dir):
    args = ["train", "--model", "bprmf", "--epochs", "1", "--checkpoint-dir", tmp_path, "-q",
            "--data-dir", synthetic_dir]
    assert run_cli(capsys, *args)[0] == 0
    before = (tmp_path / "bprmf-synthetic" / "model.safetensors").read_bytes()
    code, _, err = run_cli(capsys, *args, "--seed", "5")
    assert code == 2 and "already exists" in err
    assert (tmp_path / "bprmf-synthetic" / "model.safetensors").read_bytes() == before
    assert run_cli(capsys, *args, "--seed", "5", "--overwrite")[0] == 0
    assert (tmp_path / "bprmf-synthetic" / "model.safetensors").read_bytes() != before


def test_evaluate_bad_checkpoints(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "missing")
    assert code == 2 and "not found" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "empty")
    assert code == 2 and "not a robustrec checkpoint" in err


def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "robustrec", "train", "--optimizer", "nope",
                           "--checkpoint-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Error: unknown optimizer 'nope'; choose one of adam, sgd, rmsprop, adagrad"
    assert list(tmp_path.iterdir()) == []  # rejected before any data or checkpoint is written


@pytest.mark.parametrize("args, fragment", [
    (["captions", "generate", "--dataset", "nope"], "dataset folder not found"),
    (["compare", __file__], "not a robustrec report"),
    (["perturb", "noise", "/nonexistent-run"], "not found"),
])
def test_every_command_group_exits_non_zero_on_bad_input(capsys, tmp_path, args, fragment):
    if args[0] == "captions":
        args = args + ["--data-dir", str(tmp_path)]
    assert_one_line_error(*run_cli(capsys, *args), fragment)
