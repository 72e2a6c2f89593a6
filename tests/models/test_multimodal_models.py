"""Behaviour shared by the multimodal models beyond the contract test."""

import pytest
import torch

from robustrec.data import load_dataset
from robustrec.errors import DataError
from robustrec.models import build_model

MULTIMODAL = ["vbpr", "freedom", "mmgcn", "grcn"]


@pytest.mark.parametrize("name", MULTIMODAL)
def test_dataset_without_features_is_a_data_error(name, baby_dir):
    data = load_dataset("baby", baby_dir)
    assert not data.features
    with pytest.raises(DataError, match="needs at least one item modality.*<modality>_feat.npy"):
        build_model(name, data)


@pytest.mark.parametrize("name", MULTIMODAL)
def test_single_modality_works(name, small_data):
    only_text = small_data.with_features({"text": small_data.features["text"]})
    model = build_model(name, only_text, seed=0)
    assert model.feature_names == ("text",)
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([2, 3]), torch.tensor([4, 5])
    model.train()
    model.pre_epoch()
    assert torch.isfinite(model.loss(users, pos, neg))
    assert model.eval().full_scores(users).shape == (2, small_data.n_items)


def test_vbpr_projects_concatenated_features(small_data):
    model = build_model("vbpr", small_data, seed=0)
    feats = model.features()
    concat = torch.cat([feats[m] for m in model.projection.names], dim=1)
    expected = concat @ model.projection.weight.T + model.projection.bias
    rows = torch.tensor([3, 0, 7])
    assert torch.allclose(model.projection(feats), expected, atol=1e-5)
    assert torch.allclose(model.projection(feats, rows), expected[rows], atol=1e-5)


def test_mmgcn_layers_param_changes_architecture(small_data):
    one = build_model("mmgcn", small_data, {"n_layers": 1})
    three = build_model("mmgcn", small_data, {"n_layers": 3})
    assert len(one.branches["image"].conv) == 1 and len(three.branches["image"].conv) == 3
    assert one.branches["image"].preference.shape[1] == 256  # latent width for image
    assert one.branches["text"].preference.shape[1] == small_data.features["text"].shape[1]


def test_grcn_concat_width_and_routing_refines_users(small_data):
    model = build_model("grcn", small_data, seed=0)
    with torch.no_grad():
        out = model.representations()
    assert out.shape == (small_data.n_users + small_data.n_items, 64 * (1 + len(model.content)))
    # routing changes the user preferences (not a no-op)
    branch, feats = model.content["image"], model.features()
    with torch.no_grad():
        routed, _, _ = branch(feats["image"], model.pattern, 3)
        plain, _, _ = branch(feats["image"], model.pattern, 0)
    assert not torch.allclose(routed[: small_data.n_users], plain[: small_data.n_users])
