"""Image captioners (BLIP-2 on transformers, LAVIS via a separate interpreter) and the on-disk
caption cache. Encoders (the text encoder that embeds captions included) live in `robustrec.features`.

Importing this package is cheap: torch, transformers and PIL are imported
only inside the classes that need them. Names are resolved lazily on first attribute access.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CaptionCache": "robustrec.captioning.cache",
    "CaptionRunSummary": "robustrec.captioning.cache",
    "CACHE_FORMAT": "robustrec.captioning.cache",
    "cache_file_name": "robustrec.captioning.cache",
    "default_cache_path": "robustrec.captioning.cache",
    "Blip2Captioner": "robustrec.captioning.blip2",
    "DEFAULT_BLIP2_CHECKPOINT": "robustrec.captioning.blip2",
    "LavisCaptioner": "robustrec.captioning.lavis_adapter",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines `name` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'robustrec.captioning' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
