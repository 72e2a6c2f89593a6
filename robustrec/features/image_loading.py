"""Loading item images (for image encoders and captioners): local paths or URLs, with size limits.

`load_image` never lets a bad image crash a captioning or extraction run: every failure (missing file, not an
image, truncated, too many bytes, too many pixels, download error) becomes `ImageSkipped` with a
short reason that the caption cache records.
"""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path
from typing import Any

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
URL_TIMEOUT_S = 20.0


class ImageSkipped(Exception):
    """An image that cannot be captioned; `str(exc)` is the reason."""


def _read_bytes(source: str, max_bytes: int) -> bytes:
    """Raw bytes of a path or http(s) URL, refusing anything over `max_bytes`."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=URL_TIMEOUT_S) as response:  # noqa: S310
                data = response.read(max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise ImageSkipped(f"download failed: {exc}") from None
    else:
        path = Path(source)
        try:
            if path.stat().st_size > max_bytes:
                raise ImageSkipped(f"oversized: {path.stat().st_size} bytes > {max_bytes}")
            data = path.read_bytes()
        except OSError as exc:
            raise ImageSkipped(f"unreadable: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise ImageSkipped(f"oversized: more than {max_bytes} bytes")
    return data


def load_image(source: str, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Any:
    """An RGB `PIL.Image` from a path or URL, or `ImageSkipped` with the reason."""
    from PIL import Image

    data = _read_bytes(source, max_bytes)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageSkipped(f"oversized: {width}x{height} pixels > {max_pixels}")
            return image.convert("RGB")
    except ImageSkipped:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageSkipped(f"unreadable image: {type(exc).__name__}: {exc}") from None
