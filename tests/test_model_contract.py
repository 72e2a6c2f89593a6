"""The contract every registered model must pass (docs/design.md §5)."""

import numpy as np
import pytest
import torch

from robustrec.checkpoints import load_model, save_run
from robustrec.evaluation import full_ranking
from robustrec.models import available_models, build_model
from robustrec.training import Trainer, TrainConfig

from resume_helpers import KillAfter, assert_same_fit

MODEL_NAMES = list(available_models())
#: models with nothing to learn (``trainable = False``): their own rules are at the end of the file
FITTED_NAMES = [n for n, c in available_models().items() if not c.trainable]
TRAINABLE_NAMES = [n for n in MODEL_NAMES if n not in FITTED_NAMES]
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


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_scores_shape_and_eval_determinism(name, trained, small_data):
    model, _, _ = trained(name)
    model.eval()
    users = torch.tensor([0, 5, 17])
    with torch.no_grad():
        first, second = model.full_scores(users), model.full_scores(users)
    assert first.shape == (3, small_data.n_items)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


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
def test_same_seed_same_result(name, small_data, short_run):
    runs = [short_run(name)[0], _train(name, small_data, epochs=2, seed=3)[0]]
    users = torch.arange(10)
    with torch.no_grad():
        assert torch.equal(runs[0].eval().full_scores(users), runs[1].eval().full_scores(users))


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


@pytest.mark.parametrize("name", TRAINABLE_NAMES)
def test_embedding_tables_are_parameters(name, trained):
    model, _, _ = trained(name)
    tables = model.embedding_tables()
    assert tables, "a model must expose at least one learnable embedding table"
    own = {id(p) for p in model.parameters()}
    assert all(id(t) in own and t.requires_grad for t in tables.values())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_feature_change_changes_scores_iff_used_at_inference(name, trained, small_data):
    model, _, _ = trained(name)
    if not model.multimodal:
        assert not model.features_at_inference
        return
    users = torch.arange(20)
    model.eval()
    with torch.no_grad():
        before = model.full_scores(users)
    rng = np.random.default_rng(0)
    original = {m: f.clone() for m, f in model.features().items()}
    changed = {m: rng.normal(size=tuple(f.shape)).astype(np.float32) for m, f in original.items()}
    model.set_item_features(changed)
    with torch.no_grad():
        after = model.full_scores(users)
    model.set_item_features({m: f.numpy() for m, f in original.items()})
    with torch.no_grad():
        restored = model.full_scores(users)
    assert torch.allclose(restored, before, atol=1e-5)
    if model.features_at_inference:
        assert not torch.allclose(before, after)
    else:
        assert torch.equal(before, after)


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if available_models()[n].multimodal])
def test_wrong_feature_shape_rejected(name, trained):
    from robustrec.errors import DataError

    model, _, _ = trained(name)
    bad = {m: np.zeros((f.shape[0] + 1, f.shape[1]), np.float32) for m, f in model.features().items()}
    with pytest.raises(DataError):
        model.set_item_features(bad)


# --- models with nothing to learn (``trainable = False``, robustrec/models/fitted.py) -----------
@pytest.mark.parametrize("name", FITTED_NAMES)
def test_fitted_model_has_nothing_to_learn(name, trained, small_data):
    """No parameters, no embedding tables, an empty checkpoint, one recorded epoch, and a loss
    that refuses in one line (so flatness, attacks and gradient steps refuse too)."""
    from robustrec.errors import ConfigError

    model, result, _ = trained(name)
    assert list(model.parameters()) == [] and model.embedding_tables() == {}
    assert model.state_dict() == {}
    assert [r.epoch for r in result.history] == [1] and result.best_epoch == 1
    with pytest.raises(ConfigError, match="nothing to learn"):
        model.loss(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))


@pytest.mark.parametrize("name", FITTED_NAMES)
@pytest.mark.parametrize("strategy", [dict(mg=True), dict(step="sam", sam_rho=0.05), dict(adversarial="amr")])
def test_fitted_model_refuses_step_strategies(name, strategy):
    from robustrec.errors import ConfigError

    with pytest.raises(ConfigError, match="nothing to learn"):
        TrainConfig(model=name, **strategy).validate()
