"""Studies you can trust after an edit: a retrained run redoes exactly the stress cells that read
it, a report never combines new clean metrics with drops measured on old weights, weights are
checked by their SHA-256 on every load, and the whole study is validated before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.checkpoints import read_run
from robustrec.files import file_sha256
from robustrec.errors import CheckpointError, ConfigError
from robustrec.studies.execute import InlineExecutor, run_study
from robustrec.studies.plan import read_manifest
from robustrec.studies.spec import load_study

STUDY = """
name = "trust"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf", "vbpr"]
strategies = ["plain"]
seeds = [0]

[train]
epochs = 1
patience = 1
batch_size = 512
{extra}

[[stress]]
kind = "noise"
sigma = [1e-2]
repeats = 2
flatness = false

[[stress]]
kind = "modality"
missing = "text"
rate = [0.5]
repeats = 2
models = ["vbpr"]
"""


def _write(folder: Path, data_dir, extra: str = "", text: str = STUDY) -> Path:
    path = folder / "study.toml"
    path.write_text(text.replace("{data}", str(data_dir)).replace("{extra}", extra))
    return path


def _stress_reports(out: Path) -> dict[str, list[dict]]:
    body = read_manifest(out)
    return {cid: [json.loads((out / p).read_text()) for p in cell["result"]["reports"]]
            for cid, cell in body["cells"].items() if cell["kind"] == "stress" and cell["state"] == "done"}


def _assert_reports_match_runs(out: Path) -> None:
    body = read_manifest(out)
    for cid, reports in _stress_reports(out).items():
        runs = {Path(p).name: p for p in body["cells"][cid]["spec"]["checkpoints"]}
        for report in reports:
            for entry in report["checkpoints"]:
                assert entry["weights_sha256"] == file_sha256(out / runs[entry["name"]] / "model.safetensors"), \
                    f"{cid} measured other weights than {runs[entry['name']]} holds"


@pytest.fixture(scope="module")
def edited(tmp_path_factory, synthetic_dir):
    """The study run, then [train.bprmf] epochs edited and run again on the same folder."""
    folder = tmp_path_factory.mktemp("trust")
    out = folder / "out"
    run_study(load_study(_write(folder, synthetic_dir)), out, InlineExecutor(threads=1))
    before = read_manifest(out)
    reports_before = _stress_reports(out)
    run_study(load_study(_write(folder, synthetic_dir, "[train.bprmf]\nepochs = 2")), out, InlineExecutor(threads=1))
    return out, before, reports_before


def test_edit_then_rerun_every_stress_report_matches_its_run_folders(edited):
    out, before, _ = edited
    after = read_manifest(out)
    assert all(cell["state"] == "done" for cell in after["cells"].values())
    _assert_reports_match_runs(out)
    bprmf = [cid for cid in after["cells"] if cid.startswith("train/synthetic/bprmf")]
    assert bprmf and all(after["cells"][cid]["result"]["epochs"] == 2 for cid in bprmf)


def test_a_redone_training_redoes_exactly_the_stress_cells_that_read_it(edited):
    out, before, reports_before = edited
    after = read_manifest(out)
    noise, modality = "stress/synthetic/s0/1-noise", "stress/synthetic/s0/2-modality"
    # the noise test reads bprmf's retrained run: measured again, on the new weights
    assert after["cells"][noise]["spec"]["inputs"] != before["cells"][noise]["spec"]["inputs"]
    new_noise = _stress_reports(out)[noise][0]
    assert new_noise["created"] != reports_before[noise][0]["created"] or \
        new_noise["checkpoints"][0]["weights_sha256"] != reports_before[noise][0]["checkpoints"][0]["weights_sha256"]
    bprmf_entry = next(e for e in new_noise["checkpoints"] if e["model"] == "bprmf")
    old_entry = next(e for e in reports_before[noise][0]["checkpoints"] if e["model"] == "bprmf")
    assert bprmf_entry["weights_sha256"] != old_entry["weights_sha256"]
    # the modality test reads vbpr only, which did not change: kept as it was
    assert after["cells"][modality] == before["cells"][modality]
    # vbpr's training was not redone either
    vbpr = "train/synthetic/vbpr/plain/g0/s0"
    assert after["cells"][vbpr]["result"]["identity"] == before["cells"][vbpr]["result"]["identity"]


def test_study_report_refuses_drops_measured_on_other_weights(edited, tmp_path, capsys):
    import shutil

    out, _, _ = edited
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, _, _ = run_cli(capsys, "study", "report", copy)
    assert code == 0
    # a run folder retrained behind the study's back (weights and their recorded digest change)
    run = copy / "runs" / "synthetic" / "bprmf-plain-g0-s0"
    from safetensors.torch import load_file, save_file

    state = load_file(str(run / "model.safetensors"))
    save_file({k: v * 1.5 if v.is_floating_point() else v for k, v in state.items()}, str(run / "model.safetensors"))
    meta = json.loads((run / "meta.json").read_text())
    meta["weights_sha256"] = file_sha256(run / "model.safetensors")
    (run / "meta.json").write_text(json.dumps(meta))
    line = assert_one_line_error(*run_cli(capsys, "study", "report", copy), "stale", "stress/synthetic/s0/1-noise")
    assert "stress/synthetic/s0/2-modality" not in line  # it read vbpr only
    # running the study again redoes the stale cell; then the report is accepted
    run_study(load_study(out.parent / "study.toml"), copy, InlineExecutor(threads=1))
    _assert_reports_match_runs(copy)
    code, _, _ = run_cli(capsys, "study", "report", copy)
    assert code == 0


def test_weights_changed_on_disk_are_refused_on_load(bprmf_pair, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(bprmf_pair[0], run)
    assert read_run(run).meta["weights_sha256"] == file_sha256(run / "model.safetensors")
    blob = bytearray((run / "model.safetensors").read_bytes())
    blob[-3] ^= 0x01  # one low mantissa bit of the last float: still finite, still loads
    (run / "model.safetensors").write_bytes(bytes(blob))
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", run, "--sigma", "0.01", "--repeats", "1",
                                   "--report-dir", tmp_path / "reports", "-q"), "not the file this run saved")
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").iterdir())
    from robustrec.checkpoints import load_model

    with pytest.raises(CheckpointError, match="changed or damaged"):
        load_model(run)


# --- the whole study validated before any work -------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (("seeds = [0]", "seeds = [-1]"), "seeds must lie between 0 and 2^63-1"),
    (("seeds = [0]", f"seeds = [{2**63}]"), "seeds must lie between 0 and 2^63-1"),
    (('datasets = ["synthetic"]', 'datasets = ["nosuch"]'), "unknown dataset 'nosuch'"),
    (('missing = "text"', 'missing = "audio"'), "needs the audio modality, which dataset synthetic lacks"),
    (('name = "trust"', 'name = "../../x"'), "name (the study folder's default name) must be a plain folder name"),
    (('name = "trust"', 'name = "/tmp/abs"'), "must be a plain folder name"),
    (('datasets = ["synthetic"]', 'datasets = ["../synthetic"]'), "dataset name must be a plain folder name"),
    (('strategies = ["plain"]', 'strategies = ["plain", "../../../x"]'), "strategy name must be a plain folder name"),
    (("{extra}", '[strategy."../../../x"]\nmg = true'), "strategy name must be a plain folder name"),
    (("[train]", "[train.nosuch]\nepochs = 1\n[train]"), "[train.nosuch] names a model that is not in models"),
    (("{extra}", "[train.bprmf]\nepochs = 2\n[grid.bprmf]\nepochs = [3]"), "set in both [train.bprmf] and [grid.bprmf]"),
])
def test_bad_study_is_one_line_before_any_work(tmp_path, synthetic_dir, capsys, monkeypatch, change, message):
    old, new = change
    text = STUDY.replace(old, new, 1)
    assert text != STUDY
    path = _write(tmp_path, synthetic_dir, text=text)
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in (["study", "check", path], ["study", "run", path, "-q"]):
        assert_one_line_error(*run_cli(capsys, *command), message)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, nothing trained


def test_per_model_train_settings_apply_to_that_model_only(tmp_path, synthetic_dir):
    study = load_study(_write(tmp_path, synthetic_dir, "[train.vbpr]\nepochs = 3\nlr = 0.01"))
    assert study.train_config("synthetic", "vbpr", "plain", {}, 0).epochs == 3
    assert study.train_config("synthetic", "vbpr", "plain", {}, 0).lr == 0.01
    assert study.train_config("synthetic", "bprmf", "plain", {}, 0).epochs == 1
    with pytest.raises(ConfigError, match=r"unknown key\(s\) nosuch in \[train.vbpr\]"):
        load_study(_write(tmp_path, synthetic_dir, "[train.vbpr]\nnosuch = 3"))


def test_study_check_prints_the_plan_and_a_time_estimate_from_finished_cells(edited, tmp_path, synthetic_dir,
                                                                            capsys):
    out, _, _ = edited
    path = _write(tmp_path, synthetic_dir, "[train.bprmf]\nepochs = 2")
    code, text, _ = run_cli(capsys, "study", "check", path, "--out", tmp_path / "none")
    assert code == 0
    # bprmf and vbpr, plus pop (the default baseline), on one seed
    assert "3 training cells" in " ".join(text.split()) and "2 stress cells" in " ".join(text.split())
    assert "no estimate yet" in " ".join(text.split())
    # noise: 2 runs × (1 clean + 1 level × 2 repeats); modality: vbpr × (1 + 2)
    words = " ".join(text.split())  # lines wrap at the console's width
    assert "6 evaluations per cell" in words and "3 evaluations per cell" in words
    code, text, _ = run_cli(capsys, "study", "check", path, "--out", out)
    assert code == 0 and "time left: about" in text
    assert not (tmp_path / "none").exists()


def test_example_studies_ship_in_the_package_and_copy_out(tmp_path, capsys):
    import robustrec

    shipped = sorted((Path(robustrec.__file__).parent / "examples" / "studies").glob("*.toml"))
    assert len(shipped) >= 5
    code, out, _ = run_cli(capsys, "study", "examples")
    assert code == 0 and all(path.name in out for path in shipped)
    code, out, _ = run_cli(capsys, "study", "examples", "--copy", tmp_path / "mine")
    assert code == 0 and sorted(p.name for p in (tmp_path / "mine").iterdir()) == [p.name for p in shipped]
    (tmp_path / "mine" / shipped[0].name).write_text("# edited\n")
    code, out, _ = run_cli(capsys, "study", "examples", "--copy", tmp_path / "mine")
    assert code == 0 and (tmp_path / "mine" / shipped[0].name).read_text() == "# edited\n"  # kept
    assert f"0 written, {len(shipped)} already there" in " ".join(out.split())


def test_study_check_cuts_no_value_at_80_columns(tmp_path, synthetic_dir, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    path = _write(tmp_path, synthetic_dir, "[grid.bprmf]\nreg_weight = [0.0001, 0.1]")
    code, out, _ = run_cli(capsys, "study", "check", path, "--out", tmp_path / "none")
    from rich.cells import cell_len

    assert code == 0 and "…" not in out and all(cell_len(line) <= 80 for line in out.splitlines())
    assert "2 (reg_weight: 0.0001, 0.1)" in out and "synthetic" in out and "bprmf" in out and "plain" in out
