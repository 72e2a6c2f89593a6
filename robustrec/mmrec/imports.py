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
    "common": "robustrec.mmrec.shim.common",
    "common.abstract_recommender": "robustrec.mmrec.shim.common.abstract_recommender",
    "common.loss": "robustrec.mmrec.shim.common.loss",
    "common.init": "robustrec.mmrec.shim.common.init",
    "common.encoders": "robustrec.mmrec.shim.common.encoders",
    "utils": "robustrec.mmrec.shim.utils",
    "utils.utils": "robustrec.mmrec.shim.utils.utils",
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
    """Execute the model file ``path`` (as a module of its own, not in ``sys.modules``) with the
    shim importable; a missing module is one line naming it."""
    path = Path(path)
    if path.suffix != ".py":
        raise ConfigError(f"MMRec model file {path} is not a .py file")
    if not path.is_file():
        raise ConfigError(f"MMRec model file {path} not found")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(f"robustrec_mmrec_{path.stem}_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    with shim_modules():
        try:
            spec.loader.exec_module(module)
        except ModuleNotFoundError as exc:
            raise ConfigError(missing_module_message(path, exc)) from None
        except ImportError as exc:
            raise ConfigError(f"MMRec model file {path} cannot be imported: {first_line(exc)}") from None
        except SyntaxError as exc:
            raise ConfigError(f"MMRec model file {path} has a syntax error at line {exc.lineno}: {exc.msg}") from None
        except Exception as exc:  # noqa: BLE001  (any error of user code at import: one line)
            raise ConfigError(f"MMRec model file {path} failed at import: {type(exc).__name__}: "
                              f"{first_line(exc)}") from None
    return module, digest


def missing_module_message(path: Path, exc: ModuleNotFoundError) -> str:
    name = exc.name or first_line(exc)
    top = name.split(".")[0]
    if top in ("common", "utils", "models"):
        supplied = ", ".join(sorted(SHIM_MODULES))
        return (f"MMRec model file {path} imports {name!r}, which robustrec does not supply "
                f"(it supplies {supplied})")
    return (f"MMRec model file {path} needs the module {top!r}, which is not installed and robustrec "
            f"does not supply; install it (e.g. pip install {top.replace('_', '-')}) or use another model")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
