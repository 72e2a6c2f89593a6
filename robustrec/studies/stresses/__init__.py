"""Stress kinds as plug-ins: one module per kind (spec, run, report settings) and the registry.

``stress_spec(kind, options)`` builds a checked spec from a mapping (a study's ``[[stress]]``
table, a check suite), rejecting unknown keys; ``available_stresses()`` lists the kinds;
``load_plugins(paths)`` imports users' files. See ``base`` for what a kind defines.
"""

from __future__ import annotations

from robustrec.studies.stresses.base import (Repeats, StressOutcome, StressSpec, option, parse_levels,
                                             spec_options)
from robustrec.studies.stresses.registry import (available_stresses, get_stress, load_plugins, plugin_of,
                                                 register_stress)


def stress_spec(kind: str, options: dict, what: str = "") -> StressSpec:
    """The checked spec of ``kind`` from ``options`` (a study file's table; lists of levels allowed)."""
    from robustrec.config import from_dict

    cls = get_stress(kind)
    values = {key.replace("-", "_"): (",".join(map(str, value)) if isinstance(value, list) else value)
              for key, value in options.items()}
    return from_dict(cls, values, what or f"{kind} stress").check()


__all__ = ["Repeats", "StressOutcome", "StressSpec", "available_stresses", "get_stress", "load_plugins", "option",
           "parse_levels", "plugin_of", "register_stress", "spec_options", "stress_spec"]
