"""Feature extraction: item content (photos, texts) → `<modality>_feat.npy` + mask + `features.json`.

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
    "FeatureEncoder": "robustrec.features.encoders",
    "TextFeatureEncoder": "robustrec.features.encoders",
    "make_encoder": "robustrec.features.encoders",
    "MODALITIES": "robustrec.features.encoders",
    "DEFAULT_ENCODERS": "robustrec.features.encoders",
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
