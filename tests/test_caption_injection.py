"""CaptionInjection: placement, seeded item draws, partial re-encoding, identity and no mutation."""

import math
import zlib

import numpy as np
import pytest
import torch

from robustrec.features.text import ItemTextEmbeddings
from robustrec.errors import ConfigError
from robustrec.evaluation import full_ranking
from robustrec.models import build_model
from robustrec.perturbations.caption import CaptionInjection, MemoTextEncoder, insert_caption
from robustrec.studies.caption_study import make_text_embeddings


class HashEncoder:
    """Deterministic fake encoder: a text's vector is seeded by its CRC; counts encoded texts."""

    encoder_id = "test:hash"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.calls: list[str] = []

    def encode(self, texts):
        self.calls.extend(texts)
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


def make_injection(n_items, rate, dim=16, captioned=None, position="random-sentence"):
    texts = [f"Item {i}. Brand {i % 7}. A fine thing." for i in range(n_items)]
    captioned = range(n_items) if captioned is None else captioned
    encoder = HashEncoder(dim)
    embeddings = ItemTextEmbeddings(encoder, texts, clean=encoder.encode(texts))
    encoder.calls.clear()
    return CaptionInjection(rate, {i: f"a photo of item {i}" for i in captioned}, texts, embeddings, position), encoder


def test_caption_positions():
    text = "Soft bib. Nimbus. Feeding, Toys. Washable cotton."
    assert insert_caption(text, "a red bib", None) == text + " a red bib"
    assert insert_caption(text, "a red bib", 0.0) == "a red bib. " + text
    assert insert_caption(text, "a red bib", 0.45) == "Soft bib. Nimbus. a red bib. Feeding, Toys. Washable cotton."
    assert insert_caption("no final stop", "a cap", None) == "no final stop. a cap"
    assert insert_caption("", "a cap", 0.7) == "a cap"


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_rate_outside_unit_interval_is_refused(rate):
    with pytest.raises(ConfigError, match="--rate must be in"):
        make_injection(10, rate)


def test_injection_statistics():
    n = 4000
    injection, _ = make_injection(n, 0.5)
    counts = [len(injection.draw(seed)[0]) for seed in range(5)]
    bound = 5 * math.sqrt(n * 0.25)  # 5 binomial standard deviations
    assert all(abs(c - n / 2) < bound for c in counts), counts
    assert np.array_equal(injection.draw(3)[0], injection.draw(3)[0])
    assert not np.array_equal(injection.draw(3)[0], injection.draw(4)[0])
    assert injection.trial_record(3) == {"changed_items": counts[3], "drawn_without_caption": 0}


def test_items_without_caption_are_never_chosen_but_counted():
    n = 2000
    injection, _ = make_injection(n, 0.3, captioned=range(0, n, 2))
    chosen, _, missing = injection.draw(11)
    assert len(chosen) and np.all(chosen % 2 == 0) and np.all(missing % 2 == 1)
    assert abs(len(missing) - 0.3 * n / 2) < 5 * math.sqrt(n / 2 * 0.21)
    assert injection.trial_record(11)["drawn_without_caption"] == len(missing)


def test_only_changed_items_are_re_encoded():
    injection, encoder = make_injection(300, 0.1)
    edited = injection.edited_texts(5)
    features, changed = injection.embeddings.with_texts(edited)
    assert changed == sorted(edited) and sorted(encoder.calls) == sorted(edited.values())
    clean = injection.embeddings.clean
    unchanged = np.setdiff1d(np.arange(300), changed)
    assert np.array_equal(features[unchanged], clean[unchanged])
    assert not np.allclose(features[changed], clean[changed])
    assert all(f"a photo of item {i}" in edited[i] for i in changed)


def test_memo_encoder_encodes_each_text_once():
    inner = HashEncoder(4)
    memo = MemoTextEncoder(inner)
    first = memo.encode(["a", "b", "a"])
    second = memo.encode(["b", "c"])
    assert inner.calls == ["a", "b", "c"] and memo.encoded == 3
    assert np.array_equal(first[1], second[0]) and first.shape == (3, 4)


def test_encoder_dimension_must_match_text_features():
    with pytest.raises(ConfigError, match="8-d vectors but the models' text features are 16-d"):
        make_text_embeddings(HashEncoder(8), ["x"] * 3, np.zeros((3, 16), dtype=np.float32))


@pytest.fixture(scope="module")
def vbpr_and_injection(small_data):
    texts = [f"Item {i}. A thing." for i in range(small_data.n_items)]
    encoder = HashEncoder(small_data.features["text"].shape[1])
    clean = small_data.features["text"]
    clean_copy = clean.copy()
    embeddings = ItemTextEmbeddings(encoder, texts, clean=clean)
    torch.manual_seed(0)
    model = build_model("vbpr", small_data).eval()
    captions = {i: f"a picture of thing {i}" for i in range(small_data.n_items)}
    return model, small_data, embeddings, captions, clean_copy


def test_rate_zero_is_the_identity(vbpr_and_injection):
    model, data, embeddings, captions, _ = vbpr_and_injection
    injection = CaptionInjection(0.0, captions, embeddings.texts, embeddings)
    clean = full_ranking(model, data, "test").summary()
    assert full_ranking(injection.apply(model, 1), data, "test").summary() == clean
    assert injection.trial_record(1) == {"changed_items": 0, "drawn_without_caption": 0}


def test_input_model_and_clean_features_are_not_mutated(vbpr_and_injection):
    model, data, embeddings, captions, clean_copy = vbpr_and_injection
    users = torch.arange(data.n_users)
    with torch.no_grad():
        before = model.full_scores(users).clone()
    text_before = model.feat_text.clone()
    injection = CaptionInjection(0.5, captions, embeddings.texts, embeddings)
    perturbed = injection.apply(model, 7)
    with torch.no_grad():
        assert torch.equal(model.full_scores(users), before)
        assert not torch.allclose(perturbed.full_scores(users), before)
    assert torch.equal(model.feat_text, text_before)
    assert np.array_equal(data.features["text"], clean_copy) and np.array_equal(embeddings.clean, clean_copy)
    assert torch.equal(perturbed.feat_image, model.feat_image)
    changed = (perturbed.feat_text != model.feat_text).any(dim=1).sum().item()
    assert changed == injection.trial_record(7)["changed_items"] > 0


def test_id_only_models_are_unaffected_by_construction(small_data, vbpr_and_injection):
    _, _, embeddings, captions, _ = vbpr_and_injection
    injection = CaptionInjection(0.5, captions, embeddings.texts, embeddings)
    assert injection.unaffected_reason(build_model("lightgcn", small_data)) is not None
    assert injection.unaffected_reason(vbpr_and_injection[0]) is None


def _text_models():
    from robustrec.models.registry import available_models

    return sorted(name for name, cls in available_models().items()
                  if cls.features_at_inference and cls.multimodal)


@pytest.mark.parametrize("name", _text_models())
def test_captions_reach_every_text_model_and_leave_the_original_alone(name, small_data, vbpr_and_injection):
    _, _, embeddings, captions, _ = vbpr_and_injection
    model = build_model(name, small_data).eval()
    users = torch.arange(small_data.n_users)
    with torch.no_grad():
        before = model.full_scores(users).clone()
        perturbed = CaptionInjection(0.5, captions, embeddings.texts, embeddings).apply(model, 3)
        assert not torch.allclose(perturbed.full_scores(users), before)
        assert torch.equal(model.full_scores(users), before)
