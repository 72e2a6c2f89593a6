"""BLIP-2 (and BLIP) image captioning on Hugging Face transformers.

`Blip2Captioner` loads any checkpoint id or local folder whose config `model_type` is `blip-2`
(`Blip2ForConditionalGeneration`) or `blip` (`BlipForConditionalGeneration`), with the processor
saved next to it (`AutoProcessor`). Default: `Salesforce/blip2-opt-2.7b`. Device `auto` means CUDA
when available (weights in fp16 there) and CPU otherwise (fp32). Nothing is loaded until the first
caption is asked for, and the library never prints: progress goes through a callback.

Memory plan for the default checkpoint (not run here): BLIP-2 OPT-2.7B has about 3.9e9 parameters
(ViT-g 1.0e9 + Q-Former 0.1e9 + OPT-2.7B 2.7e9): about 7.7 GB of weights in fp16 (CUDA) or 15.5 GB
in fp32 (CPU), plus activations that grow with the batch size (a few hundred MB per 8 images
at 224x224 and 30 new tokens).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from robustrec.captioning.cache import CaptionCache, CaptionRunSummary
from robustrec.captioning.captioner import ProgressCallback, caption_items_with
from robustrec.features.image_loading import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from robustrec.device import device_string
from robustrec.errors import ConfigError

DEFAULT_BLIP2_CHECKPOINT = "Salesforce/blip2-opt-2.7b"
_MODEL_CLASSES = {"blip-2": "Blip2ForConditionalGeneration", "blip": "BlipForConditionalGeneration"}


class Blip2Captioner:
    """Captions images with a BLIP-2 or BLIP checkpoint; `captioner_id` names checkpoint (+prompt)."""

    def __init__(
        self,
        checkpoint: str = DEFAULT_BLIP2_CHECKPOINT,
        *,
        device: str | None = "auto",
        prompt: str | None = None,
        max_new_tokens: int = 30,
        max_image_bytes: int = DEFAULT_MAX_BYTES,
        max_image_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        if max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.checkpoint = checkpoint
        self.device = device
        self.prompt = prompt or None
        self.max_new_tokens = max_new_tokens
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self._model: Any = None
        self._processor: Any = None
        self._dtype: Any = None
        self._config_type: str | None = None

    @property
    def captioner_id(self) -> str:
        """`blip2:<checkpoint>` (local folders by folder name), `#prompt=<hash>` when prompted."""
        name = Path(self.checkpoint).name if Path(self.checkpoint).is_dir() else self.checkpoint
        family = "blip" if self._model_type() == "blip" else "blip2"
        suffix = ""
        if self.prompt:
            suffix = "#prompt=" + hashlib.sha256(self.prompt.encode()).hexdigest()[:8]
        return f"{family}:{name}{suffix}"

    def load(self) -> None:
        """Load model and processor now (otherwise done by the first caption call)."""
        if self._model is not None:
            return
        import torch
        import transformers

        model_type = self._model_type()
        device = device_string(self.device)
        self._dtype = torch.float16 if device.startswith("cuda") else torch.float32
        model_class = getattr(transformers, _MODEL_CLASSES[model_type])
        try:
            processor = transformers.AutoProcessor.from_pretrained(self.checkpoint)
            model = model_class.from_pretrained(self.checkpoint, dtype=self._dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load captioner {self.checkpoint!r}: {_first_line(exc)}") from None
        self._processor = processor
        self._model = model.to(device).eval()

    def _model_type(self) -> str:
        """The checkpoint's `model_type` (read once), checked to be BLIP-2 or BLIP."""
        if self._config_type is None:
            self._config_type = self._read_model_type()
        return self._config_type

    def _read_model_type(self) -> str:
        from transformers import AutoConfig

        try:
            config = AutoConfig.from_pretrained(self.checkpoint)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load captioner {self.checkpoint!r}: {_first_line(exc)}") from None
        if config.model_type not in _MODEL_CLASSES:
            raise ConfigError(
                f"{self.checkpoint!r} is a {config.model_type!r} model, not a BLIP-2 or BLIP captioner"
            )
        return str(config.model_type)

    def caption_images(self, images: Sequence[Any]) -> list[str]:
        """Captions of a batch of RGB PIL images (prompt text removed from the output)."""
        import torch

        self.load()
        kwargs: dict[str, Any] = {"images": list(images), "return_tensors": "pt"}
        if self.prompt:
            kwargs["text"] = [self.prompt] * len(images)
        inputs = self._processor(**kwargs).to(self._model.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self._dtype)
        with torch.inference_mode():
            output = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        texts = self._processor.batch_decode(output, skip_special_tokens=True)
        return [self._strip_prompt(t) for t in texts]

    def _strip_prompt(self, text: str) -> str:
        """Drop an echoed prompt from the start of a generated caption."""
        text = text.strip()
        if self.prompt and text.lower().startswith(self.prompt.lower().strip()):
            text = text[len(self.prompt.strip()) :].strip()
        return text

    def caption_items(
        self,
        items: Mapping[int, str],
        cache: CaptionCache,
        *,
        progress: ProgressCallback | None = None,
        batch_size: int = 8,
    ) -> CaptionRunSummary:
        """Caption every item of `items` (id -> image path/URL) missing from `cache`.

        Unreadable/oversized images are skipped and recorded; the run resumes from the cache.
        """
        return caption_items_with(
            self, items, cache, progress=progress, batch_size=batch_size,
            max_bytes=self.max_image_bytes, max_pixels=self.max_image_pixels,
        )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception message (transformers errors run to many lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
