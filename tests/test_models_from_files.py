"""Models from files and installed packages (robustrec.models.sources) and `robustrec models check`."""

import json
import shutil
import sys
from pathlib import Path

import pytest

from robustrec.errors import ConfigError
from robustrec.models import ZOO, available_models, get_model_class
from robustrec.models.contract import check_class, tiny_world
from robustrec.models.sources import parse_reference

from cli_helpers import assert_one_line_error, run_cli
from render_helpers import assert_readable

EXAMPLE = Path(__file__).resolve().parents[1] / "robustrec" / "examples" / "models" / "mf_text.py"

#: a class that builds and scores but breaks four rules, each for a reason the check must name
BROKEN = '''
import numpy as np
import torch
from torch import nn
from robustrec.models.base import Recommender, bpr_loss


class Broken(Recommender):
    name = "broken"
    multimodal = True
    features_at_inference = True      # false: the scores never read the features
    loss_reads_features = True        # false: nor does the loss

    def __init__(self, data, params):
        super().__init__(data, params)
        init = np.random.default_rng().normal(size=(self.n_users, 8)).astype(np.float32)  # unseeded
        self.user_embedding = nn.Parameter(torch.from_numpy(init))
        self.item_embedding = nn.Parameter(torch.randn(self.n_items, 8))

    def final_embeddings(self):
        return self.user_embedding, self.item_embedding

    def loss(self, users, pos, neg):
        u = self.user_embedding[users] * torch.ones(8)   # a float32 tensor made on the spot
        i, j = self.item_embedding[pos], self.item_embedding[neg]
        return bpr_loss((u * i).sum(1), (u * j).sum(1))

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
'''


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_built_in_models_are_discovered_not_listed():
    assert "bprmf" in ZOO and "base" not in ZOO and "registry" not in ZOO
    assert {cls.__module__.rsplit(".", 1)[1] for cls in available_models().values()} == set(ZOO)


def test_the_reference_grammar(tmp_path):
    assert parse_reference("LightGCN").kind == "name"
    ref = parse_reference("m/x.py:MyRec", tmp_path)
    assert (ref.kind, ref.path, ref.class_name, ref.label) == ("file", tmp_path / "m" / "x.py", "MyRec", "x.MyRec")
    assert ref.text == f"{tmp_path / 'm' / 'x.py'}:MyRec"
    mm = parse_reference("mmrec:models/smore.py:SMORE", tmp_path)
    assert mm.kind == "mmrec" and mm.text == f"mmrec:{tmp_path / 'models' / 'smore.py'}:SMORE"
    for bad in ("x.txt:A", "x.py:", "x.py:1A", "x.py"):
        with pytest.raises(ConfigError):
            parse_reference(bad) if ":" in bad else get_model_class(bad)


def test_the_example_model_passes_every_rule(capsys):
    code, out, err = run_cli(capsys, "models", "check", f"{EXAMPLE}:MFText")
    assert code == 0, out + err
    assert out.count(" pass ") == 9 and "all 9 rules pass" in out
    assert_readable(out, 80, ["loss_reads_features", "bitwise determinism", "float64 (no GPU)"])


def test_a_broken_model_fails_with_the_reasons(capsys, tmp_path):
    path = _write(tmp_path, "broken.py", BROKEN)
    code, out, err = run_cli(capsys, "models", "check", f"{path}:Broken")
    assert code == 1, out + err
    results = {r.rule: r for r in check_class(get_model_class(f"{path}:Broken"), tiny_world())}
    failed = {rule for rule, r in results.items() if not r.ok}
    assert failed == {"features iff inference", "loss_reads_features", "device move", "bitwise determinism"}
    assert "new features leave the scores unchanged" in results["features iff inference"].reason
    assert "no gradient with respect to feat_" in results["loss_reads_features"].reason
    assert "mixes dtypes" in results["device move"].reason
    assert "same seed" in results["bitwise determinism"].reason
    assert "4 of 9 rules fail" in out and "FAIL" in out
    assert_readable(out, 80, ["features iff inference", "loss_reads_features"])


@pytest.mark.parametrize("text, ref, fragments", [
    (None, "nothere.py:A", ["model file", "nothere.py not found"]),
    ("x = 1\n", "m.py:MyRec", ["has no class MyRec"]),
    ("import torch\nclass A(:\n", "m.py:A", ["line 2", "syntax error"]),
    ("import not_a_module_xyz\n", "m.py:A", ["imports 'not_a_module_xyz', which is not installed"]),
    ("x = 1 / 0\n", "m.py:A", ["line 1", "ZeroDivisionError"]),
    ("from robustrec.models.base import Recommender\nclass A(Recommender):\n    name = 'a'\n"
     "    def final_embeddings(self):\n        pass\n", "m.py:A", ["does not implement embedding_tables(), loss()"]),
    ("from robustrec.models.base import Recommender\nclass A(Recommender):\n    name = 'a'\n"
     "    def loss(self, u, p, n):\n        pass\n    def embedding_tables(self):\n        pass\n",
     "m.py:A", ["defines neither final_embeddings() nor ranker()"]),
    ("from robustrec.models.bprmf import BPRMF\nclass A(BPRMF):\n    name = ''\n", "m.py:A", ["non-empty name"]),
    ("class A:\n    pass\n", "m.py:A", ["is not a subclass of robustrec.models.base.Recommender"]),
])
@pytest.mark.parametrize("command", ["check", "train"])
def test_bad_model_files_are_one_line_and_write_nothing(capsys, tmp_path, monkeypatch, text, ref, fragments, command):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        _write(tmp_path, "m.py", text)
    args = (["models", "check", ref] if command == "check" else
            ["train", "--model", ref, "--checkpoint-dir", tmp_path / "ck", "--data-dir", tmp_path / "data"])
    assert_one_line_error(*run_cli(capsys, *args), *fragments)
    assert not (tmp_path / "ck").exists() and not (tmp_path / "data").exists()


def test_a_class_unfit_to_build_is_one_failed_row(capsys, tmp_path):
    path = _write(tmp_path, "m.py", "from robustrec.models.bprmf import BPRMF\nclass A(BPRMF):\n    name = 'a'\n"
                                    "    def __init__(self, data, params):\n        raise RuntimeError('no luck')\n")
    code, out, _ = run_cli(capsys, "models", "check", f"{path}:A")
    assert code == 1 and "builds" in out and "RuntimeError: no luck (m.py line 5)" in out
    assert "finite loss" not in out


def test_installed_models_come_from_entry_points(capsys, tmp_path, monkeypatch):
    package = tmp_path / "extra_recs"
    package.mkdir()
    shutil.copy(EXAMPLE, package / "mf.py")
    (package / "__init__.py").write_text("")
    info = tmp_path / "extra_recs-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra-recs\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[robustrec.models]\nmftext = extra_recs.mf:MFText\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        code, out, _ = run_cli(capsys, "models")
        assert code == 0 and "mftext" in out and "extra_recs.mf:MFText" in out and "extra-recs" in out
        cls = get_model_class("mftext")
        assert cls.__name__ == "MFText" and "mftext" not in available_models()
        code, out, _ = run_cli(capsys, "models", "check", "mftext")
        assert code == 0 and "all 9 rules pass" in out
    finally:
        for name in [n for n in sys.modules if n.startswith("extra_recs")]:
            del sys.modules[name]


def test_train_evaluate_perturb_then_an_edited_file_is_refused(capsys, tmp_path, synthetic_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(EXAMPLE, tmp_path / "mymodel.py")
    code, out, err = run_cli(capsys, "train", "--model", "mymodel.py:MFText", "--epochs", "1", "-q", "--threads",
                             "1", "--batch-size", "1024", "--data-dir", synthetic_dir, "--checkpoint-dir", "ck")
    assert code == 0, err
    run = tmp_path / "ck" / "mymodel.MFText-synthetic"
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == f"{tmp_path / 'mymodel.py'}:MFText"
    source = config["model_source"]
    assert source["path"] == str(tmp_path / "mymodel.py") and source["class"] == "MFText"
    assert len(source["sha256"]) == 64
    code, out, err = run_cli(capsys, "evaluate", run, "--threads", "1")
    assert code == 0 and "test metrics match the stored ones" in out, err
    code, out, err = run_cli(capsys, "perturb", "noise", run, "--repeats", "1", "--threads", "1", "-q",
                             "--report-dir", tmp_path / "reports")
    assert code == 0, err
    (tmp_path / "mymodel.py").write_text((tmp_path / "mymodel.py").read_text() + "\n# edited\n")
    for args in (["evaluate", run], ["perturb", "noise", run, "--report-dir", tmp_path / "again"]):
        assert_one_line_error(*run_cli(capsys, *args, "--threads", "1"), f"the model source of {run}",
                              "changed since it was trained", str(tmp_path / "mymodel.py"), "restore the file or retrain")
    assert not (tmp_path / "again").exists()


def test_a_study_resolves_model_files_from_its_folder_and_retrains_an_edited_one(tmp_path):
    from robustrec.studies.plan import Manifest, plan
    from robustrec.studies.spec import load_study

    (tmp_path / "models").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "models" / "mymodel.py")
    study_file = _write(tmp_path, "s.toml", 'datasets = ["synthetic"]\nmodels = ["bprmf", "models/mymodel.py:MFText"]\n'
                                            'strategies = ["plain"]\n[grid."models/mymodel.py:MFText"]\n'
                                            'embedding_dim = [8, 16]\n')

    def cells():
        study = load_study(study_file, data=False)
        return {c.id: c for c in plan(study, Manifest(tmp_path / "out", study))}

    before = cells()
    ours = before["train/synthetic/mymodel.MFText/plain/g0/s0"]
    assert ours.spec["run_dir"] == "runs/synthetic/mymodel.MFText-plain-g0-s0"
    assert ours.spec["model"] == "models/mymodel.py:MFText"
    assert ours.spec["config"]["model"] == f"{tmp_path / 'models' / 'mymodel.py'}:MFText"
    path = tmp_path / "models" / "mymodel.py"
    path.write_text(path.read_text() + "\n# edited\n")
    after = cells()
    assert after["train/synthetic/bprmf/plain/g0/s0"].spec == before["train/synthetic/bprmf/plain/g0/s0"].spec
    assert after[ours.id].spec != ours.spec  # the manifest merge redoes it


def test_a_study_with_a_bad_model_file_is_one_line(tmp_path):
    from robustrec.studies.spec import load_study

    study_file = _write(tmp_path, "s.toml", 'datasets = ["synthetic"]\nmodels = ["gone.py:A"]\n')
    with pytest.raises(ConfigError, match=r"^s.toml: models: model file .*gone.py not found"):
        load_study(study_file, data=False)
