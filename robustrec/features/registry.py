"""Which encoder serves which modality: one line per modality, mapping it to the factory that builds
its encoder by name.

A factory takes the encoder's name (a short name, hub id, local folder or a recorded `encoder_id`)
and the keywords `device` and `batch_size`, and returns a `robustrec.features.base.FeatureEncoder`.
Adding a modality (audio, say) is one file beside this one (`features/audio.py` with its
`make_audio_encoder`) and one line in `ENCODERS` and `DEFAULT_ENCODERS` (docs/contributing.md).

Importing this module is cheap: torch, transformers and PIL load inside the encoders.
"""

from __future__ import annotations

from collections.abc import Callable

from robustrec.errors import ConfigError
from robustrec.features.base import FeatureEncoder
from robustrec.features.images import EFFICIENTNET_LITE0, make_image_encoder
from robustrec.features.text import DEFAULT_TEXT_ENCODER, make_text_encoder

#: modality → factory(name, *, device, batch_size) -> FeatureEncoder
ENCODERS: dict[str, Callable[..., FeatureEncoder]] = {
    "image": make_image_encoder,
    "text": make_text_encoder,
}
#: modality → the encoder used when none is named
DEFAULT_ENCODERS = {"image": EFFICIENTNET_LITE0, "text": DEFAULT_TEXT_ENCODER}
MODALITIES = tuple(ENCODERS)


def make_encoder(modality: str, name: str | None = None, *, device: str | None = None,
                 batch_size: int = 64) -> FeatureEncoder:
    """Build the encoder `name` of `modality` (None: its default).

    Models are looked up on this machine only (a folder, the packaged copies, the Hugging Face cache) and
    reach the hub only with ROBUSTREC_ALLOW_DOWNLOAD=1 (see `robustrec.features.locate`); `device` is
    checked after the lookup (one-line ConfigError for cuda without CUDA, unknown names)."""
    factory = ENCODERS.get(modality)
    if factory is None:
        raise ConfigError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    return factory(name or DEFAULT_ENCODERS[modality], device=device, batch_size=batch_size)
