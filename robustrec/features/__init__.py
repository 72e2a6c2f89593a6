"""Every encoder, and feature extraction.

Encoders: `base` (the protocol and shared helpers), `text` (the sentence text encoder, also used to
re-encode edited texts and captions), `images` (image encoders), `image_loading` (reading item photos,
for encoders and captioners), `text_cache` (encoded texts kept on disk), `registry` (modality →
encoder factory).

Feature extraction: item content (photos, texts) → `<modality>_feat.npy` + mask + `features.json`.

File contract, in a dataset folder `<out>/<name>/`:

* `<modality>_feat.npy` — float32 (n_items, dim), one row per item of `<name>.inter`, never NaN/inf;
* `<modality>_mask.npy` — bool (n_items,), True where the item's content was encoded, False where
  the row was filled (`fill`: "mean" = mean of the covered rows, MMRec's convention; or "zeros");
* `features.json` — per modality: encoder id and version, dim, preprocessing, fill, items, covered,
  skipped counts and the sha256 of the feature file (see `robustrec.features.sidecar`).

Importing this package is cheap: torch, transformers and PIL load inside the encoders.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FeatureEncoder": "robustrec.features.base",
    "ENCODERS": "robustrec.features.registry",
    "make_encoder": "robustrec.features.registry",
    "MODALITIES": "robustrec.features.registry",
    "DEFAULT_ENCODERS": "robustrec.features.registry",
    "TextFeatureEncoder": "robustrec.features.text",
    "SentenceTextEncoder": "robustrec.features.text",
    "ItemTextEmbeddings": "robustrec.features.text",
    "TextEncoder": "robustrec.features.text",
    "DEFAULT_TEXT_ENCODER": "robustrec.features.text",
    "TextEmbeddingCache": "robustrec.features.text_cache",
    "load_image": "robustrec.features.image_loading",
    "ImageSkipped": "robustrec.features.image_loading",
    "EfficientNetLite0Encoder": "robustrec.features.images",
    "TransformersImageEncoder": "robustrec.features.images",
    "plan_extraction": "robustrec.features.extract",
    "extract_features": "robustrec.features.extract",
    "ExtractionCallback": "robustrec.features.extract",
    "ExtractionPlan": "robustrec.features.extract",
    "ModalityResult": "robustrec.features.extract",
    "read_sidecar": "robustrec.features.sidecar",
    "check_encoder": "robustrec.features.sidecar",
    "encoder_for": "robustrec.features.sidecar",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
