"""The LAVIS path without LAVIS: the script runs against a fake `lavis` package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from robustrec.captioning.cache import CaptionCache
from robustrec.captioning.lavis_adapter import LavisCaptioner
from robustrec.data.content import load_item_images
from robustrec.errors import ConfigError, DataError, RobustRecError

FAKE_LAVIS = '''
import torch

class _Model:
    def generate(self, samples, max_length=30):
        images = samples["image"]
        prompt = samples.get("prompt", [""] * len(images))[0]
        return [f"{prompt}fake caption {float(img.mean()):.3f}".strip() for img in images]

def _eval(image):
    return torch.tensor(list(image.getdata()), dtype=torch.float32).mean(0).reshape(3, 1, 1)

def load_model_and_preprocess(name, model_type, is_eval=True, device="cpu"):
    assert name == "blip2_opt", name
    print("LAVIS says hello on stdout")
    return _Model(), {"eval": _eval}, {}
'''


@pytest.fixture()
def fake_lavis_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This interpreter, with a fake `lavis` package first on PYTHONPATH."""
    package = tmp_path / "fake" / "lavis" / "models"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text(FAKE_LAVIS)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))
    return sys.executable


def test_script_writes_a_loadable_cache(fake_lavis_python: str, tiny_dataset: Path) -> None:
    captioner = LavisCaptioner(fake_lavis_python)
    items = load_item_images(tiny_dataset, "tiny")
    cache = CaptionCache.open(tiny_dataset / "l.json", captioner.captioner_id, "tiny", "fp")
    seen: list[tuple[int, int]] = []
    summary = captioner.caption_items(items, cache, progress=lambda d, t: seen.append((d, t)),
                                      batch_size=4)
    assert (summary.captioned, summary.skipped, summary.cached) == (5, 1, 0)
    assert seen == [(4, 6), (6, 6)]
    loaded = CaptionCache.load(tiny_dataset / "l.json", captioner_id="lavis:blip2_opt/pretrain_opt2.7b",
                               dataset="tiny", fingerprint="fp")
    assert sorted(loaded.captions) == [0, 1, 2, 3, 4] and list(loaded.skipped) == [5]
    assert cache.captions == loaded.captions and loaded.captions[0].startswith("fake caption")
    again = captioner.caption_items(items, CaptionCache.open(tiny_dataset / "l.json",
                                                             captioner.captioner_id, "tiny", "fp"))
    assert (again.captioned, again.skipped, again.cached) == (0, 0, 6)


def test_script_failure_is_one_line(tmp_path: Path, tiny_dataset: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "empty"))
    captioner = LavisCaptioner(sys.executable)
    cache = CaptionCache.open(tmp_path / "l.json", captioner.captioner_id, "tiny", "fp")
    with pytest.raises(RobustRecError, match="cannot import LAVIS"):
        captioner.caption_items(load_item_images(tiny_dataset, "tiny"), cache)


def test_bad_python_or_cache(tmp_path: Path) -> None:
    cache = CaptionCache.open(tmp_path / "l.json", "lavis:blip2_opt/pretrain_opt2.7b", "d", "f")
    with pytest.raises(ConfigError, match="cannot run LAVIS Python"):
        LavisCaptioner(tmp_path / "no-python").caption_items({0: "x.png"}, cache)
    with pytest.raises(DataError, match="belongs to"):
        LavisCaptioner(sys.executable, prompt="hi").caption_items({0: "x.png"}, cache)
