"""Typed configs: dataclasses built from mappings that reject unknown keys and coerce types."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from robustrec.errors import ConfigError

T = TypeVar("T")
#: the largest seed every consumer takes (torch, NumPy, and JSON readers that keep 64-bit integers)
MAX_SEED = 2**63 - 1


def from_dict(cls: type[T], values: dict[str, Any], what: str = "") -> T:
    """Build dataclass ``cls`` from ``values``; unknown keys and uncoercible values are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    label = what or cls.__name__
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {label} parameter(s) {', '.join(unknown)}; "
                          f"known: {', '.join(fields) or 'none'}")
    hints = typing.get_type_hints(cls)
    kwargs = {key: coerce(value, hints[key], f"{label}.{key}") for key, value in values.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def coerce(value: Any, kind: Any, name: str) -> Any:
    """Convert ``value`` (often a CLI string) to the annotated type ``kind``."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return coerce(value, options[0], name)
    if origin in (tuple, list):
        inner = typing.get_args(kind)[0]
        items = value.split(",") if isinstance(value, str) else list(value)
        return origin(coerce(v, inner, name) for v in items)
    try:
        if kind is bool:
            return _to_bool(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {getattr(kind, '__name__', kind)}, got {value!r}") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(value)


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Parse CLI ``key=value`` strings into a dict (values stay strings until typed)."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {pair!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out
