"""Product-photo edits with Pillow: what a merchant (or a bad upload pipeline) does to an item photo.

Every edit maps an RGB ``PIL.Image`` to a new RGB image of the **same size** (the input is never
modified); the edits that need randomness take a ``numpy.random.Generator``, which
``ImageEdit`` seeds per (trial seed, item, edit), so an edited photo is a pure function of them.

=========  ==========================  =======  ==========================================================
edit       strength flag               default  what it does
=========  ==========================  =======  ==========================================================
blur       ``--radius`` [0, 100]       4        ``ImageFilter.GaussianBlur(radius)``; 0 = unchanged
jpeg       ``--quality`` 1..95         10       re-saved as JPEG at that quality (Pillow), read back
crop       ``--crop-fraction`` (0, 1]  0.5      a random window keeping that share of the *area* (each
                                                side × √fraction, uniform position), resized back to the
                                                original size (bicubic); 1 = unchanged
color      ``--brightness`` [0, 4]     0.5      ``ImageEnhance.Brightness(f)`` then
                                                ``ImageEnhance.Color(f)`` with the same factor f (0.5:
                                                half as bright, half as saturated); 1 = unchanged
occlude    ``--occlusion`` [0, 1]      0.25     a mid-grey (128) rectangle of that share of the area, the
                                                photo's aspect ratio, uniform position; 0 = unchanged
swap       (none)                      -        the photo of another chosen item (a derangement, drawn by
                                                ``ImageEdit``, not here)
=========  ==========================  =======  ==========================================================
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from robustrec.errors import ConfigError

EDITS = ("blur", "jpeg", "crop", "color", "occlude", "swap")
#: edit -> (flag, default, low, high, value at which the edit leaves the photo unchanged or None)
STRENGTHS: dict[str, tuple[str, float, float, float, float | None]] = {
    "blur": ("--radius", 4.0, 0.0, 100.0, 0.0),
    "jpeg": ("--quality", 10, 1, 95, None),
    "crop": ("--crop-fraction", 0.5, 0.0, 1.0, 1.0),
    "color": ("--brightness", 0.5, 0.0, 4.0, 1.0),
    "occlude": ("--occlusion", 0.25, 0.0, 1.0, 0.0),
}
GREY = (128, 128, 128)


def check_edit(edit: str) -> str:
    if edit not in EDITS:
        raise ConfigError(f"unknown image edit {edit!r}; valid edits: {', '.join(EDITS)}")
    return edit


def check_strength(edit: str, value: float | None) -> float | None:
    """The edit's strength (``None`` for swap), validated; one-line ConfigError when out of range."""
    check_edit(edit)
    if edit == "swap":
        if value is not None:
            raise ConfigError("the swap edit takes no strength")
        return None
    flag, _, low, high, _ = STRENGTHS[edit]
    value = float(value)
    low_ok = value > low if edit == "crop" else value >= low
    if not (low_ok and value <= high):  # also rejects NaN
        bracket = "(" if edit == "crop" else "["
        raise ConfigError(f"{flag} must be in {bracket}{low:g}, {high:g}], got {value:g}")
    if edit == "jpeg":
        if value != int(value):
            raise ConfigError(f"--quality must be a whole number in [1, 95], got {value:g}")
        return int(value)
    return value


def default_strength(edit: str) -> float | None:
    return None if edit == "swap" else STRENGTHS[check_edit(edit)][1]


def leaves_unchanged(edit: str, strength: float | None) -> bool:
    """True when ``edit`` at ``strength`` returns every photo unchanged (so nothing is re-encoded)."""
    return edit != "swap" and strength == STRENGTHS[edit][4]


def edit_photo(image: Any, edit: str, strength: float | None, rng: np.random.Generator | None = None) -> Any:
    """``image`` (RGB PIL image) with ``edit`` applied at ``strength`` (see module doc); same size."""
    from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

    image = image.convert("RGB")  # a new image: the caller's is never modified
    width, height = image.size
    if edit == "blur":
        return image.filter(ImageFilter.GaussianBlur(radius=strength))
    if edit == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=int(strength))
        buffer.seek(0)
        with Image.open(buffer) as reloaded:
            return reloaded.convert("RGB")
    if edit == "color":
        return ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(strength)).enhance(strength)
    if edit in ("crop", "occlude"):
        w, h = _box(width, height, strength, at_least=1 if edit == "crop" else 0)
        left = int(rng.integers(0, width - w + 1))
        top = int(rng.integers(0, height - h + 1))
        if edit == "crop":
            return image.crop((left, top, left + w, top + h)).resize((width, height), Image.BICUBIC)
        if w > 0 and h > 0:
            ImageDraw.Draw(image).rectangle((left, top, left + w - 1, top + h - 1), fill=GREY)
        return image
    raise ConfigError(f"edit {edit!r} is not a per-photo edit (swap exchanges photos between items)")


def _box(width: int, height: int, share: float, at_least: int = 0) -> tuple[int, int]:
    """Width and height of a window with ``share`` of the area and the image's aspect ratio."""
    side = math.sqrt(share)
    return (min(width, max(at_least, round(width * side))), min(height, max(at_least, round(height * side))))


def derangement(rng: np.random.Generator, count: int) -> np.ndarray:
    """A uniformly random permutation of ``range(count)`` without fixed points (rejection sampling);
    the identity when ``count`` < 2."""
    if count < 2:
        return np.arange(count)
    while True:
        order = rng.permutation(count)
        if not np.any(order == np.arange(count)):
            return order
