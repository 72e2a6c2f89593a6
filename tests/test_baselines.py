"""Baselines (pop, itemknn, itemknncbf): what they score, and the study's "does not beat" mark."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from robustrec.data.dataset import InteractionData
from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.studies.baselines import beats, mark_rows


def _data(train_rows, n_items, features=None) -> InteractionData:
    users = [u for u, items in enumerate(train_rows) for _ in items]
    items = [i for row in train_rows for i in row]
    shape = (len(train_rows), n_items)
    train = sp.csr_matrix((np.ones(len(items), np.float32), (users, items)), shape=shape)
    empty = sp.csr_matrix(shape, dtype=np.float32)
    return InteractionData("tiny", shape[0], n_items, train, empty, empty, features or {})


def test_pop_ranks_by_training_count_with_ties_by_item_id():
    data = _data([[0, 3], [3, 1], [1, 3, 4]], n_items=5)  # counts: 1, 2, 0, 3, 1
    scores = build_model("pop", data).full_scores(torch.tensor([0, 2]))
    assert torch.equal(scores[0], scores[1])
    assert scores[0].argsort(descending=True, stable=True).tolist() == [3, 1, 0, 4, 2]
    assert len(set(scores[0].tolist())) == 5  # no two items tie


def test_itemknn_is_the_cosine_of_item_columns_over_the_k_nearest():
    rows = [[0, 1], [0, 1, 2], [1, 2], [2, 3], [0, 3]]
    data = _data(rows, n_items=4)
    train = data.train.toarray()
    norms = np.sqrt(train.sum(0))
    cosine = (train.T @ train) / (norms[:, None] * norms[None, :] + 1.0)
    np.fill_diagonal(cosine, 0)
    model = build_model("itemknn", data, {"k": 2, "shrink": 1.0})
    weights = np.zeros_like(cosine)
    for j in range(4):  # the two largest positive similarities of each item (ties: lower id)
        for i in sorted(range(4), key=lambda i: (-cosine[j, i], i))[:2]:
            weights[j, i] = cosine[j, i] if cosine[j, i] > 0 else 0
    expected = train @ weights
    with torch.no_grad():
        got = model.full_scores(torch.arange(5)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_itemknncbf_averages_modality_cosines_and_follows_new_features():
    rng = np.random.default_rng(0)
    features = {"text": rng.normal(size=(6, 4)).astype(np.float32),
                "audio": 100 * rng.normal(size=(6, 3)).astype(np.float32)}  # its width and scale must not matter
    data = _data([[0, 1], [2], [3, 4, 5]], n_items=6, features=features)
    model = build_model("itemknncbf", data, {"k": 5})
    unit = {m: f / np.linalg.norm(f, axis=1, keepdims=True) for m, f in features.items()}
    sim = (unit["text"] @ unit["text"].T + unit["audio"] @ unit["audio"].T) / 2
    np.fill_diagonal(sim, 0)
    expected = data.train.toarray() @ np.where(sim > 0, sim, 0)
    with torch.no_grad():
        before = model.full_scores(torch.arange(3))
    np.testing.assert_allclose(before.numpy(), expected, rtol=1e-5, atol=1e-6)
    model.set_item_features({**features, "text": rng.normal(size=(6, 4)).astype(np.float32)})
    with torch.no_grad():
        assert not torch.allclose(model.full_scores(torch.arange(3)), before)


def test_bad_parameters_are_one_line_errors():
    data = _data([[0, 1]], n_items=3)
    with pytest.raises(ConfigError, match="k >= 1"):
        build_model("itemknn", data, {"k": 0})
    with pytest.raises(ConfigError, match="shrink"):
        build_model("itemknn", data, {"shrink": -1})


# --- the study mark ---------------------------------------------------------------------------------


def test_identical_results_do_not_beat_and_clear_gains_do():
    assert beats({"0": 0.1, "1": 0.2}, {"0": 0.1, "1": 0.2})["beats"] is False
    same = beats({"0": 0.1, "1": 0.2}, {"0": 0.1, "1": 0.2})
    assert same["mean_difference"] == 0 and same["p_value"] == 1
    assert beats({"0": 0.30, "1": 0.31, "2": 0.32}, {"0": 0.10, "1": 0.10, "2": 0.11})["beats"] is True
    # a higher mean within the seeds' spread is not "beyond seed noise"
    assert beats({"0": 0.30, "1": 0.05, "2": 0.20}, {"0": 0.10, "1": 0.10, "2": 0.10})["beats"] is False
    assert beats({"0": 0.05, "1": 0.06}, {"0": 0.10, "1": 0.11})["beats"] is False
    assert beats({"0": 0.9}, {"0": 0.1})["beats"] is None  # one seed: seed noise unknown
    assert beats({"0": 0.2, "1": 0.3}, {"0": 0.1, "1": 0.2})["beats"] is True  # no spread at all


def test_mark_rows_names_the_baselines_a_row_does_not_beat():
    def row(model, strategy, values, dataset="d"):
        return {"dataset": dataset, "model": model, "strategy": strategy,
                "per_seed": {str(s): v for s, v in enumerate(values)}}

    rows = [row("vbpr", "plain", [0.30, 0.31, 0.32]), row("vbpr", "mg", [0.12, 0.10, 0.11]),
            row("pop", "baseline", [0.11, 0.11, 0.11]), row("itemknn", "baseline", [0.2, 0.2, 0.2]),
            row("vbpr", "plain", [0.01, 0.01], dataset="other")]
    mark_rows(rows, ["pop", "itemknn"])
    plain, mg, pop, knn, other = rows
    assert plain["not_beaten"] == [] and plain["mark"] == ""
    assert mg["not_beaten"] == ["pop", "itemknn"] and mg["mark"] == "≤ pop ≤ itemknn"
    assert pop["baseline"] and pop["mark"] == "" and "not_beaten" not in pop
    assert other["not_beaten"] == [] and other["vs_baselines"] == {}  # no baseline on that dataset


# --- the study file ------------------------------------------------------------------------------


STUDY = """
name = "b"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf"]
strategies = ["plain", "mg"]
seeds = [0, 1]
"""


def _load(tmp_path, synthetic_dir, extra: str = ""):
    from robustrec.studies.spec import load_study

    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)) + extra)
    return load_study(path)


def test_pop_is_the_default_baseline_and_an_empty_list_turns_it_off(tmp_path, synthetic_dir):
    from robustrec.studies.plan import Manifest, plan

    study = _load(tmp_path, synthetic_dir)
    assert study.baselines == ["pop"]
    ids = [c.id for c in plan(study, Manifest(tmp_path, study)) if c.spec["strategy"] == "baseline"]
    assert ids == ["train/synthetic/pop/baseline/g0/s0", "train/synthetic/pop/baseline/g0/s1"]
    off = _load(tmp_path, synthetic_dir, "baselines = []\n")
    assert off.baselines == [] and all(c.spec["strategy"] != "baseline" for c in plan(off, Manifest(tmp_path, off)))


@pytest.mark.parametrize("extra, message", [
    ('baselines = ["lightgcn"]\n', "unknown baseline 'lightgcn'"),
    ('baselines = ["pop", "pop"]\n', "twice"),
    ('baselines = "pop"\n', "must be a list"),
])
def test_bad_baselines_are_one_line_errors(tmp_path, synthetic_dir, extra, message):
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, synthetic_dir, extra)


def test_a_fitted_model_in_models_is_refused(tmp_path, synthetic_dir):
    from robustrec.studies.spec import load_study

    path = tmp_path / "s.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)).replace('["bprmf"]', '["bprmf", "pop"]'))
    with pytest.raises(ConfigError, match="list it in baselines"):
        load_study(path)


def test_a_stress_may_list_a_baseline(tmp_path, synthetic_dir):
    from robustrec.studies.plan import Manifest, plan

    stress = '\n[[stress]]\nkind = "noise"\nsigma = [1e-2]\nrepeats = 1\nmodels = ["bprmf", "pop"]\n'
    study = _load(tmp_path, synthetic_dir, 'baselines = ["pop"]\n' + stress)
    assert study.stresses[0].models == ["bprmf", "pop"]
    stress_cells = [c for c in plan(study, Manifest(tmp_path, study)) if c.kind == "stress"]
    assert [c.spec["models"] for c in stress_cells] == [["bprmf", "bprmf", "pop"]] * 2
    assert stress_cells[0].spec["strategies"] == ["plain", "mg", "baseline"]
    default = _load(tmp_path, synthetic_dir, stress.replace(', "pop"', ""))
    assert all("pop" not in c.spec["models"] for c in plan(default, Manifest(tmp_path, default)) if c.kind == "stress")
