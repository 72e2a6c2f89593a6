"""Item texts, item images and reference captions for the built-in synthetic dataset.

Each item's latent factors (a row of `item_factors`) choose its attributes — category, colour,
material, pattern, brand — through a seeded random projection per attribute (argmax over the
attribute's vocabulary), so items with similar factors get similar attributes, and therefore similar
texts, images and captions. Everything is a deterministic function of (item_factors, seed).

Written into the dataset folder (`write_synthetic_content`):

* `<name>.items.jsonl` — title, brand, categories, description (format: `robustrec.data.content`);
* `images/<itemID>.png` — 32x32 RGB: background in the item's colour, the pattern drawn in a darker
  shade, and a centred shape standing for the category;
* `captions/synthetic-reference.json` — a caption cache (captioner id `synthetic-reference`)
  describing exactly what was drawn, so caption tests run without model weights.

PNG files are written with numpy + zlib, so the core needs no imaging library.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustrec.captioning.cache import CaptionCache, atomic_write_text, cache_file_name
from robustrec.data.content import build_item_text, item_text_path

REFERENCE_CAPTIONER = "synthetic-reference"
IMAGE_SIZE = 32

CATEGORIES = ("bottle", "blanket", "stroller", "rattle", "bib", "crib", "diaper bag", "teether")
CATEGORY_GROUPS = ("Feeding", "Nursery", "Gear", "Toys", "Feeding", "Nursery", "Gear", "Toys")
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "bar", "dot")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40), "blue": (40, 70, 200), "green": (40, 160, 60), "yellow": (230, 200, 40),
    "pink": (240, 140, 180), "purple": (130, 60, 170), "white": (235, 235, 235), "grey": (120, 120, 120),
}
MATERIALS = ("cotton", "wool", "plastic", "bamboo", "silicone", "fleece")
PATTERNS = ("plain", "striped", "dotted", "checked")
BRANDS = ("Nimbus", "Little Oak", "Koalani", "Puddle", "Brightnest", "Mooncalf")
ADJECTIVES = ("soft", "sturdy", "light", "washable", "cosy", "durable", "gentle", "compact")


@dataclass(frozen=True)
class SyntheticItem:
    """The attributes chosen for one item."""

    category: int
    colour: str
    material: str
    pattern: str
    brand: str
    adjective: str


def _choose(rng: np.random.Generator, factors: np.ndarray, size: int) -> np.ndarray:
    """Index in [0, size) per item: argmax of a random projection of the item factors."""
    projection = rng.standard_normal((factors.shape[1], size))
    return np.argmax(factors @ projection, axis=1)


def synthetic_items(item_factors: np.ndarray, seed: int) -> list[SyntheticItem]:
    """Attributes of every item, following its latent factors (deterministic in the seed)."""
    factors = np.asarray(item_factors, dtype=np.float64)
    if factors.ndim != 2 or factors.shape[0] == 0:
        raise ValueError("item_factors must be a non-empty (n_items, k) array")
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    picks = [
        _choose(rng, factors, len(v))
        for v in (CATEGORIES, colours, MATERIALS, PATTERNS, BRANDS, ADJECTIVES)
    ]
    return [
        SyntheticItem(int(c), colours[o], MATERIALS[m], PATTERNS[p], BRANDS[b], ADJECTIVES[a])
        for c, o, m, p, b, a in zip(*picks)
    ]


def item_record(item_id: int, item: SyntheticItem) -> dict[str, object]:
    """The JSONL record (title, brand, categories, description) of one synthetic item."""
    category = CATEGORIES[item.category]
    return {
        "itemID": item_id,
        "title": f"{item.brand} {item.colour} {item.material} {category}",
        "brand": item.brand,
        "categories": ["Baby", CATEGORY_GROUPS[item.category], category.title()],
        "description": (
            f"A {item.adjective} {category} in {item.colour} {item.material} "
            f"with a {item.pattern} finish. Made by {item.brand} for everyday use."
        ),
    }


def reference_caption(item: SyntheticItem) -> str:
    """A caption describing what `draw_item_image` drew for the item."""
    pattern = "plain" if item.pattern == "plain" else f"{item.pattern}"
    category = CATEGORIES[item.category]
    return f"a {pattern} {item.colour} picture of a {category} drawn as a dark {SHAPES[item.category]}"


def synthetic_item_texts(item_factors: np.ndarray, seed: int) -> dict[int, str]:
    """Item id -> item text (as `build_item_text` makes it), without writing files."""
    items = synthetic_items(item_factors, seed)
    return {i: build_item_text(item_record(i, it)) for i, it in enumerate(items)}


def draw_item_image(item: SyntheticItem) -> np.ndarray:
    """A 32x32x3 uint8 image: colour background, pattern, category shape."""
    size = IMAGE_SIZE
    base = np.array(COLOURS[item.colour], dtype=np.int32)
    image = np.broadcast_to(base, (size, size, 3)).copy()
    yy, xx = np.mgrid[0:size, 0:size]
    pattern_mask = {
        "plain": np.zeros((size, size), dtype=bool),
        "striped": (yy // 4) % 2 == 0,
        "dotted": (yy % 6 < 2) & (xx % 6 < 2),
        "checked": ((yy // 4) + (xx // 4)) % 2 == 0,
    }[item.pattern]
    image[pattern_mask] = base * 6 // 10
    image[_shape_mask(SHAPES[item.category], yy - size // 2, xx - size // 2)] = (20, 20, 20)
    return image.astype(np.uint8)


def _shape_mask(shape: str, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Boolean mask of a centred shape of radius ~8 px."""
    r2 = dy**2 + dx**2
    masks = {
        "circle": r2 <= 64,
        "square": (abs(dy) <= 7) & (abs(dx) <= 7),
        "triangle": (dy >= -7) & (dy <= 7) & (abs(dx) <= (dy + 7) // 2),
        "diamond": abs(dy) + abs(dx) <= 8,
        "cross": ((abs(dy) <= 2) & (abs(dx) <= 8)) | ((abs(dx) <= 2) & (abs(dy) <= 8)),
        "ring": (r2 <= 81) & (r2 >= 36),
        "bar": (abs(dy) <= 3) & (abs(dx) <= 10),
        "dot": r2 <= 12,
    }
    return masks[shape]


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (h, w, 3) uint8 RGB array (8-bit, no interlace)."""
    height, width, _ = image.shape
    rows = b"".join(b"\x00" + image[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def write_synthetic_content(
    folder: Path, name: str, item_factors: np.ndarray, seed: int, fingerprint: str
) -> dict[int, str]:
    """Write item texts, images and the reference caption cache into the dataset `folder`.

    Returns item id -> item text, ready for the text encoder (to make `text_feat.npy`).
    """
    folder = Path(folder)
    items = synthetic_items(item_factors, seed)
    records = [item_record(i, it) for i, it in enumerate(items)]
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_text(item_text_path(folder, name), lines)
    image_dir = folder / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    for item_id, item in enumerate(items):
        (image_dir / f"{item_id}.png").write_bytes(encode_png(draw_item_image(item)))
    write_reference_captions(folder, name, item_factors, seed, fingerprint)
    return {i: build_item_text(r) for i, r in enumerate(records)}


def write_reference_captions(
    folder: Path, name: str, item_factors: np.ndarray, seed: int, fingerprint: str
) -> Path:
    """Write (or rewrite) `<folder>/captions/synthetic-reference.json`; returns its path."""
    items = synthetic_items(item_factors, seed)
    path = Path(folder) / "captions" / cache_file_name(REFERENCE_CAPTIONER)
    cache = CaptionCache(path, REFERENCE_CAPTIONER, name, fingerprint, flush_every=len(items) + 1)
    cache.update({i: reference_caption(it) for i, it in enumerate(items)})
    cache.flush()
    return path
