"""Checks on output locations, run before any work so a bad path never costs a training."""

from __future__ import annotations

import os
from pathlib import Path

from robustrec.errors import ConfigError


def check_output_dir(path: str | Path, flag: str) -> Path:
    """``path`` as given, if it is (or can be created as) a writable folder; else a ConfigError.

    Walks up to the first part of the path that exists: it must be a folder we may write to.
    """
    path = Path(path)
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        where = "is a file" if probe == path else f"cannot be created: {probe} is a file"
        raise ConfigError(f"{flag} {str(path)!r} {where}, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {str(path)!r} is not writable")
    return path


def check_folder_name(name: str, flag: str) -> str:
    """A single, visible folder name: no separators, not '.', '..' or hidden (robustrec's own
    temporary and partial folders start with a dot)."""
    bad = (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
           or "\0" in name)
    if bad:
        raise ConfigError(f"{flag} must be a plain folder name (no '/', not starting with '.'), got {name!r}")
    return name


def umask_mode(path: str | Path) -> None:
    """Give a file or folder made by ``tempfile`` (0600 / 0700), and everything inside a folder
    (safetensors writes 0600 files too), the modes the user's umask gives ``open`` and ``mkdir``
    (typically 0644 / 0755); called before the temporary is renamed into place."""
    mask = os.umask(0)
    os.umask(mask)
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    if not os.path.isdir(path):
        os.chmod(path, file_mode)
        return
    os.chmod(path, dir_mode)
    for root, dirs, files in os.walk(path):
        for name in dirs:
            os.chmod(os.path.join(root, name), dir_mode)
        for name in files:
            os.chmod(os.path.join(root, name), file_mode)
