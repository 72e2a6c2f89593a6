"""Model registry: name → class, with a helpful error for unknown names."""

from __future__ import annotations

import difflib

from robustrec.errors import ConfigError

MODELS: dict[str, type] = {}


def register(cls):
    if not cls.name or cls.name in MODELS:
        raise ValueError(f"model name {cls.name!r} is empty or already registered")
    MODELS[cls.name] = cls
    return cls


def get_model_class(name: str) -> type:
    _import_all()
    key = name.lower()
    if key not in MODELS:
        close = difflib.get_close_matches(key, MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown model {name!r}{hint}; available: {', '.join(sorted(MODELS))}")
    return MODELS[key]


def available_models() -> dict[str, type]:
    _import_all()
    return dict(sorted(MODELS.items()))


def _import_all() -> None:
    from robustrec.models import ZOO  # noqa: F401  (importing registers every model)
