"""Synthetic item texts, images and reference captions: deterministic and loadable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustrec.captioning.cache import CaptionCache
from robustrec.data.content import load_item_images, load_item_texts
from robustrec.synthetic.content import (
    REFERENCE_CAPTIONER,
    synthetic_item_texts,
    write_synthetic_content,
)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_files(tmp_path: Path) -> None:
    factors = np.random.default_rng(0).standard_normal((30, 6))
    texts_a = write_synthetic_content(tmp_path / "a" / "syn", "syn", factors, 7, "fp")
    texts_b = write_synthetic_content(tmp_path / "b" / "syn", "syn", factors, 7, "fp")
    assert texts_a == texts_b == synthetic_item_texts(factors, 7)
    assert _files(tmp_path / "a" / "syn") == _files(tmp_path / "b" / "syn")
    write_synthetic_content(tmp_path / "c" / "syn", "syn", factors, 8, "fp")
    assert _files(tmp_path / "a" / "syn") != _files(tmp_path / "c" / "syn")


def test_written_content_loads(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "syn"
    factors = np.random.default_rng(1).standard_normal((12, 4))
    texts = write_synthetic_content(folder, "syn", factors, 0, "sha256:x")
    assert load_item_texts(folder, "syn", 12) == texts
    images = load_item_images(folder, "syn")
    assert sorted(images) == list(range(12))
    with Image.open(images[0]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    cache = CaptionCache.load(folder / "captions" / "synthetic-reference.json",
                              captioner_id=REFERENCE_CAPTIONER, dataset="syn", fingerprint="sha256:x")
    assert sorted(cache.captions) == list(range(12)) and "picture of a" in cache.captions[0]


def test_similar_factors_give_similar_texts() -> None:
    base = np.random.default_rng(2).standard_normal((1, 8))
    factors = np.vstack([base, base * 1.01, -base])
    texts = synthetic_item_texts(factors, 3)
    assert texts[0] == texts[1] and texts[0] != texts[2]
