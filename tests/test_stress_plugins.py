"""Stress kinds as plug-ins: the contract every registered kind keeps, the registry's one-line
errors, generated commands and docs, the ``interactions`` kind, and plug-ins in a study."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.perturbations.interactions import InteractionEdit
from robustrec.studies.stresses import available_stresses, load_plugins, stress_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "robustrec" / "examples" / "stresses" / "zero_text.py"


class StandIn:
    """A deterministic encoder for the contract: a text's row is seeded by its CRC."""

    encoder_id = "test:stand-in"

    def __init__(self, modality: str, dim: int) -> None:
        self.modality, self.dim = modality, dim

    def encode(self, batch):
        rows = [np.random.default_rng(zlib.crc32(str(t).encode())).standard_normal(self.dim) for t in batch]
        return np.asarray(rows, dtype=np.float32).reshape(len(batch), self.dim)


@pytest.fixture(scope="module")
def world():
    from robustrec.data.synthetic import SyntheticSpec, make_synthetic

    data = make_synthetic(SyntheticSpec(n_users=80, n_items=50, n_clusters=3, mean_interactions=8, image_dim=8,
                                        text_dim=6, seed=3)).data
    torch.manual_seed(0)
    models = {name: build_model(name, data, seed=1).eval() for name in ("bprmf", "vbpr", "lightgcn", "freedom")}
    return data, models


def _scores(model) -> torch.Tensor:
    with torch.no_grad():
        return model.full_scores(torch.arange(model.n_users))


def _fingerprint(data, model) -> list:
    """Everything a perturbation must leave untouched: weights, feature buffers, data arrays."""
    state = [t.detach().clone() for t in model.state_dict().values()]
    feats = [x.detach().clone() for x in model.features().values()]
    arrays = [data.train.data.copy(), data.train.indices.copy(), data.train.indptr.copy(),
              *[np.array(x, copy=True) for x in data.features.values()]]
    return state + feats + arrays


def _same(a: list, b: list) -> bool:
    return all((torch.equal(x, y) if isinstance(x, torch.Tensor) else np.array_equal(x, y)) for x, y in zip(a, b))


def kinds_with_plugin():
    load_plugins([EXAMPLE])
    return list(available_stresses())


@pytest.mark.parametrize("kind", kinds_with_plugin())
def test_stress_contract(kind, world):
    """Zero strength is bitwise the identity, equal seeds give equal scores, inputs are never
    written, unknown keys are refused, and a model said unaffected by construction is unmoved."""
    data, models = world
    cls = available_stresses()[kind]
    with pytest.raises(ConfigError, match="no_such_option"):
        stress_spec(kind, {"no_such_option": 1})
    make = lambda strength: cls.contract_perturbation(data, strength, StandIn)  # noqa: E731
    zero, some = make(0.0), make(0.5)
    moved = 0
    for name, model in models.items():
        before, clean = _fingerprint(data, model), _scores(model)
        assert torch.equal(_scores(zero.apply(model, 7)), clean), f"{kind} at 0 changed {name}"
        first, again = _scores(some.apply(model, 7)), _scores(some.apply(model, 7))
        assert torch.equal(first, again), f"{kind}: equal seeds gave different scores on {name}"
        if some.unaffected_reason(model) is not None:
            assert torch.equal(first, clean), f"{kind} says {name} is unaffected by construction, yet it moved"
        else:
            moved += not torch.equal(first, clean)
        assert _same(before, _fingerprint(data, model)), f"{kind} wrote into its input ({name})"
    assert moved, f"{kind} moved no model it says it can affect"


def test_options_page_matches_the_registry(capsys):
    """Docs and registry agree: docs/stress/options.md is what `robustrec stresses --markdown` prints."""
    code, out, _ = run_cli(capsys, "stresses", "--markdown")
    assert code == 0
    page = (ROOT / "docs" / "stress" / "options.md").read_text(encoding="utf-8")
    kinds = available_stresses()
    preamble, *sections = out.split("\n## ")
    builtin = "\n## ".join([preamble, *[section for section in sections  # plug-ins loaded by other tests: not docs
                                         if kinds[section.split("\n", 1)[0]].source == "robustrec"]])
    assert page.strip() == builtin.strip(), "docs/stress/options.md is stale: regenerate it with " \
                                            "`robustrec stresses --markdown > docs/stress/options.md`"
    for kind, cls in kinds.items():
        if cls.source == "robustrec":
            assert f"## {kind}\n" in page


# --- the registry's errors -------------------------------------------------------------------


def test_plugin_duplicate_name_and_broken_files_are_one_line(tmp_path, capsys):
    dup = tmp_path / "dup.py"
    dup.write_text("from dataclasses import dataclass\nfrom robustrec.studies.stresses import StressSpec, "
                   "register_stress\n\n@register_stress\n@dataclass\nclass Again(StressSpec):\n    kind = 'noise'\n")
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def (:\n")
    out = tmp_path / "reports"
    run = tmp_path / "run"  # the plug-in fails before any checkpoint is read
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", run, "--report-dir", out, "--plugins", dup),
                          "already registered", "noise")
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", run, "--report-dir", out, "--plugins", broken),
                          "broken.py", "no_such_module_here")
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", run, "--report-dir", out, "--plugins", syntax),
                          "syntax.py", "SyntaxError")
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", run, "--report-dir", out, "--plugins",
                                   tmp_path / "missing.py"), "missing.py", "not found")
    assert not out.exists()
    assert available_stresses()["noise"].source == "robustrec"


# --- the interactions kind -------------------------------------------------------------------


def test_interaction_edits_are_exact_seeded_and_leave_the_input(world):
    data, _ = world
    train = data.train.copy()
    known = data.train + data.valid + data.test
    sizes = np.diff(data.train.indptr)
    k = np.floor(0.4 * sizes + 0.5).astype(int)
    drop = InteractionEdit("drop", 0.4, data.train, known)
    edited, items = drop.edited(5)
    assert np.array_equal(np.diff(edited.indptr), sizes - k)
    assert (edited - edited.multiply(data.train)).nnz == 0  # only training edges, fewer of them
    assert len(items) > 0
    for profile in ("random", "average", "bandwagon"):
        add = InteractionEdit("add", 0.4, data.train, known, profile)
        grown, _ = add.edited(5)
        extra = grown - data.train
        assert np.array_equal(np.diff(extra.indptr), k), profile
        assert extra.multiply(known).nnz == 0, f"{profile} added an interaction the user already has"
        assert (add.edited(5)[0] != grown).nnz == 0
        assert (InteractionEdit("add", 0.4, data.train, known, profile).edited(6)[0] != grown).nnz > 0
    popularity = np.asarray(data.train.sum(0)).ravel()
    user = int(np.argmax(k))
    mine = known[user].indices
    added = set((InteractionEdit("add", 0.4, data.train, known, "bandwagon").edited(5)[0] - data.train)[user].indices)
    head = [i for i in np.lexsort((np.arange(data.n_items), -popularity)) if i not in mine][:int(np.ceil(k[user] / 2))]
    assert set(head) <= added
    assert (data.train != train).nnz == 0


@pytest.fixture(scope="module")
def graph_runs(tmp_path_factory, synthetic_dir, synthetic_run):
    """lightgcn and vbpr trained one epoch on the built-in synthetic data, plus the shared bprmf."""
    from robustrec.checkpoints import save_run
    from robustrec.data import load_dataset
    from robustrec.training import TrainConfig, Trainer

    root = tmp_path_factory.mktemp("graph-runs")
    data = load_dataset("synthetic", synthetic_dir)
    runs = {}
    for name in ("lightgcn", "vbpr"):
        config = TrainConfig(model=name, epochs=1, batch_size=1024, lr=0.01, data_dir=str(synthetic_dir))
        model = build_model(name, data)
        runs[name] = save_run(root / f"{name}-synthetic", model, config, data, Trainer(config).fit(model, data))
    runs["bprmf"] = synthetic_run("bprmf")
    return runs


def test_perturb_interactions_from_the_cli(graph_runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, "perturb", "interactions", graph_runs["lightgcn"], graph_runs["bprmf"],
                             "--rate", "0,0.3", "--repeats", "2", "--report-dir", tmp_path, "-q", "--threads", "1")
    assert code == 0, out + err
    (path,) = tmp_path.glob("interactions-drop-*.json")
    report = json.loads(path.read_text())
    graph, flat = report["checkpoints"]
    assert all(t["metrics"] == graph["clean"] for t in graph["levels"][0]["trials"])  # rate 0: identity
    assert any(t["metrics"] != graph["clean"] for t in graph["levels"][1]["trials"])  # the graph moved it
    assert flat["levels"] == [] and flat["unaffected"].startswith("unaffected by construction")
    assert report["settings"]["masking"] == "evaluation masks the original training interactions"
    code, out, err = run_cli(capsys, "perturb", "interactions", graph_runs["lightgcn"], "--mode", "add",
                             "--profile", "bandwagon", "--rate", "0.2", "--repeats", "1", "--report-dir", tmp_path,
                             "-q", "--threads", "1")
    assert code == 0 and len(list(tmp_path.glob("interactions-add-*.json"))) == 1
    assert_one_line_error(*run_cli(capsys, "perturb", "interactions", graph_runs["lightgcn"], "--mode", "swap",
                                   "--report-dir", tmp_path / "none"), "--mode")


def _copy_example(target: Path, kind: str) -> Path:
    """The example plug-in under another kind name (one process may load each kind name once)."""
    target.write_text(EXAMPLE.read_text(encoding="utf-8").replace('"zero-text"', f'"{kind}"'), encoding="utf-8")
    return target


def test_user_plugin_end_to_end(graph_runs, tmp_path, capsys):
    plugin = _copy_example(tmp_path / "my_stress.py", "myedit")
    code, out, err = run_cli(capsys, "perturb", "myedit", graph_runs["vbpr"], graph_runs["lightgcn"], "--rate",
                             "0.5", "--repeats", "2", "--report-dir", tmp_path / "r", "-q", "--plugins", plugin)
    assert code == 0, out + err
    (path,) = (tmp_path / "r").glob("myedit-*.json")
    vbpr, lightgcn = json.loads(path.read_text())["checkpoints"]
    assert any(t["metrics"] != vbpr["clean"] for t in vbpr["levels"][0]["trials"])
    assert "unaffected" in lightgcn


# --- plug-ins in a study -----------------------------------------------------------------------


def test_study_with_plugins(tmp_path, synthetic_dir):
    from robustrec.studies.execute import InlineExecutor, run_study
    from robustrec.studies.spec import load_study

    _copy_example(tmp_path / "zero_text.py", "study-zero-text")
    text = (f'name = "plug"\ndata_dir = "{synthetic_dir}"\ndatasets = ["synthetic"]\nmodels = ["vbpr"]\n'
            f'strategies = ["plain"]\nplugins = ["zero_text.py"]\n[train]\nepochs = 1\nbatch_size = 2048\n'
            f'[[stress]]\nkind = "study-zero-text"\nrate = [0.5]\nrepeats = 1\n')
    (tmp_path / "study.toml").write_text(text)
    manifest = run_study(load_study(tmp_path / "study.toml"), tmp_path / "out", InlineExecutor(threads=1))
    (cell,) = [c for c in manifest.cells.values() if c.kind == "stress"]
    assert cell.state == "done", cell.error
    assert cell.spec["plugin"]["path"] == str((tmp_path / "zero_text.py").resolve())
    first = cell.spec["plugin"]["sha256"]
    with open(tmp_path / "zero_text.py", "a") as handle:
        handle.write("\n# edited\n")
    again = run_study(load_study(tmp_path / "study.toml"), tmp_path / "out", InlineExecutor(threads=1))
    (cell,) = [c for c in again.cells.values() if c.kind == "stress"]
    assert cell.spec["plugin"]["sha256"] != first and cell.state == "done" and cell.attempts == 1
    (tmp_path / "study.toml").write_text(text.replace("zero_text.py", "gone.py"))
    with pytest.raises(ConfigError, match="gone.py"):
        load_study(tmp_path / "study.toml")


def test_entry_point_kinds_register(monkeypatch):
    """An installed package's entry point in the group robustrec.stresses adds its kind."""
    import importlib.metadata
    from dataclasses import make_dataclass

    from robustrec.studies.stresses import StressSpec, register_stress
    from robustrec.studies.stresses import registry

    class Point:
        name, value = "pkgstress", "somepkg.stress:Spec"

        @staticmethod
        def load():
            return register_stress(make_dataclass("Spec", [], bases=(StressSpec,), namespace={"kind": "pkgstress"}))

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [Point] if group == "robustrec.stresses"
                        else [])
    monkeypatch.setitem(registry._STATE, "entry_points", False)
    try:
        kinds = available_stresses()
        assert kinds["pkgstress"].source.startswith("entry point pkgstress")
    finally:
        registry._KINDS.pop("pkgstress", None)
