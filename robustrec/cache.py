"""Ground floor: the cache root and a small two-level cache (memory, then ``.npz`` on disk) for arrays
derived from data (used by models; the text-embedding cache keeps its own format under the same root).

Graphs that are expensive to build but fully determined by the data and a few parameters
(user–user co-occurrence graphs, item kNN graphs) are stored under a key built from those
inputs, e.g. ``cache_key("user-cooccurrence", 1, data.fingerprint(), k)``. Files live in
``$ROBUSTREC_CACHE/<namespace>/<key>.npz`` (default root ``~/.cache/robustrec``), are written
atomically (temporary file + ``os.replace``) and loaded with ``allow_pickle=False``. Processes
that miss the same key at once (a study's workers) build it once: the others wait on its lock
(``.<key>.lock``, removed after) and read the file. An unwritable cache directory or a corrupt
file only costs a rebuild, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


Arrays = dict[str, np.ndarray]

_MEMORY: dict[tuple[str, str], Arrays] = {}


def cache_root() -> Path:
    """``$ROBUSTREC_CACHE`` if set, else ``~/.cache/robustrec``."""
    return Path(os.environ.get("ROBUSTREC_CACHE") or Path.home() / ".cache" / "robustrec")


def cache_key(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (names, versions, fingerprints, params)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_arrays(namespace: str, key: str, build: Callable[[], Arrays]) -> Arrays:
    """The arrays stored under ``(namespace, key)``, calling ``build()`` only on a miss.

    Returned arrays are read-only and shared between callers.
    """
    slot = (namespace, key)
    if slot in _MEMORY:
        return _MEMORY[slot]
    path = cache_root() / namespace / f"{key}.npz"
    arrays = _read(path)
    if arrays is None:
        with _building(path):  # processes missing the same key at once: one builds, the others read it
            arrays = _read(path)
            if arrays is None:
                arrays = {name: np.ascontiguousarray(a) for name, a in build().items()}
                _write(path, arrays)
    for array in arrays.values():
        array.setflags(write=False)
    _MEMORY[slot] = arrays
    return arrays


def clear_memory() -> None:
    """Forget the in-memory level (disk files stay); used by tests and long sessions."""
    _MEMORY.clear()


@contextmanager
def _building(path: Path) -> Iterator[None]:
    """Hold ``.<key>.lock`` beside the file while it is built (waiting for another process that
    builds it); an unwritable cache directory builds unlocked."""
    from robustrec.locks import waiting

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        yield
        return
    with waiting(path.with_name(f".{path.stem}.lock")):
        yield


def _read(path: Path) -> Arrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None


def _write(path: Path, arrays: Arrays) -> None:
    """Write the cache file atomically, not fsynced (a file lost in an OS crash is rebuilt)."""
    from robustrec.files import DiskFullError, write_atomic

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    try:
        write_atomic(path, write, fsync=False)
    except (OSError, DiskFullError):
        pass  # a read-only or full cache directory only means rebuilding next time
