"""Feature encoders behind one small protocol, and the registry that builds them by name.

An encoder has a stable `encoder_id` (enough to build it again: `make_encoder(modality, id)`), a
`version` (package version, model revision or weights hash), `dim`, a JSON-able `preprocessing`
record, and `encode(batch) -> float32 (len(batch), dim)`. Text encoders take strings; image
encoders take RGB `PIL.Image`s. torch, transformers and PIL load inside the encoders, on first use.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robustrec.device import device_string
from robustrec.errors import ConfigError
from robustrec.features.locate import looks_like_path, snapshot_revision

MODALITIES = ("image", "text")
DEFAULT_ENCODERS = {"image": "efficientnet-lite0", "text": "all-MiniLM-L6-v2"}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


class FeatureEncoder(Protocol):
    """What extraction and perturbations need from an encoder of one modality."""

    modality: str

    @property
    def encoder_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def preprocessing(self) -> dict[str, Any]: ...

    def encode(self, batch: Sequence[Any]) -> np.ndarray: ...


def missing_extra(what: str, exc: ImportError, extra: str = "features") -> ConfigError:
    """One-line error for a missing optional package."""
    return ConfigError(f"{what} needs the package {exc.name or 'that is missing'}: "
                       f"pip install 'robustrec[{extra}]'")


def check_folder_name(name: str, modality: str) -> None:
    """A name written as a path must be an existing folder (never silently tried on the hub)."""
    if looks_like_path(name) and not Path(name).expanduser().is_dir():
        raise ConfigError(f"cannot load {modality} encoder {name!r}: no such folder")


def package_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=16)
def _digest(paths: tuple[str, ...], stamp: tuple[tuple[int, int], ...]) -> str:
    sha = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                sha.update(block)
    return sha.hexdigest()[:16]


def weights_digest(files: Sequence[str | Path]) -> str:
    """`sha256:<16 hex>` over the bytes of `files` (cached per path, size and mtime)."""
    paths = tuple(sorted(str(p) for p in files))
    stamp = tuple((Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for p in paths)
    return f"sha256:{_digest(paths, stamp)}"


def folder_weights(folder: str | Path) -> list[Path]:
    """The weight files at the top of a model folder (safetensors preferred)."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    safetensors = [p for p in files if p.suffix == ".safetensors"]
    return safetensors or files


class TextFeatureEncoder:
    """Item texts → sentence embeddings, on `SentenceTextEncoder` (MiniLM offline by default)."""

    modality = "text"

    def __init__(self, model: str = DEFAULT_ENCODERS["text"], *, device: str | None = None,
                 batch_size: int = 64) -> None:
        from robustrec.captioning.text_encoder import SentenceTextEncoder, resolve_text_model

        self.name = model
        self.folder = resolve_text_model(model)
        check_folder_name(model, "text")
        self._encoder = SentenceTextEncoder(model, device=device, batch_size=batch_size)
        self._model = self._load()

    def _load(self) -> Any:
        try:
            return self._encoder._load()
        except ConfigError as exc:
            raise ConfigError(str(exc).strip().splitlines()[0]) from None
        except ImportError as exc:
            raise missing_extra("text encoding", exc, "captions") from None
        except Exception as exc:  # hub unreachable, bad folder, ...: one line, never a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load text encoder {self.name!r} offline: {first}") from None

    @property
    def encoder_id(self) -> str:
        if Path(self.name).is_dir():
            return f"sentence-transformers:{Path(self.name).resolve()}"
        return f"sentence-transformers:{self.name.removeprefix('sentence-transformers/')}"

    @property
    def version(self) -> str:
        if snapshot_revision(self.folder):  # a hub model from the cache: its revision, as when downloaded
            return f"revision {snapshot_revision(self.folder)}"
        if Path(self.folder).is_dir() and folder_weights(self.folder):
            return f"weights {weights_digest(folder_weights(self.folder))}"
        commit = _commit_hash(self._model)
        return f"revision {commit}" if commit else f"sentence-transformers {package_version('sentence-transformers')}"

    @property
    def dim(self) -> int:
        return self._encoder.dim

    def cache_identity(self) -> dict[str, Any] | None:
        """What decides the rows (see `robustrec.captioning.embedding_cache`): the inner encoder's."""
        return self._encoder.cache_identity()

    @property
    def max_tokens(self) -> int:
        model = self._model
        return int(getattr(model, "max_length", None) or getattr(model, "max_seq_length", 0) or 0)

    @property
    def preprocessing(self) -> dict[str, Any]:
        return {
            "text": "robustrec.data.content.build_item_text: title, brand, categories (joined ', '), "
                    "description; each stripped, empties dropped, joined '. '",
            "empty_text": "missing (mask False, row filled)",
            "max_tokens": self.max_tokens,
            "truncation": "longest_first",
            "pooling": "mean over tokens (attention mask)",
            "normalize": "L2" if getattr(self._model, "normalize", True) else "none",
            "backend": self._encoder.backend,
        }

    def encode(self, batch: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(list(batch))


def _commit_hash(model: Any) -> str | None:
    """The hub revision a transformers / sentence-transformers model was loaded from, if known."""
    for candidate in (getattr(model, "model", None), model, getattr(model, "_first_module", lambda: None)()):
        auto = getattr(candidate, "auto_model", candidate)
        commit = getattr(getattr(auto, "config", None), "_commit_hash", None)
        if commit:
            return str(commit)
    return None


def make_encoder(modality: str, name: str | None = None, *, device: str | None = None,
                 batch_size: int = 64) -> FeatureEncoder:
    """Build the encoder `name` (a short name, hub id, local folder or a recorded `encoder_id`).

    Models are looked up on this machine only (a folder, the packaged copies, the Hugging Face cache) and
    reach the hub only with ROBUSTREC_ALLOW_DOWNLOAD=1 (see `robustrec.features.locate`); `device` is
    checked after the lookup (one-line ConfigError for cuda without CUDA, unknown names)."""
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}; valid: {', '.join(MODALITIES)}")
    name = name or DEFAULT_ENCODERS[modality]
    if modality == "text":
        from robustrec.captioning.text_encoder import locate_text_model

        name = name.removeprefix("sentence-transformers:")
        check_folder_name(name, "text")
        locate_text_model(name)  # a model not on this machine fails here, at once, before torch loads
        return TextFeatureEncoder(name, device=device_string(device), batch_size=batch_size)
    from robustrec.features.images import make_image_encoder

    return make_image_encoder(name, device=device)
