"""Model registry: built-in name → class, and the one lookup every model reference goes through."""

from __future__ import annotations

import difflib

from robustrec.errors import ConfigError

#: the built-in models (``@register`` in a module of ``robustrec.models``)
MODELS: dict[str, type] = {}


def register(cls):
    """Class decorator of a built-in model: its ``name`` must be new and the class must follow
    the contract's shape (``robustrec.models.base.contract_problem``). A class of a user's file
    (loaded by ``robustrec.models.sources``) is left out of the registry: its file names it."""
    from robustrec.models.base import contract_problem

    if not cls.__module__.startswith(__package__ + "."):
        return cls
    if not cls.name or cls.name in MODELS:
        raise ValueError(f"model name {cls.name!r} is empty or already registered")
    problem = contract_problem(cls)
    if problem:
        raise TypeError(problem)
    MODELS[cls.name] = cls
    return cls


def get_model_class(reference: str) -> type:
    """The class of a model reference (``robustrec.models.sources``): a built-in or entry-point
    name, ``PATH.py:CLASS`` or ``mmrec:PATH.py:CLASS``; one-line ConfigErrors otherwise."""
    from robustrec.models.sources import load_model_class

    _import_all()
    return load_model_class(reference)


def unknown_model(name: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown model {name!r}{hint}; available: {', '.join(sorted(known))}, "
                       f"or a file: PATH.py:CLASS")


def available_models() -> dict[str, type]:
    """The built-in models, by name."""
    _import_all()
    return dict(sorted(MODELS.items()))


def _import_all() -> None:
    from robustrec.models import discover  # noqa: F401  (importing registers every model)
