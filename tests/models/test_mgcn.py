"""MGCN specifics: the behaviour-guided purifier, the fuser over any modalities, InfoNCE."""

import pytest
import torch
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models import build_model
from robustrec.models.mgcn import info_nce


def test_purifier_only_selects_what_the_id_embedding_holds(small_data):
    model = build_model("mgcn", small_data, {"n_layers": 0}, seed=0)
    with torch.no_grad():
        model.item_embedding[:5] = 0.0
        n_users = small_data.n_users
        for m in model.feature_names:
            items = model.modality_view(m)[n_users:]
            assert torch.equal(items[:5], torch.zeros_like(items[:5]))  # features cannot add signal
            assert (items.abs() <= model.item_embedding.abs()).all()  # gate in (0, 1)


def test_single_modality_side_view_is_half_the_modality_view(small_data):
    model = build_model("mgcn", small_data, seed=0, modalities=("text",))
    with torch.no_grad():
        _, side = model.views()
        view = model.modality_view("text")
    # one modality: attention 1, common = view, specific part 0, side = (0 + common) / 2
    assert torch.allclose(side, view / 2, atol=1e-6)


def test_fuser_divides_by_modalities_plus_one(small_data):
    model = build_model("mgcn", small_data, seed=0)
    with torch.no_grad():
        for gate in model.preferences.values():  # specific parts gated to 0
            gate[0].weight.zero_()
            gate[0].bias.fill_(-1e4)
        content, side = model.views()
        views = [model.modality_view(m) for m in model.feature_names]
        attention = torch.softmax(torch.cat([model.query(v) for v in views], 1), 1)
        common = sum(attention[:, i:i + 1] * v for i, v in enumerate(views))
    assert torch.allclose(side, common / (len(views) + 1), atol=1e-6)


def test_info_nce_matches_the_ratio_of_exponentials():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(12, 8, generator=gen), torch.randn(12, 8, generator=gen)
    ua, ub = F.normalize(a, dim=1), F.normalize(b, dim=1)
    pos = torch.exp((ua * ub).sum(1) / 0.2)
    expected = -torch.log(pos / torch.exp(ua @ ub.T / 0.2).sum(1)).mean()
    assert torch.allclose(info_nce(a, b, 0.2), expected, atol=1e-5)
    assert torch.isfinite(info_nce(a, -a, 0.01))  # tiny temperature: no underflow to log(0)


def test_contrastive_term_adds_to_the_loss(small_data):
    users, pos, neg = torch.arange(16), torch.arange(16), torch.arange(16) + 30
    plain = build_model("mgcn", small_data, {"cl_weight": 0.0}, seed=0).loss(users, pos, neg)
    with_cl = build_model("mgcn", small_data, {"cl_weight": 0.5}, seed=0).loss(users, pos, neg)
    assert with_cl > plain


def test_bad_temperature_rejected(small_data):
    with pytest.raises(ConfigError, match="temperature"):
        build_model("mgcn", small_data, {"temperature": 0.0})
