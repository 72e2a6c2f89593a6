"""The raw item content of each modality, as extraction sees it: item id → text or image source."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robustrec.data.content import item_text_path, load_item_images, load_item_texts
from robustrec.errors import DataError


@dataclass
class ModalityContent:
    """Items of one modality that have content (`sources`), and image files naming no item."""

    modality: str
    sources: dict[int, str]
    outside_items: list[int] = field(default_factory=list)


def available_modalities(folder: Path, name: str) -> list[str]:
    """Modalities the dataset folder has raw content for: image (images/ or `<name>_url.csv`), text."""
    found = []
    if (folder / "images").is_dir() or (folder / f"{name}_url.csv").is_file():
        found.append("image")
    if item_text_path(folder, name).is_file():
        found.append("text")
    return found


def load_content(folder: Path, name: str, n_items: int, modality: str) -> ModalityContent:
    """Items with content: non-empty built texts, or image paths/URLs of items in [0, n_items)."""
    if modality == "text":
        texts = load_item_texts(folder, name, n_items)
        return ModalityContent("text", {i: t for i, t in texts.items() if t})
    if modality == "image":
        try:
            images = load_item_images(folder, name)
        except DataError as exc:
            if "holds no images" in str(exc):
                return ModalityContent("image", {})
            raise
        inside = {i: p for i, p in images.items() if 0 <= i < n_items}
        return ModalityContent("image", inside, sorted(set(images) - set(inside)))
    raise DataError(f"unknown modality {modality!r}")
