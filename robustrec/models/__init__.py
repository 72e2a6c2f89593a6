"""Recommender models behind one contract (``Recommender``) and a registry.

Every module of this package is imported on first use (``discover``): a module holding an
``@register``-ed class adds a built-in model, with no list to keep by hand. Models from files and
installed packages are reached through ``robustrec.models.sources``.
"""

from __future__ import annotations

import importlib
import pkgutil

from robustrec.config import from_dict
from robustrec.models.registry import MODELS, available_models, get_model_class


def discover() -> tuple[str, ...]:
    """Import every module of ``robustrec.models`` (those starting with '_' aside); returns the
    names of the modules that registered a model."""
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    return tuple(sorted({cls.__module__.rsplit(".", 1)[-1] for cls in MODELS.values()}))


#: the modules that define the built-in models (found, not listed)
ZOO = discover()


def build_model(name: str, data, params: dict | None = None, seed: int = 0, modalities=None,
                sha256: str | None = None):
    """Instantiate model ``name`` (any model reference, see ``robustrec.models.sources``) on
    ``data`` with typed ``params``; weights seeded by ``seed``. ``sha256``: a model file must
    have exactly this content (a stored run's recorded source).

    ``modalities``: the item modalities a multimodal model uses (None: every one ``data`` holds);
    see ``resolve_modalities``.
    """
    import torch

    from robustrec.models.base import resolve_modalities
    from robustrec.models.sources import load_model_class

    cls = get_model_class(name) if sha256 is None else load_model_class(name, sha256)
    typed = from_dict(cls.Params, dict(params or {}), what=cls.name)
    chosen = resolve_modalities(cls, data, modalities)
    if chosen != data.modalities:
        data = data.select_modalities(chosen)
    torch.manual_seed(seed)
    return cls(data, typed)


__all__ = ["ZOO", "available_models", "build_model", "discover", "get_model_class"]
