"""Shared fixtures of the captioning tests: offline hub, a tiny BLIP-2, a tiny image dataset."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

from tiny_blip2 import save_tiny_blip2  # noqa: E402


@pytest.fixture(scope="session")
def tiny_blip2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a saved tiny randomly initialised BLIP-2 and its processor."""
    return save_tiny_blip2(tmp_path_factory.mktemp("tiny-blip2"))


def write_png(path: Path, rgb: tuple[int, int, int], size: int = 40) -> None:
    """Write a solid-colour PNG."""
    from PIL import Image

    Image.new("RGB", (size, size), rgb).save(path)


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    """`<tmp>/data/tiny/` with tiny.inter, 5 PNG images and 1 unreadable image file."""
    folder = tmp_path / "data" / "tiny"
    (folder / "images").mkdir(parents=True)
    labels = [0, 0, 0, 0, 1, 2]  # per user: 4 train, 1 valid, 1 test (a loadable MMRec split)
    rows = ["userID\titemID\tx_label"] + [
        f"{u}\t{(i + u) % 6}\t{labels[i]}" for u in range(3) for i in range(6)
    ]
    (folder / "tiny.inter").write_text("\n".join(rows) + "\n")
    for item_id in range(5):
        write_png(folder / "images" / f"{item_id}.png", (40 * item_id, 100, 200))
    (folder / "images" / "5.png").write_bytes(b"this is not a png")
    return folder
