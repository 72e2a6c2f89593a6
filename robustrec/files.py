"""The one way robustrec writes and reads its files (a ground floor: it imports only ``errors``
and ``paths`` from robustrec).

``write_atomic(path, write)`` calls ``write(tmp)`` on a temporary file in ``path``'s folder,
fsyncs it, gives it the mode the user's umask gives ``open`` (``tempfile`` makes 0600), renames
it onto ``path`` and fsyncs the folder: a reader, a killed process or a power cut sees the old
file or the new one, never half of one, and never a temporary left behind.

A full disk (ENOSPC, or EDQUOT: a quota) anywhere in that — creating the temporary, writing,
fsyncing, renaming — is a ``DiskFullError``: one line naming the file and the space left on its
folder's file system. ``disk_full_as_error(path)`` does the same conversion for writers that do
not go through ``write_atomic`` (run folders, training state); it also knows safetensors' error
for a full disk, which is no OSError.

``read_json(path, what)`` reads a JSON file with one-line errors (missing, not UTF-8, not JSON).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from robustrec.errors import DataError, RobustRecError
from robustrec.paths import umask_mode

#: errno values that mean "no room": a full file system, or a user's quota used up
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: how other libraries (safetensors' Rust I/O) word those in their messages
_FULL_WORDS = ("no space left on device", "os error 28", "disk quota exceeded", "os error 122")


class DiskFullError(RobustRecError):
    """No space (or quota) left where robustrec was writing ``path`` (made by ``writing``; the
    message is the only argument, so the error pickles, e.g. from a study's worker)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)

    @classmethod
    def writing(cls, path: str | Path, quota: bool = False) -> "DiskFullError":
        """``no space left on device writing PATH (N free on FOLDER); free some space and run again``."""
        path = Path(path)
        what = "disk quota exceeded" if quota else "no space left on device"
        return cls(f"{what} writing {path} ({free_space(path.parent)}); free some space and run again", path)


def free_space(folder: str | Path) -> str:
    """``12.0 KiB free on /x``: the space left on the file system of ``folder`` (or of its
    nearest existing parent); ``free space unknown`` when that cannot be read."""
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    return f"{human_bytes(free)} free on {probe}"


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError  # pragma: no cover


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) is full: an OSError with ENOSPC / EDQUOT, or a
    library error whose message says so (safetensors' SafetensorError)."""
    if isinstance(exc, OSError):
        return exc.errno in FULL_ERRNOS
    if type(exc).__name__ == "SafetensorError":
        text = str(exc).lower()
        return any(words in text for words in _FULL_WORDS)
    return False


def disk_full_error(exc: BaseException, path: str | Path) -> DiskFullError | None:
    """The DiskFullError for ``exc`` raised while writing ``path``, or None if it is another error."""
    if isinstance(exc, DiskFullError):
        return exc
    if not is_disk_full(exc):
        return None
    quota = getattr(exc, "errno", None) == errno.EDQUOT or "quota" in str(exc).lower()
    return DiskFullError.writing(path, quota=quota)


@contextmanager
def disk_full_as_error(path: str | Path) -> Iterator[None]:
    """Turn a full disk met inside the block into a ``DiskFullError`` naming ``path``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        full = disk_full_error(exc, path)
        if full is None:
            raise
        raise full from None


def fsync_file(path: str | Path) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where folders cannot be
    opened or fsynced (some file systems, other platforms)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in FULL_ERRNOS or exc.errno == errno.EIO:
            raise
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file under ``folder``, then its folders (before the folder is renamed into place)."""
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files:
            fsync_file(os.path.join(root, name))
        fsync_dir(root)


def write_atomic(path: str | Path, write: Callable[[Path], Any], *, fsync: bool = True) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it onto ``path``
    (see the module doc). ``fsync=False`` skips both fsyncs (for files rewritten often whose
    loss in an OS crash is harmless). The folder is created if needed. A full disk is a
    ``DiskFullError``; on any error the temporary is removed and ``path`` is unchanged."""
    path = Path(path)
    with disk_full_as_error(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            if fsync:
                fsync_file(tmp)
            umask_mode(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if fsync:
            fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8", newline: str | None = None,
                      fsync: bool = True) -> Path:
    """``write_atomic`` of a text."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding=encoding, newline=newline) as handle:
            handle.write(text)

    return write_atomic(path, write, fsync=fsync)


def write_bytes_atomic(path: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """``write_atomic`` of bytes."""
    return write_atomic(path, lambda tmp: tmp.write_bytes(data), fsync=fsync)


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 1, fsync: bool = True,
                      **dumps: Any) -> Path:
    """``write_atomic`` of ``json.dumps(obj, indent=indent, **dumps)`` and a final newline; the
    text is made before any file is touched, so an object that cannot be encoded changes nothing.
    NaN and infinities are refused (they are not JSON) unless ``allow_nan=True`` is passed."""
    dumps.setdefault("allow_nan", False)
    text = json.dumps(obj, indent=indent, **dumps) + "\n"
    return write_text_atomic(path, text, fsync=fsync)


def read_toml(path: str | Path, what: str) -> dict:
    """The parsed TOML file ``path`` (a study file, a check suite); a missing file or invalid TOML
    is one ConfigError line naming ``what``."""
    import sys

    from robustrec.errors import ConfigError

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 4 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | Path, what: str, error: type[RobustRecError] = DataError, hint: str = "") -> Any:
    """The parsed JSON file ``path``; a missing, unreadable, non-UTF-8 or non-JSON file is one
    ``error`` line: ``<what> <path> is unreadable (corrupt, not valid JSON: ...)``, then ``; <hint>``."""
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} not found{tail}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path} is unreadable (not UTF-8 text: {exc.reason} at byte {exc.start}){tail}") from None
    except OSError as exc:
        raise error(f"{what} {path} is unreadable ({exc.strerror or exc}){tail}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} {path} is unreadable (corrupt, not valid JSON: {exc}){tail}") from None
