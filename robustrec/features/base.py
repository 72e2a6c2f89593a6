"""What every feature encoder is: one small protocol, and the helpers encoders share.

The encoders live beside this module, one file per modality (`text`, `images`); `registry` maps a
modality to the factory that builds its encoder by name. An encoder has a stable `encoder_id`
(enough to build it again: `registry.make_encoder(modality, id)`), a
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

from robustrec.errors import ConfigError
from robustrec.features.locate import looks_like_path

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


def commit_hash(model: Any) -> str | None:
    """The hub revision a transformers / sentence-transformers model was loaded from, if known."""
    for candidate in (getattr(model, "model", None), model, getattr(model, "_first_module", lambda: None)()):
        auto = getattr(candidate, "auto_model", candidate)
        commit = getattr(getattr(auto, "config", None), "_commit_hash", None)
        if commit:
            return str(commit)
    return None
