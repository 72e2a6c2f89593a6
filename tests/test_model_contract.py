"""The contract every registered model must pass (docs/design.md §5).

The rules themselves live in ``robustrec.models.contract`` (``robustrec models check`` runs the
same ones on a user's class); here every rule runs on every built-in model, plus what needs the
trainer and run folders: learning the planted structure, bitwise resume, save and load.
"""

import numpy as np
import pytest
import torch

from robustrec.checkpoints import load_model, save_run
from robustrec.evaluation import full_ranking
from robustrec.models import available_models, build_model
from robustrec.models.contract import RULES, Subject, run_rule, tiny_world
from robustrec.training import Trainer, TrainConfig

from resume_helpers import KillAfter, assert_same_fit

MODEL_NAMES = list(available_models())
FAST = dict(batch_size=256, lr=0.01, patience=100)


def _train(name, data, epochs, seed=0):
    model = build_model(name, data, seed=seed)
    config = TrainConfig(model=name, epochs=epochs, seed=seed, **FAST)
    result = Trainer(config).fit(model, data)
    return model, result, config


@pytest.fixture(scope="module")
def trained(small_data):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _train(name, small_data, epochs=25)
        return cache[name]

    return get


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_learns_above_chance(name, trained, small_data):
    _, result, _ = trained(name)
    # a random ranking of the ~136 unseen items puts ~20/136 of held-out items in the top 20
    chance = 20 / (small_data.n_items - small_data.train.sum(1).mean())
    assert result.test["recall@20"] > 2.0 * chance, result.test.summary()


@pytest.fixture(scope="module")
def short_run(small_data):
    """(model, result) of a 2-epoch fit with seed 3, shared by the determinism tests."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _train(name, small_data, epochs=2, seed=3)[:2]
        return cache[name]

    return get


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_resume_is_bitwise(name, small_data, short_run, tmp_path):
    """Interrupted after epoch 1 and resumed = uninterrupted: nothing a model carries from one
    epoch to the next (RNG draws, ``pre_epoch`` state) escapes the saved training state."""
    config = TrainConfig(model=name, epochs=2, seed=3, **FAST)
    state_dir = tmp_path / "state"
    model = build_model(name, small_data, seed=3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, [KillAfter(1)]).fit(model, small_data, state_dir)
    model = build_model(name, small_data, seed=3)
    resumed = model, Trainer(config).fit(model, small_data, state_dir)
    assert_same_fit(short_run(name), resumed)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_load_round_trip(name, trained, small_data, tmp_path):
    model, result, config = trained(name)
    run_dir = save_run(tmp_path / "run", model, config, small_data, result)
    loaded, _, _ = load_model(run_dir, data=small_data)
    users = torch.arange(small_data.n_users)
    with torch.no_grad():
        assert torch.equal(model.eval().full_scores(users), loaded.full_scores(users))
    assert full_ranking(loaded, small_data, "test").summary() == result.test.summary()


@pytest.fixture(scope="module")
def contract_world():
    return tiny_world()


@pytest.mark.parametrize("rule", [rule for rule, _ in RULES])
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_contract_rule(name, rule, contract_world):
    """Finite differentiable loss, ranker shape, embedding tables, features change scores iff
    used at inference, honest loss_reads_features, copy and restore, device move, determinism."""
    ok, reason = run_rule(dict(RULES)[rule], Subject(available_models()[name], contract_world))
    assert ok, f"{name}: {rule}: {reason}"
