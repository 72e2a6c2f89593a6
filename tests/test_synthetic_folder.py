"""The built-in synthetic dataset on disk: content, real text features, reference captions."""

import numpy as np
import pytest

from robustrec.captioning.cache import CaptionCache
from robustrec.data import load_dataset
from robustrec.data.content import load_item_images, load_item_texts
from robustrec.data.synthetic import SyntheticSpec
from robustrec.synthetic.folder import write_synthetic


def test_folder_holds_content_and_encoder_features(synthetic_dir):
    data = load_dataset("synthetic", synthetic_dir)
    folder = synthetic_dir / "synthetic"
    assert data.features["text"].shape == (data.n_items, 384)
    texts = load_item_texts(folder, "synthetic", data.n_items)
    assert len(texts) == data.n_items and all(texts.values())
    assert len(load_item_images(folder, "synthetic")) == data.n_items
    from robustrec.features.text import SentenceTextEncoder

    again = SentenceTextEncoder().encode([texts[3], texts[500]])
    np.testing.assert_allclose(data.features["text"][[3, 500]], again, atol=1e-5)


def test_reference_captions_match_the_dataset_fingerprint(synthetic_dir):
    data = load_dataset("synthetic", synthetic_dir)
    path = synthetic_dir / "synthetic" / "captions" / "synthetic-reference.json"
    cache = CaptionCache.load(path, captioner_id="synthetic-reference", dataset="synthetic",
                              fingerprint=data.fingerprint())
    assert len(cache.captions) == data.n_items


def test_loading_twice_gives_the_same_data(synthetic_dir):
    assert load_dataset("synthetic", synthetic_dir).fingerprint() == \
        load_dataset("synthetic", synthetic_dir).fingerprint()


def test_failure_leaves_nothing_behind(tmp_path, monkeypatch):
    import robustrec.synthetic.folder as module

    class Broken:
        def encode(self, texts):
            raise RuntimeError("encoder exploded")

    monkeypatch.setattr(module, "_text_encoder", lambda: Broken())
    with pytest.raises(RuntimeError):
        write_synthetic(tmp_path / "synthetic", SyntheticSpec(n_users=50, n_items=30))
    assert list(tmp_path.iterdir()) == []
