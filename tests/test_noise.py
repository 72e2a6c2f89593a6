"""GaussianEmbeddingNoise, the perturbation contract, and the flatness measures."""

import numpy as np
import pytest
import torch

from robustrec.errors import ConfigError
from robustrec.evaluation import full_ranking
from robustrec.flatness import default_rho, noise_sensitivity, rho_sharpness, training_loss, training_triplets
from robustrec.models import build_model
from robustrec.perturbations import GaussianEmbeddingNoise, trial_seeds
from robustrec.training import TrainConfig, Trainer


@pytest.fixture(scope="module")
def trained(small_data):
    model = build_model("lightgcn", small_data, seed=1)
    Trainer(TrainConfig(epochs=3, batch_size=256, lr=0.01)).fit(model, small_data)
    return model


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bitwise_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k].view(torch.uint8) if a[k].is_floating_point()
                                                    else a[k], b[k].view(torch.uint8) if b[k].is_floating_point()
                                                    else b[k]) for k in a)


def test_zero_sigma_is_identity(trained, small_data):
    clean = full_ranking(trained, small_data)
    perturbed = full_ranking(GaussianEmbeddingNoise(0.0).apply(trained, seed=5), small_data)
    for key, values in clean.per_user.items():
        assert np.array_equal(values, perturbed.per_user[key]), key


def test_input_model_is_never_mutated(trained):
    before = _state(trained)
    copy = GaussianEmbeddingNoise(0.5).apply(trained, seed=3)
    assert _bitwise_equal(before, _state(trained))
    assert not torch.equal(copy.user_embedding, trained.user_embedding)
    assert copy.user_embedding.data_ptr() != trained.user_embedding.data_ptr()


def test_same_seed_same_noise_different_seed_differs(trained):
    noise = GaussianEmbeddingNoise(1e-2)
    a, b, c = noise.apply(trained, 11), noise.apply(trained, 11), noise.apply(trained, 12)
    assert torch.equal(a.item_embedding, b.item_embedding)
    assert not torch.equal(a.item_embedding, c.item_embedding)


def test_noise_has_the_requested_scale(trained):
    sigma = 0.05
    noisy = GaussianEmbeddingNoise(sigma).apply(trained, 0)
    delta = torch.cat([(noisy.user_embedding - trained.user_embedding).ravel(),
                       (noisy.item_embedding - trained.item_embedding).ravel()])
    assert abs(delta.std().item() - sigma) < 0.05 * sigma
    assert abs(delta.mean().item()) < 0.05 * sigma


@pytest.mark.parametrize("target, changed, kept", [("user", "user_embedding", "item_embedding"),
                                                   ("item", "item_embedding", "user_embedding")])
def test_target_touches_only_its_table(trained, target, changed, kept):
    noisy = GaussianEmbeddingNoise(0.1, target).apply(trained, 0)
    assert not torch.equal(getattr(noisy, changed), getattr(trained, changed))
    assert torch.equal(getattr(noisy, kept), getattr(trained, kept))


def test_bad_parameters_are_config_errors(trained):
    for sigma in (-1e-3, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="sigma"):
            GaussianEmbeddingNoise(sigma)
    with pytest.raises(ConfigError, match="target"):
        GaussianEmbeddingNoise(1e-3, "everything")


def test_trial_seeds_are_reproducible_and_distinct():
    assert trial_seeds(0, 10) == trial_seeds(0, 10)
    assert len(set(trial_seeds(0, 10))) == 10
    assert trial_seeds(0, 3) != trial_seeds(1, 3)
    assert trial_seeds(0, 5)[:3] == trial_seeds(0, 3)


def test_flatness_measures_do_not_touch_the_model(trained, small_data):
    triplets = training_triplets(small_data, 512, seed=0)
    again = training_triplets(small_data, 512, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(triplets, again))
    before = _state(trained)
    rises = noise_sensitivity(trained, triplets, 0.05, trial_seeds(0, 4))
    sharp = rho_sharpness(trained, triplets, default_rho(trained, 0.05))
    assert _bitwise_equal(before, _state(trained))
    assert rises.shape == (4,) and np.isfinite(rises).all()
    assert np.array_equal(noise_sensitivity(trained, triplets, 0.0, [1, 2]), [0.0, 0.0])
    # the worst-case direction rises more than random ones at the same distance
    assert sharp > rises.mean()
    assert rho_sharpness(trained, triplets, 0.0) == 0.0
    assert training_loss(trained, triplets) > 0


@pytest.mark.parametrize("name", list(__import__("robustrec.models", fromlist=["x"]).available_models()))
def test_every_model_noise_changes_scores_and_not_the_model(name, small_data):
    """A model that caches scores must not hide the noise; σ = 0 must give identical scores."""
    model = build_model(name, small_data, seed=0).eval()
    users = torch.arange(20)
    before = _state(model)
    with torch.no_grad():
        clean = model.full_scores(users)
        noisy = GaussianEmbeddingNoise(0.1).apply(model, 1).full_scores(users)
        same = GaussianEmbeddingNoise(0.0).apply(model, 1).full_scores(users)
    if not model.trainable:  # a fitted baseline: no tables, "unaffected by construction"
        assert GaussianEmbeddingNoise(0.1).unaffected_reason(model) == f"model {name!r} has no learnable ID embedding table"
        assert torch.equal(clean, noisy)
    else:
        assert GaussianEmbeddingNoise(0.1).unaffected_reason(model) is None
        assert not torch.allclose(clean, noisy)
    assert torch.equal(clean, same)
    assert _bitwise_equal(before, _state(model))
