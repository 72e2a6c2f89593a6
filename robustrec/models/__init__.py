"""Recommender models behind one contract (``Recommender``) and a registry."""

from __future__ import annotations

import importlib

from robustrec.config import from_dict
from robustrec.models.registry import available_models, get_model_class

#: every model module; importing one registers its class
ZOO = (
    "bprmf",
    "lightgcn",
    "layergcn",
    "selfcf",
    "vbpr",
    "freedom",
    "mmgcn",
    "grcn",
    "dualgnn",
    "dragon",
    "bm3",
    "slmrec",
    "lattice",
    "mgcn",
)

for _module in ZOO:
    importlib.import_module(f"robustrec.models.{_module}")


def build_model(name: str, data, params: dict | None = None, seed: int = 0, modalities=None):
    """Instantiate model ``name`` on ``data`` with typed ``params``; weights seeded by ``seed``.

    ``modalities``: the item modalities a multimodal model uses (None: every one ``data`` holds);
    see ``resolve_modalities``.
    """
    import torch

    from robustrec.models.base import resolve_modalities

    cls = get_model_class(name)
    typed = from_dict(cls.Params, dict(params or {}), what=cls.name)
    chosen = resolve_modalities(cls, data, modalities)
    if chosen != data.modalities:
        data = data.select_modalities(chosen)
    torch.manual_seed(seed)
    return cls(data, typed)


__all__ = ["ZOO", "available_models", "build_model", "get_model_class"]
