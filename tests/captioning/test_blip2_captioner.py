"""Blip2Captioner end to end on a tiny randomly initialised BLIP-2 (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from robustrec.captioning.blip2 import Blip2Captioner
from robustrec.captioning.cache import CaptionCache
from robustrec.data.content import load_item_images
from robustrec.errors import ConfigError


def test_caption_items_skips_bad_images_and_resumes(tiny_blip2_dir: Path, tiny_dataset: Path) -> None:
    captioner = Blip2Captioner(str(tiny_blip2_dir), device="cpu", max_new_tokens=4)
    assert captioner.captioner_id == f"blip2:{tiny_blip2_dir.name}"
    items = load_item_images(tiny_dataset, "tiny")
    cache = CaptionCache.open(tiny_dataset / "c.json", captioner.captioner_id, "tiny", "fp")
    calls: list[tuple[int, int]] = []
    summary = captioner.caption_items(items, cache, progress=lambda d, t: calls.append((d, t)),
                                      batch_size=4)
    assert (summary.captioned, summary.skipped, summary.cached) == (5, 1, 0)
    assert calls == [(4, 6), (6, 6)]
    reloaded = CaptionCache.load(tiny_dataset / "c.json", captioner_id=captioner.captioner_id)
    assert sorted(reloaded.captions) == [0, 1, 2, 3, 4]
    assert all(isinstance(c, str) for c in reloaded.captions.values())
    assert list(reloaded.skipped) == [5] and "unreadable" in reloaded.skipped[5]
    again = captioner.caption_items(items, CaptionCache.open(
        tiny_dataset / "c.json", captioner.captioner_id, "tiny", "fp"))
    assert (again.captioned, again.skipped, again.cached) == (0, 0, 6)


def test_prompt_changes_id_and_is_stripped(tiny_blip2_dir: Path) -> None:
    from PIL import Image

    captioner = Blip2Captioner(str(tiny_blip2_dir), device="cpu", prompt="a photo of",
                               max_new_tokens=3)
    assert captioner.captioner_id.startswith(f"blip2:{tiny_blip2_dir.name}#prompt=")
    captions = captioner.caption_images([Image.new("RGB", (32, 32), (9, 9, 9))] * 2)
    assert len(captions) == 2
    assert not any(c.startswith("a photo of") for c in captions)


def test_non_blip_checkpoint_rejected(tmp_path: Path) -> None:
    from transformers import BertConfig

    BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ConfigError, match="not a BLIP-2 or BLIP"):
        Blip2Captioner(str(tmp_path)).load()


def test_missing_checkpoint_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load captioner"):
        Blip2Captioner(str(tmp_path / "nope")).load()
