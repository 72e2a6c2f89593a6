"""Loading an MMRec model file: its ``common`` / ``utils`` imports resolve to robustrec's shim
modules only while the file runs (and while a model is constructed), then ``sys.modules`` is
restored, so a user's own top-level ``common`` or ``utils`` is never replaced for good."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
import types
from contextlib import contextmanager
from pathlib import Path

from robustrec.errors import ConfigError

#: top-level name an MMRec file imports → robustrec module that stands in for it
SHIM_MODULES = {
    "common": "robustrec.models.mmrec.shim.common",
    "common.abstract_recommender": "robustrec.models.mmrec.shim.common.abstract_recommender",
    "common.loss": "robustrec.models.mmrec.shim.common.loss",
    "common.init": "robustrec.models.mmrec.shim.common.init",
    "common.encoders": "robustrec.models.mmrec.shim.common.encoders",
    "utils": "robustrec.models.mmrec.shim.utils",
    "utils.utils": "robustrec.models.mmrec.shim.utils.utils",
}
#: MMRec's LayerGCN imports ``models.common.*``: the same modules under that prefix
ALIASES = {f"models.{name}": target for name, target in SHIM_MODULES.items() if name.startswith("common")}
_PREFIXES = ("common", "utils", "models")
_LOCK = threading.RLock()


@contextmanager
def shim_modules():
    """``common``, ``utils`` (and ``models.common``) resolve to the shim inside the block."""
    with _LOCK:
        saved = {name: module for name, module in sys.modules.items()
                 if name.split(".")[0] in _PREFIXES}
        try:
            for name in saved:
                del sys.modules[name]
            for name, target in {**SHIM_MODULES, **ALIASES}.items():
                sys.modules[name] = importlib.import_module(target)
            sys.modules["models"] = types.ModuleType("models")  # a package holding only ``common``
            sys.modules["models"].__path__ = []
            sys.modules["models"].common = sys.modules["models.common"]
            yield
        finally:
            for name in [n for n in sys.modules if n.split(".")[0] in _PREFIXES]:
                del sys.modules[name]
            sys.modules.update(saved)


def load_module(path: Path):
    """Execute the model file ``path`` (a module of its own, named by its content digest) with the
    shim importable; a missing module is one line naming it."""
    path = Path(path)
    if path.suffix != ".py":
        raise ConfigError(f"MMRec model file {path} is not a .py file")
    if not path.is_file():
        raise ConfigError(f"MMRec model file {path} not found")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    name = f"robustrec_mmrec_models.{_token(path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name], digest
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with shim_modules():
        sys.modules[name] = module  # dataclasses and typing look a class's module up here
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            raise _import_error(path, exc) from None
    return module, digest


def _import_error(path: Path, exc: BaseException) -> BaseException:
    """The one-line error for a model file that failed to import (Ctrl-C and exits unchanged)."""
    if not isinstance(exc, Exception):
        return exc
    if isinstance(exc, ModuleNotFoundError):
        return ConfigError(missing_module_message(path, exc))
    if isinstance(exc, SyntaxError):
        return ConfigError(f"MMRec model file {path} has a syntax error at line {exc.lineno}: {exc.msg}")
    return ConfigError(f"MMRec model file {path} failed at import: {type(exc).__name__}: {first_line(exc)}")


def missing_module_message(path: Path, exc: ModuleNotFoundError) -> str:
    name = exc.name or first_line(exc)
    top = name.split(".")[0]
    if top in ("common", "utils", "models"):
        supplied = ", ".join(sorted(SHIM_MODULES))
        return (f"MMRec model file {path} imports {name!r}, which robustrec does not supply "
                f"(it supplies {supplied})")
    return (f"MMRec model file {path} needs the module {top!r}, which is not installed and robustrec "
            f"does not supply; install it (e.g. pip install {top.replace('_', '-')}) or use another model")


def _token(stem: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stem)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
