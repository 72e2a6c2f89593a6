"""LGMRec specifics: the low-rank hypergraph contrast, memberships, and any modality set."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.models.lgmrec import hyper_contrast


def test_hyper_contrast_equals_the_dense_form():
    g = torch.Generator().manual_seed(0)
    memberships, latent = torch.rand(30, 4, generator=g), torch.randn(4, 8, generator=g)
    anchor = torch.randn(6, 8, generator=g)
    rows = torch.tensor([0, 3, 3, 7, 20, 29])
    everyone = memberships @ latent
    positive = everyone[rows]
    # MMRec's ssl_triple_loss, written out
    a, p, n = F.normalize(anchor), F.normalize(positive), F.normalize(everyone)
    expected = -torch.log(torch.exp((a * p).sum(1) / 0.2) / torch.exp(a @ n.T / 0.2).sum(1)).sum()
    assert torch.allclose(hyper_contrast(anchor, positive, memberships, latent, 0.2), expected, atol=1e-4)


def test_memberships_are_distributions_and_deterministic_at_inference(small_data):
    model = build_model("lgmrec", small_data, seed=0).eval()
    logits = torch.randn(5, model.params.hyper_num)
    first, second = model._memberships(logits), model._memberships(logits)
    assert torch.equal(first, second) and torch.allclose(first.sum(1), torch.ones(5))
    model.train()
    torch.manual_seed(1)
    noisy = model._memberships(logits)  # Gumbel noise, then dropout keeping keep_rate
    assert not torch.allclose(noisy, first)


def test_user_modality_input_is_the_mean_of_their_items(small_data):
    model = build_model("lgmrec", small_data, seed=0)
    items = torch.randn(small_data.n_items, 3)
    means = torch.sparse.mm(model.user_mean, items)
    row = small_data.train[2].indices
    assert torch.allclose(means[2], items[row].mean(0), atol=1e-6)


def _with_audio(data):
    audio = np.random.default_rng(4).normal(size=(data.n_items, 5)).astype(np.float32)
    return data.with_features({**data.features, "audio": audio})


@pytest.mark.parametrize("modalities,pairs", [(("text",), 0), (("image", "text"), 1),
                                              (("image", "text", "audio"), 3)])
def test_contrast_over_every_modality_pair(small_data, modalities, pairs):
    data = _with_audio(small_data)
    users, pos, neg = torch.tensor([0, 1, 2]), torch.tensor([2, 3, 4]), torch.tensor([5, 6, 7])
    losses = []
    for weight in (0.0, 1.0):
        model = build_model("lgmrec", data, seed=0, modalities=list(modalities),
                            params={"cl_weight": weight}).train()
        torch.manual_seed(0)
        losses.append(model.loss(users, pos, neg))
    assert set(model.hyperedges) == set(modalities)
    assert torch.isfinite(losses[1])
    assert (losses[1] > losses[0]) == (pairs > 0)  # the contrast term is positive when it exists


def test_bad_params_are_config_errors(small_data):
    with pytest.raises(ConfigError, match="lgmrec: keep_rate"):
        build_model("lgmrec", small_data, params={"keep_rate": 0})
