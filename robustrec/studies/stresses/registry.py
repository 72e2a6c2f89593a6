"""The stress-kind registry: built-in kinds, entry points and users' plug-in files.

- ``@register_stress`` on a ``StressSpec`` dataclass adds its ``kind``; a name already taken is a
  one-line ``ConfigError`` (a plug-in never silently replaces a kind).
- ``available_stresses()``: every kind, built-in ones (``BUILTIN``) and those of installed
  packages that declare an entry point in the group ``robustrec.stresses`` (the entry point names
  a module or a spec class; importing it registers the kind).
- ``load_plugins(paths)``: import users' files by path (``--plugins``, a study's ``plugins``);
  a missing file, a broken import or a duplicate kind is one line, before anything is written.
  Loading the same file (same bytes) again is a no-op; each file's SHA-256 is kept
  (``plugin_of(kind)``) so a study cell that uses its kind reruns when the file is edited.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path

from robustrec.errors import ConfigError

#: the modules of the built-in kinds; importing one registers its kind
BUILTIN = ("noise", "adversarial", "caption", "modality", "image", "text", "interactions")
ENTRY_POINT_GROUP = "robustrec.stresses"

_KINDS: dict[str, type] = {}
_LOADING: list[str] = []  # the source being imported, for registration records
_PLUGINS: dict[str, dict] = {}  # resolved path -> {"path", "sha256", "kinds"}
_STATE = {"builtin": False, "entry_points": False}


def register_stress(cls):
    """Class decorator: register a ``StressSpec`` dataclass under its ``kind``."""
    from robustrec.studies.stresses.base import StressSpec

    kind = getattr(cls, "kind", "")
    where = _LOADING[-1] if _LOADING else f"module {cls.__module__}"
    if not (isinstance(cls, type) and issubclass(cls, StressSpec) and dataclasses.is_dataclass(cls)):
        raise ConfigError(f"{where}: @register_stress needs a StressSpec dataclass, got {cls!r}")
    if not isinstance(kind, str) or not kind.replace("-", "").replace("_", "").isalnum() or kind != kind.lower():
        raise ConfigError(f"{where}: stress kind name {kind!r} must be a lower-case word (letters, digits, - or _)")
    if kind in _KINDS and _KINDS[kind] is not cls:
        raise ConfigError(f"{where}: stress kind {kind!r} is already registered by {_KINDS[kind].source}; "
                          f"give the plug-in's kind another name")
    cls.source = where if _LOADING else "robustrec"
    _KINDS[kind] = cls
    return cls


def _load_builtin() -> None:
    if _STATE["builtin"]:
        return
    _STATE["builtin"] = True
    for name in BUILTIN:
        importlib.import_module(f"robustrec.studies.stresses.{name}")


def _load_entry_points() -> None:
    if _STATE["entry_points"]:
        return
    _STATE["entry_points"] = True
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        _LOADING.append(f"entry point {point.name} ({point.value})")
        try:
            point.load()
        except ConfigError:
            raise
        except Exception as exc:  # a broken installed plug-in: one line, naming it
            raise ConfigError(f"stress plug-in entry point {point.name} ({point.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        finally:
            _LOADING.pop()


def available_stresses() -> dict[str, type]:
    """Every registered kind, name -> spec class (built-in first, then entry points and plug-ins)."""
    _load_builtin()
    _load_entry_points()
    modules = {f"robustrec.studies.stresses.{name}": rank for rank, name in enumerate(BUILTIN)}
    # built-in kinds in BUILTIN's order whichever module a caller imported first (stable sort)
    return dict(sorted(_KINDS.items(), key=lambda item: modules.get(item[1].__module__, len(modules))))


def get_stress(kind: str) -> type:
    """The spec class of ``kind``; an unknown name is one line listing the known ones."""
    kinds = available_stresses()
    if kind not in kinds:
        close = difflib.get_close_matches(str(kind), kinds, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown stress kind {kind!r}{hint}; choose one of {', '.join(kinds)} "
                          f"(or load a plug-in with --plugins FILE.py)")
    return kinds[kind]


def load_plugins(paths, relative_to: Path | None = None) -> list[dict]:
    """Import each plug-in file (registering its kinds); returns ``{"path", "sha256", "kinds"}``
    per file. ``relative_to``: the folder relative paths start from (a study file's)."""
    available_stresses()  # built-in names are taken first, so a plug-in cannot shadow them
    return [_load_one(Path(p) if relative_to is None or Path(p).is_absolute() else relative_to / p)
            for p in paths]


def _load_one(path: Path) -> dict:
    if path.suffix != ".py":
        raise ConfigError(f"plug-in {path} is not a Python file (.py)")
    if not path.is_file():
        raise ConfigError(f"plug-in file {path} not found")
    resolved = path.resolve()
    digest = hashlib.sha256(resolved.read_bytes()).hexdigest()
    known = _PLUGINS.get(str(resolved))
    if known is not None:
        if known["sha256"] == digest:
            return known
        del _PLUGINS[str(resolved)]  # edited since: its kinds are registered again from the new bytes
        for kind in known["kinds"]:
            _KINDS.pop(kind, None)
    name = f"robustrec_plugin_{digest[:12]}_{resolved.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plug-in {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    before = set(_KINDS)
    sys.modules[name] = module  # dataclasses and typing.get_type_hints look the module up by name
    _LOADING.append(f"plug-in {path}")
    try:
        spec.loader.exec_module(module)
    except ConfigError:
        _forget(name, before)
        raise
    except BaseException as exc:  # SyntaxError, ImportError, anything the file raises: one line
        _forget(name, before)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        line = getattr(exc, "lineno", None)
        at = f" (line {line})" if isinstance(exc, SyntaxError) and line else ""
        raise ConfigError(f"plug-in {path} failed to import{at}: {type(exc).__name__}: {exc}") from None
    finally:
        _LOADING.pop()
    kinds = sorted(set(_KINDS) - before)
    if not kinds:
        _forget(name, before)
        raise ConfigError(f"plug-in {path} registers no stress kind (decorate a StressSpec dataclass with "
                          f"@register_stress)")
    record = {"path": str(resolved), "sha256": digest, "kinds": kinds}
    _PLUGINS[str(resolved)] = record
    return record


def _forget(module_name: str, before: set[str]) -> None:
    """Undo a failed plug-in import: its module and any kind it registered before failing."""
    sys.modules.pop(module_name, None)
    for kind in set(_KINDS) - before:
        del _KINDS[kind]


def plugin_of(kind: str) -> dict | None:
    """``{"path", "sha256", "kinds"}`` of the plug-in file that registered ``kind``, else None."""
    for record in _PLUGINS.values():
        if kind in record["kinds"]:
            return record
    return None


def plugin_args(argv) -> list[str]:
    """The values of every ``--plugins X`` / ``--plugins=X`` in ``argv`` (commas split several)."""
    found, args = [], list(argv)
    for index, arg in enumerate(args):
        value = None
        if arg == "--plugins" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--plugins="):
            value = arg.split("=", 1)[1]
        if value:
            found.extend(part for part in value.split(",") if part)
    return found
