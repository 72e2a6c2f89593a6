"""Where a model class comes from: the grammar of model references and the record of a source.

A model reference (``--model``, a study's ``models``, ``TrainConfig.model``) is one of::

    NAME                 a built-in model (``robustrec models``) or one an installed package
                         registers in the ``robustrec.models`` entry-point group
    PATH.py:CLASS        class CLASS of the Python file PATH (a relative PATH is taken from the
                         current folder, or from the study file's folder in a study)
    mmrec:PATH.py:CLASS  class CLASS of an MMRec model file, adapted by ``robustrec.models.mmrec``

A class that comes from a file (or an entry point) has a *source identity*, the one record every
kind shares: ``{"kind": "file" | "mmrec" | "entry_point", "path": absolute file, "class": CLASS,
"sha256": SHA-256 of the file}``; an MMRec model adds its model YAML (``"yaml"``: its path, ""
for none, and ``"yaml_sha256"``), so an edited YAML is an edited source. ``TrainConfig.validate``
pins it (``source_identity``), the run folder keeps it in config.json, a study cell's spec holds
it (an edited file retrains), and every build from a stored config insists on it
(``load_model_class(reference, sha256=...)``): a run whose source changed is refused in one line (``source_changed_message``).

A file is executed from the very bytes that were hashed, under a module name unique to its path
and content, so two files may define classes of the same ``name`` (a built-in's name too) and an
edited file is a new module. User classes never enter the built-in registry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from robustrec.errors import ConfigError

#: the entry-point group installed packages register models in (``name = "pkg.module:Class"``)
ENTRY_POINT_GROUP = "robustrec.models"
MMREC_PREFIX = "mmrec:"
#: (kind, path:class, sha256, YAML sha256) -> class: a file is executed once per content
_LOADED: dict[tuple[str, str, str], type] = {}


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: ``kind`` "name" (built-in or entry point), "file" or "mmrec"."""

    kind: str
    name: str = ""
    path: Path | None = None
    class_name: str = ""

    @property
    def text(self) -> str:
        """The canonical reference (absolute path for files): what a config stores."""
        if self.kind == "name":
            return self.name
        prefix = MMREC_PREFIX if self.kind == "mmrec" else ""
        return f"{prefix}{self.path}:{self.class_name}"

    @property
    def label(self) -> str:
        """A short name fit for a folder or a table: ``stem.Class`` for files, else the name."""
        return self.name if self.kind == "name" else f"{self.path.stem}.{self.class_name}"


def is_reference(text: str) -> bool:
    """Whether ``text`` names a file (``PATH.py:CLASS`` or ``mmrec:...``) rather than a name."""
    return ":" in text


def parse_reference(text: str, base: str | Path | None = None) -> ModelRef:
    """``text`` as a ModelRef; a relative PATH is resolved against ``base`` (default: the
    current folder). One-line ConfigErrors for malformed references; the file is not read."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"a model reference must be a name or PATH.py:CLASS, got {text!r}")
    text = text.strip()
    if not is_reference(text):
        return ModelRef("name", name=text.lower())
    kind, rest = ("mmrec", text[len(MMREC_PREFIX):]) if text.startswith(MMREC_PREFIX) else ("file", text)
    path_text, sep, class_name = rest.rpartition(":")
    if not sep or not path_text.endswith(".py") or not class_name.isidentifier():
        raise ConfigError(f"model reference {text!r} must look like NAME, PATH.py:CLASS or mmrec:PATH.py:CLASS")
    path = Path(path_text).expanduser()
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    return ModelRef(kind, path=Path(_absolute(path)), class_name=class_name)


def _absolute(path: Path) -> str:
    import os

    return os.path.normpath(os.path.abspath(path))


def read_source(path: Path, reference: str) -> tuple[bytes, str]:
    """(bytes, SHA-256) of a model file; one line when it is missing or unreadable."""
    if not path.is_file():
        raise ConfigError(f"model file {path} not found (from --model {reference})")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    return blob, hashlib.sha256(blob).hexdigest()


def source_identity(reference: str) -> dict | None:
    """The source identity of ``reference`` now (None for a built-in model): its kind, absolute
    path, class and the file's SHA-256. The class is loaded, so a broken file fails here."""
    ref = parse_reference(reference)
    if ref.kind == "name":
        from robustrec.models.registry import MODELS

        if ref.name in MODELS or ref.name not in entry_points():
            return None
        cls = load_model_class(reference)
        path = Path(sys.modules[cls.__module__].__file__)
        return {"kind": "entry_point", "path": str(path), "class": cls.__qualname__,
                "sha256": read_source(path, reference)[1]}
    _, digest = read_source(ref.path, reference)
    load_model_class(reference, digest)
    identity = {"kind": ref.kind, "path": str(ref.path), "class": ref.class_name, "sha256": digest}
    if ref.kind == "mmrec":  # the model YAML is source too: its values build the model, its grid is searched
        yaml, yaml_digest = mmrec_yaml(ref.path, ref.class_name)
        identity.update(yaml=str(yaml or ""), yaml_sha256=yaml_digest)
    return identity


def mmrec_yaml(path: Path, class_name: str) -> tuple[Path | None, str]:
    """(the model YAML an MMRec model file reads, its SHA-256); (None, "") when it has none."""
    from robustrec.models.mmrec.config import find_model_yaml

    yaml = find_model_yaml(path, class_name)
    if yaml is None:
        return None, ""
    try:
        return yaml, hashlib.sha256(yaml.read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError(f"cannot read MMRec model YAML {yaml}: {exc.strerror or exc}") from None


def source_changed_message(source: dict, what: str) -> str | None:
    """Why ``source`` (a recorded source identity) no longer holds, naming ``what`` (a run
    folder, a study cell); None when the file still has the recorded SHA-256."""
    path = Path(source["path"])
    if not path.is_file():
        return f"the model source of {what} is gone ({path} not found); restore the file or retrain"
    now = read_source(path, source.get("class", ""))[1]
    if now != source["sha256"]:
        return (f"the model source of {what} changed since it was trained ({path}: SHA-256 "
                f"{source['sha256'][:12]}…, now {now[:12]}…); restore the file or retrain")
    if "yaml" in source:  # an MMRec model: its YAML too
        yaml, digest = mmrec_yaml(path, source.get("class", ""))
        recorded = source.get("yaml_sha256") or ""
        if str(yaml or "") != source["yaml"] or digest != recorded:
            where = yaml or source["yaml"]
            was = f"SHA-256 {recorded[:12]}…" if recorded else "none"
            return (f"the model YAML of {what} changed since it was trained ({where}: {was}, now "
                    f"{digest[:12] + '…' if digest else 'none'}); restore the file or retrain")
    return None


def load_model_class(reference: str, sha256: str | None = None) -> type:
    """The Recommender class ``reference`` names (any kind). ``sha256``: the file must have
    exactly this content (a ConfigError otherwise). Checked for the contract on load."""
    ref = parse_reference(reference)
    if ref.kind == "name":
        return _named_class(ref.name)
    blob, digest = read_source(ref.path, reference)
    if sha256 is not None and digest != sha256:
        raise ConfigError(f"model file {ref.path} changed (SHA-256 {sha256[:12]}… recorded, now {digest[:12]}…); "
                          f"restore the file or retrain")
    key = (ref.kind, f"{ref.path}:{ref.class_name}", digest,
           mmrec_yaml(ref.path, ref.class_name)[1] if ref.kind == "mmrec" else "")
    if key not in _LOADED:
        if ref.kind == "mmrec":
            from robustrec.models.mmrec.loader import load_mmrec_model_class

            cls = load_mmrec_model_class(ref.path, ref.class_name)
        else:
            module = _execute(ref.path, blob, digest)
            cls = getattr(module, ref.class_name, None)
            if cls is None:
                found = sorted(n for n, v in vars(module).items() if isinstance(v, type) and _is_recommender(v))
                hint = f"; it defines {', '.join(found)}" if found else ""
                raise ConfigError(f"model file {ref.path} has no class {ref.class_name}{hint}")
        _LOADED[key] = check_model_class(cls, reference)
    return _LOADED[key]


def _execute(path: Path, blob: bytes, digest: str):
    """Execute ``blob`` (the file's bytes) as a fresh module unique to its path and content."""
    name = f"robustrec_user_models.{_module_token(path.stem)}_{digest[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    sys.modules[name] = module  # dataclasses and typing look classes' modules up here
    try:
        exec(compile(blob, str(path), "exec"), module.__dict__)
    except SyntaxError as exc:
        del sys.modules[name]
        raise ConfigError(f"model file {path} line {exc.lineno}: syntax error: {exc.msg}") from None
    except ModuleNotFoundError as exc:
        del sys.modules[name]
        raise ConfigError(f"model file {path} imports {exc.name!r}, which is not installed") from None
    except Exception as exc:  # noqa: BLE001 - a user's file may raise anything while it loads
        del sys.modules[name]
        line = _user_line(exc, path)
        raise ConfigError(f"model file {path}{line} failed to load: {type(exc).__name__}: {exc}") from None
    return module


def _module_token(stem: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in stem) or "model"


def _user_line(exc: BaseException, path: Path) -> str:
    """`` line N``: the deepest frame of ``exc`` in the user's file."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f" line {frames[-1].lineno}" if frames else ""


def _is_recommender(cls) -> bool:
    from robustrec.models.base import Recommender

    return isinstance(cls, type) and issubclass(cls, Recommender) and cls is not Recommender


def check_model_class(cls, reference: str) -> type:
    """``cls`` if it follows the Recommender contract's shape: a subclass with a non-empty
    ``name``, a ``Params`` dataclass (an empty one when it has none), every abstract method
    implemented, and ``final_embeddings()`` or ``ranker()``. One ConfigError line otherwise."""
    from robustrec.models.base import contract_problem

    if not _is_recommender(cls):
        raise ConfigError(f"{reference}: {getattr(cls, '__name__', cls)!r} is not a subclass of "
                          f"robustrec.models.base.Recommender")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise ConfigError(f"{reference}: class {cls.__name__} needs a non-empty name = \"...\"")
    if not hasattr(cls, "Params"):
        cls.Params = dataclasses.make_dataclass(f"{cls.__name__}Params", [])
    if not dataclasses.is_dataclass(cls.Params):
        raise ConfigError(f"{reference}: {cls.__name__}.Params must be a @dataclass of hyper-parameters")
    problem = contract_problem(cls)
    if problem:
        raise ConfigError(f"{reference}: {problem}")
    return cls


def entry_points() -> dict[str, object]:
    """Installed packages' models: name -> entry point of the ``robustrec.models`` group."""
    from importlib.metadata import entry_points as installed

    return {ep.name.lower(): ep for ep in installed(group=ENTRY_POINT_GROUP)}


def _named_class(name: str) -> type:
    from robustrec.models.registry import MODELS, unknown_model

    if name in MODELS:
        return MODELS[name]
    points = entry_points()
    if name not in points:
        raise unknown_model(name, [*MODELS, *points])
    key = ("entry_point", name, points[name].value)
    if key not in _LOADED:
        try:
            cls = points[name].load()
        except Exception as exc:  # noqa: BLE001 - an installed package may fail in any way
            raise ConfigError(f"model {name!r} (entry point {points[name].value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        _LOADED[key] = check_model_class(cls, f"model {name!r} ({points[name].value})")
    return _LOADED[key]
