"""Studies: the study file, planning with validation-only selection, the manifest and resume,
failures, local pool and Ray execution, and the report's tests and corrections."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.evaluation.stats import adjust_p_values, seed_paired_test
from robustrec.studies.execute import InlineExecutor, PoolExecutor, run_study, worker_layout
from robustrec.studies.plan import read_manifest
from robustrec.studies.spec import load_study

STUDY = """
name = "syn"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf", "vbpr"]
strategies = ["plain", "mg"]
seeds = [0, 1]

[train]
epochs = 2
patience = 2
batch_size = 512

[grid.bprmf]
reg_weight = [1e-4, 1e-1]

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


def write_study(folder: Path, data_dir, text: str = STUDY, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(text.replace("{data}", str(data_dir)))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, synthetic_dir):
    """The example study run once, in this process (one worker)."""
    folder = tmp_path_factory.mktemp("study")
    study = load_study(write_study(folder, synthetic_dir))
    manifest = run_study(study, folder / "out", InlineExecutor(threads=1))
    return study, folder / "out", manifest


# --- the study file ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    ('models = ["bprmf", "vbpr"]', None),
    ('models = ["bprmf", "nosuch"]', "unknown model 'nosuch'"),
    ('seeds = [0, 1]', None),
    ('seeds = [0, 0]', "seeds lists a seed twice"),
    ('strategies = ["plain", "mg"]', None),
    ('strategies = ["plain", "fancy"]', "unknown strategy 'fancy'"),
])
def test_study_file_top_level_checks(tmp_path, synthetic_dir, change, message):
    key = change.split(" =")[0]
    line = next(line for line in STUDY.splitlines() if line.startswith(key + " ="))
    path = write_study(tmp_path, synthetic_dir, STUDY.replace(line, change))
    if message is None:
        assert load_study(path).name == "syn"
    else:
        with pytest.raises(ConfigError, match=message):
            load_study(path)


@pytest.mark.parametrize("extra, message", [
    ("colour = 'red'\n", "unknown key\\(s\\) colour in study file"),
    ("[grid.vbpr]\nreg_weight = []\n", "reg_weight is an empty list"),
    ("[grid.vbpr]\nno_such_param = [1]\n", "unknown vbpr parameter"),
    ("[grid.lightgcn]\nn_layers = [1]\n", "names a model that is not in models"),
    ("[train]\nlr = -1.0\n", None),  # duplicate [train] table: TOML itself refuses
    ("[[stress]]\nkind = 'shake'\n", "kind = one of"),
    ("[[stress]]\nkind = 'noise'\nsigma = [-1.0]\n", "sigma"),
    ("[[stress]]\nkind = 'noise'\nwobble = 1\n", "unknown \\[\\[stress\\]\\] #3 \\(noise\\) parameter\\(s\\) wobble; known: sigma, target, flatness \\(and repeats"),
    ("[[stress]]\nkind = 'noise'\nrepeats = 0\n", "--repeats must be >= 1"),
    ("[[stress]]\nkind = 'adversarial'\neps = [-0.1]\n", "eps"),
    ("[[stress]]\nkind = 'adversarial'\nsteps = 0\n", "steps"),
    ("[strategy.mg]\nalpha2 = 5.0\n", "α2|alpha2"),
])
def test_study_file_bad_tables(tmp_path, synthetic_dir, extra, message):
    text = STUDY + "\n" + extra if extra.startswith("[") else extra + STUDY  # a bare key: top level
    path = write_study(tmp_path, synthetic_dir, text)
    with pytest.raises(ConfigError, match=message or "not valid TOML"):
        load_study(path)


def test_bad_study_file_is_one_line_error_before_any_work(tmp_path, synthetic_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, synthetic_dir, STUDY.replace("seeds = [0, 1]", "seeds = [3, 3]"))
    code, out, err = run_cli(capsys, "study", "run", path)
    assert_one_line_error(code, out, err, "seeds lists a seed twice")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study.toml"]
    code, _, err = run_cli(capsys, "study", "run", tmp_path / "missing.toml")
    assert code == 2 and "not found" in err


def test_ray_flag_without_ray_is_a_one_line_error(tmp_path, synthetic_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    path = write_study(tmp_path, synthetic_dir)
    assert_one_line_error(*run_cli(capsys, "study", "run", path, "--ray"), "pip install 'robustrec[ray]'")
    assert not (tmp_path / "study-out").exists()


def test_worker_layout_never_oversubscribes():
    assert worker_layout(0, 0, cores=2) == (2, 1)
    assert worker_layout(1, 0, cores=2) == (1, 2)
    assert worker_layout(0, 2, cores=4) == (2, 2)
    with pytest.raises(ConfigError, match="exceeds the 2 cores"):
        worker_layout(2, 2, cores=2)


def test_example_study_files_are_valid():
    examples = sorted((Path(__file__).resolve().parents[1] / "examples" / "studies").glob("*.toml"))
    assert len(examples) >= 3
    for path in examples:
        study = load_study(path, data=False)  # some need `features extract` first
        assert study.name == path.stem and Path(study.data_dir).name in ("datasets", "features")


def fake_manifest(study, results: dict[str, tuple[float, float]]):
    """A manifest whose listed training cells are done with (valid recall@20, test recall@5)."""
    from robustrec.studies.plan import Manifest, plan

    manifest = Manifest(Path("unused"), study)
    for _ in range(3):  # cells appear as the ones before them finish
        manifest.merge(plan(study, manifest))
        for cid, (valid, test) in results.items():
            if cid in manifest.cells:
                manifest.cells[cid].state = "done"
                manifest.cells[cid].result = {"valid": {"recall@20": valid}, "test": {"recall@5": test}}
    return manifest


def test_selection_reads_validation_never_test(tmp_path, synthetic_dir):
    study = load_study(write_study(tmp_path, synthetic_dir, STUDY.replace('"mg"]', '"mg"]\nselection = "baseline"')))
    # point 1 is far better on test, point 0 on validation: point 0 must be chosen
    manifest = fake_manifest(study, {"train/synthetic/bprmf/plain/g0/s0": (0.20, 0.01),
                                     "train/synthetic/bprmf/plain/g1/s0": (0.10, 0.90)})
    assert "train/synthetic/bprmf/plain/g0/s1" in manifest.cells
    assert "train/synthetic/bprmf/plain/g1/s1" not in manifest.cells
    # selection = "baseline": MG trains plain's point only, on every seed, without a search of its own
    mg = sorted(c for c in manifest.cells if c.startswith("train/synthetic/bprmf/mg/"))
    assert mg == ["train/synthetic/bprmf/mg/g0/s0", "train/synthetic/bprmf/mg/g0/s1"]


def test_ties_go_to_the_earlier_point_and_failed_points_are_skipped(tmp_path, synthetic_dir):
    from robustrec.studies.plan import select_point

    study = load_study(write_study(tmp_path, synthetic_dir))
    manifest = fake_manifest(study, {"train/synthetic/bprmf/plain/g0/s0": (0.2, 0.1),
                                     "train/synthetic/bprmf/plain/g1/s0": (0.2, 0.3)})
    search = {0: "train/synthetic/bprmf/plain/g0/s0", 1: "train/synthetic/bprmf/plain/g1/s0"}
    assert select_point(manifest, search, "recall@20") == 0
    manifest.cells[search[0]].state = "failed"
    assert select_point(manifest, search, "recall@20") == 1
    manifest.cells[search[1]].state = "running"
    assert select_point(manifest, search, "recall@20") is None


# --- running, selection, resume, failures ---------------------------------------------------------


def test_study_runs_every_cell_and_selects_on_validation_only(finished):
    study, out, manifest = finished
    cells = manifest.cells
    assert {c.state for c in cells.values()} == {"done"}
    # bprmf: 2 grid points × 2 strategies on seed 0, then the chosen point on seed 1; vbpr: 2 × 2;
    # pop, the default baseline: one fit per seed (and in no stress cell: none lists it)
    train = [c for c in cells.values() if c.kind == "train"]
    assert len(train) == 2 * 2 + 2 + 2 * 2 + 2
    assert sorted(c.id for c in train if c.spec["strategy"] == "baseline") == [
        "train/synthetic/pop/baseline/g0/s0", "train/synthetic/pop/baseline/g0/s1"]
    for strategy in ("plain", "mg"):
        search = {i: cells[f"train/synthetic/bprmf/{strategy}/g{i}/s0"] for i in (0, 1)}
        valid = {i: c.result["valid"]["recall@20"] for i, c in search.items()}
        best = max(valid, key=lambda i: (valid[i], -i))
        assert f"train/synthetic/bprmf/{strategy}/g{best}/s1" in cells
        assert f"train/synthetic/bprmf/{strategy}/g{1 - best}/s1" not in cells
    # stress: one cell per seed and stress, holding that seed's chosen run of every model and strategy
    stress = {c.id: c for c in cells.values() if c.kind == "stress"}
    assert sorted(stress) == ["stress/synthetic/s0/1-noise", "stress/synthetic/s0/2-modality",
                              "stress/synthetic/s1/1-noise", "stress/synthetic/s1/2-modality"]
    assert stress["stress/synthetic/s1/1-noise"].spec["models"] == ["bprmf", "bprmf", "vbpr", "vbpr"]
    assert stress["stress/synthetic/s1/2-modality"].spec["models"] == ["vbpr", "vbpr"]  # models = ["vbpr"]
    for cell in stress.values():
        assert set(cell.deps) == {c.id for c in train if c.spec["seed"] == cell.spec["seed"]
                                  and c.spec["run_dir"] in cell.spec["checkpoints"]}
        for report in cell.result["reports"]:
            body = json.loads((out / report).read_text())
            assert [Path(e["path"]).name for e in body["checkpoints"]] == [Path(p).name for p in
                                                                            cell.spec["checkpoints"]]
    assert read_manifest(out)["fingerprint"] == study.fingerprint()


def test_rerun_of_a_finished_study_does_nothing(finished, capsys):
    study, out, manifest = finished
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("model.safetensors")}
    again = run_study(study, out, InlineExecutor(threads=1))
    assert {c.state for c in again.cells.values()} == {"done"}
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("model.safetensors")} == stamps


class StopAfter:
    """Ctrl-C after ``n`` cells ended."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_cells_planned(self, total, done): ...

    def on_cell_start(self, cell): ...

    def on_cell_end(self, cell):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt


def test_killed_study_resumes_to_the_same_report(finished, tmp_path, synthetic_dir):
    from robustrec.studies.report import build_report

    study, out, _ = finished
    copy = load_study(write_study(tmp_path, synthetic_dir))
    with pytest.raises(KeyboardInterrupt):
        run_study(copy, tmp_path / "out", InlineExecutor(threads=1), [StopAfter(5)])
    states = [c["state"] for c in read_manifest(tmp_path / "out")["cells"].values()]
    assert states.count("done") == 5 and "running" not in states
    resumed = run_study(copy, tmp_path / "out", InlineExecutor(threads=1))
    assert {c.state for c in resumed.cells.values()} == {"done"}
    a, b = build_report(out), build_report(tmp_path / "out")
    for report in (a, b):
        report.pop("folder")
        for row in report["clean"] + report["stress"]:
            row.pop("runs", None)
            row.pop("reports", None)
    assert a == b


def test_a_failing_cell_is_recorded_and_the_study_goes_on(tmp_path, synthetic_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = STUDY.replace('models = ["vbpr"]\n', 'models = ["bprmf"]\n').replace(
        "[grid.bprmf]\nreg_weight = [1e-4, 1e-1]\n", "")
    text = text.replace("seeds = [0, 1]", "seeds = [0]").replace('strategies = ["plain", "mg"]', 'strategies = ["plain"]')
    path = write_study(tmp_path, synthetic_dir, text)
    code, out, err = run_cli(capsys, "study", "run", path, "--workers", "1", "--threads", "1", "--quiet")
    # the text fault cannot apply to BPR-MF: that one cell fails, with its one-line reason
    assert code == 1, err
    manifest = read_manifest(tmp_path / "study-out" / "syn")
    failed = [c for c in manifest["cells"].values() if c["state"] == "failed"]
    assert [c["id"] for c in failed] == ["stress/synthetic/s0/2-modality"]
    assert "text" in failed[0]["error"] and "\n" not in failed[0]["error"]
    assert sum(c["state"] == "done" for c in manifest["cells"].values()) == len(manifest["cells"]) - 1
    code, out, _ = run_cli(capsys, "study", "status", tmp_path / "study-out" / "syn")
    assert code == 0 and "1 failed" in out and "stress/synthetic/s0/2-modality" in out


def test_changed_study_file_redoes_only_the_changed_cells(finished, tmp_path, synthetic_dir):
    import shutil

    study, out, _ = finished
    target = tmp_path / "out"
    shutil.copytree(out, target)
    changed = load_study(write_study(tmp_path, synthetic_dir, STUDY.replace("sigma = [1e-2]", "sigma = [2e-2]")))
    ended = []

    class Record(StopAfter):
        def on_cell_end(self, cell):
            ended.append(cell.id)

    run_study(changed, target, InlineExecutor(threads=1), [Record(0)])
    assert sorted(ended) == sorted(c for c in read_manifest(target)["cells"] if c.endswith("1-noise"))


def test_local_pool_of_two_workers_gives_the_inline_results(finished, tmp_path, synthetic_dir):
    study, out, manifest = finished
    text = STUDY.replace("[[stress]]", "[[skip]]", 1)
    text = text[:text.index("[[skip]]")]  # trainings only: what the pool changes is where cells run
    pooled = run_study(load_study(write_study(tmp_path, synthetic_dir, text)), tmp_path / "out",
                       PoolExecutor(2, 1))
    for cid, cell in pooled.cells.items():
        assert cell.state == "done"
        assert cell.result["test"] == manifest.cells[cid].result["test"], cid


def test_ray_runs_the_study_on_a_local_instance(finished, tmp_path, synthetic_dir):
    ray = pytest.importorskip("ray", reason="ray is an optional extra: make setup installs it")
    from robustrec.studies.execute import RayExecutor

    study, out, manifest = finished
    text = STUDY[:STUDY.index("[[stress]]")] + STUDY[STUDY.index("[[stress]]", STUDY.index("[[stress]]") + 1):]
    import shutil
    import tempfile

    session = Path(tempfile.gettempdir()) / "ray"  # Ray's session files (sockets need a short path)
    existed = session.exists()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_study(load_study(write_study(tmp_path, synthetic_dir, text)), tmp_path / "out", RayExecutor(1))
    finally:
        ray.shutdown()
        if not existed:
            shutil.rmtree(session, ignore_errors=True)
    assert {c.state for c in result.cells.values()} == {"done"}
    for cid, cell in result.cells.items():
        if cell.kind == "train":
            assert cell.result["test"] == manifest.cells[cid].result["test"], cid


# --- the report ------------------------------------------------------------------------------------


def test_report_tables_trace_every_number_to_its_cells(finished, tmp_path, capsys):
    from robustrec.studies.report import build_report

    study, out, manifest = finished
    report = build_report(out)
    rows = {(r["model"], r["strategy"]): r for r in report["clean"]}
    assert set(rows) == {("bprmf", "plain"), ("bprmf", "mg"), ("vbpr", "plain"), ("vbpr", "mg"), ("pop", "baseline")}
    assert rows[("pop", "baseline")]["baseline"] and "vs_plain" not in rows[("pop", "baseline")]
    pop = rows[("pop", "baseline")]["per_seed"]
    for key, row in rows.items():  # the mark is the seed-paired test against pop's runs of the same seeds
        if key[0] != "pop":
            test = row["vs_baselines"]["pop"]
            assert test["mean_difference"] == pytest.approx(np.mean([row["per_seed"][s] - pop[s] for s in pop]))
            assert (row["not_beaten"] == ["pop"]) == (not test["beats"]) and ("≤ pop" in row["mark"]) == (not test["beats"])
    row = rows[("vbpr", "mg")]
    values = [manifest.cells[c].result["test"]["recall@5"] for c in row["cells"]]
    assert row["test"]["recall@5"]["mean"] == pytest.approx(np.mean(values))
    plain = [manifest.cells[c].result["test"]["recall@5"] for c in rows[("vbpr", "plain")]["cells"]]
    assert row["vs_plain"]["mean_difference"] == pytest.approx(np.mean(values) - np.mean(plain))
    assert "vs_plain" not in rows[("vbpr", "plain")]
    for stress in report["stress"]:
        assert stress["cells"] and all(c in manifest.cells for c in stress["cells"])
    markdown = tmp_path / "report.md"
    code, text, err = run_cli(capsys, "study", "report", out, "--markdown", markdown, "--correction", "bh")
    assert code == 0, err
    assert "Benjamini–Hochberg" in markdown.read_text() and "| vbpr | mg |" in markdown.read_text()
    for name in ("study-report-bh.json", "clean-bh.csv", "stress-bh.csv", "drops-bh.png"):  # named by correction
        assert (out / "report" / name).stat().st_size > 0
    code, _, err = run_cli(capsys, "study", "report", out, "--correction", "bonferroni")
    assert code == 2 and "--correction must be one of holm, bh" in err


def test_holm_and_benjamini_hochberg_adjustments():
    p = [0.01, 0.04, 0.03, None, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, made monotone
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    # BH: p·m/rank from the largest down, made monotone
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, None, 0.02])
    assert adjust_p_values([None, None], "holm") == [None, None]
    assert adjust_p_values([0.9, 0.8], "holm") == [1.0, 1.0]


def test_seed_paired_test_invents_no_effect():
    same = seed_paired_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    assert same["mean_difference"] == 0 and same["p_value"] == 1.0
    assert seed_paired_test([0.1], [0.2])["p_value"] is None  # one seed: no test
    noisy = seed_paired_test([0.11, 0.19, 0.32], [0.1, 0.2, 0.3])
    assert 0 < noisy["p_value"] < 1 and noisy["ci95"][0] < noisy["mean_difference"] < noisy["ci95"][1]


def test_a_stress_removed_from_the_study_file_leaves_the_manifest_and_report(finished, tmp_path, synthetic_dir):
    import shutil

    from robustrec.studies.report import build_report

    study, out, _ = finished
    target = tmp_path / "out"
    shutil.copytree(out, target)
    text = STUDY[:STUDY.rindex("[[stress]]")]  # the text fault is gone
    run_study(load_study(write_study(tmp_path, synthetic_dir, text)), target, InlineExecutor(threads=1))
    cells = read_manifest(target)["cells"]
    assert not [c for c in cells if c.endswith("2-modality")] and "stress/synthetic/s0/1-noise" in cells
    assert {row["kind"] for row in build_report(target)["stress"]} == {"noise"}


def test_study_on_cuda_without_cuda_fails_before_any_work(tmp_path, synthetic_dir, capsys, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    path = write_study(tmp_path, synthetic_dir)
    code, out, err = run_cli(capsys, "study", "run", path, "--device", "cuda", "--workers", "1")
    assert_one_line_error(code, out, err, prefix="Error: --device cuda: CUDA is not available")
    assert not (tmp_path / "study-out").exists()


def test_study_cells_on_the_cpu_device_match_the_default(finished, tmp_path, synthetic_dir):
    study, out, manifest = finished
    text = STUDY[:STUDY.index("[[stress]]")]
    cpu = run_study(load_study(write_study(tmp_path, synthetic_dir, text)), tmp_path / "out",
                    InlineExecutor(threads=1, device="cpu"))
    for cid, cell in cpu.cells.items():
        assert cell.result["test"] == manifest.cells[cid].result["test"], cid


def test_train_modalities_apply_to_the_multimodal_models_only(tmp_path, synthetic_dir):
    study = load_study(write_study(tmp_path, synthetic_dir, STUDY.replace("[train]\n", "[train]\nmodalities = ['text']\n")))
    assert study.train_config("synthetic", "vbpr", "plain", {}, 0).modalities == ["text"]
    assert study.train_config("synthetic", "bprmf", "plain", {}, 0).modalities is None


def test_a_study_folder_resumes_only_the_study_that_made_it(finished, tmp_path, synthetic_dir):
    study, out, _ = finished
    other = load_study(write_study(tmp_path, synthetic_dir, STUDY.replace('name = "syn"', 'name = "other"')))
    with pytest.raises(ConfigError, match="holds study 'syn', not 'other'; give another --out"):
        run_study(other, out, InlineExecutor(threads=1))


def test_study_report_rows_carry_moves_effect_sizes_and_power(finished):
    """Stress rows: moves (mean over seeds) and per-seed d_z; seed-level tests: d_z, its interval, the
    minimum detectable d_z and "underpowered" (2 seeds cannot detect a large effect)."""
    from robustrec.evaluation.stats import minimum_detectable_dz
    from robustrec.studies.report import build_report

    _, out, _ = finished
    report = build_report(out)
    noise = [r for r in report["stress"] if r["kind"] == "noise" and not r.get("unaffected")]
    assert noise and all({"jaccard@5", "rbo@5", "gini@5 change", "recall@5|users:low drop_pct"} <= set(r["moves"])
                         for r in noise)
    assert all(0 <= r["moves"]["jaccard@5"] <= 1 and set(r["user_d_z"]) == set(r["per_seed"]) for r in noise)
    compared = [r["vs_plain"] for r in report["stress"] + report["clean"] if "vs_plain" in r]
    assert compared and all(t["power"] == "underpowered" and t["mde_d_z"] == pytest.approx(minimum_detectable_dz(2))
                            and "d_z" in t and "d_z_ci95" in t for t in compared)
