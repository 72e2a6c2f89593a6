"""Where extracted features go: checks before any work, atomic writes, and the linked dataset copy.

With an output folder other than the source, the output becomes a complete dataset folder: the
new feature files plus symlinks to the source's `<name>.inter`, `<name>.items.jsonl`, CSV files,
`images/` and any `*_feat.npy` / `*_mask.npy` not being rebuilt (existing entries are left alone).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from robustrec.errors import ConfigError

PARTIAL = ".features.partial"


def writable(folder: Path) -> bool:
    """May we write into `folder`? Folders without any write permission bit count as read-only, even
    for root (who may write anywhere, but a chmod a-w folder says "do not write here")."""
    return os.access(folder, os.W_OK | os.X_OK) and bool(folder.stat().st_mode & 0o222)


def check_in_place(folder: Path) -> None:
    if not writable(folder):
        raise ConfigError(f"dataset folder {folder} is not writable; write the features elsewhere "
                          f"with --out-dir DIR (a dataset folder DIR/{folder.name}/ linking to this one)")


def check_out_folder(folder: Path) -> None:
    """`folder` exists as a writable folder or can be created (its first existing parent is writable)."""
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"--out-dir: {probe} is a file, not a folder")
    if not writable(probe):
        raise ConfigError(f"--out-dir: {probe} is not writable")


def make_folder(folder: Path) -> list[Path]:
    """Create `folder` and missing parents; return the folders created (deepest last)."""
    missing = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return missing[::-1]


def remove_created(created: list[Path], partial: Path) -> None:
    """Undo a run that must leave nothing: the partial folder, then the folders it created (if empty)."""
    shutil.rmtree(partial, ignore_errors=True)
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """np.save into a temp file beside `path`, then rename over it (a symlink is replaced, not
    followed); see `robustrec.files.write_atomic`."""
    from robustrec.files import write_atomic

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)

    write_atomic(path, write)


def linked_entries(source: Path, name: str, rebuilt: set[str]) -> list[Path]:
    """Entries of `source` that the output folder links to (see module doc)."""
    keep = []
    for entry in sorted(source.iterdir()):
        file_name = entry.name
        feature = file_name.endswith(("_feat.npy", "_mask.npy"))
        if (file_name in (f"{name}.inter", f"{name}.items.jsonl") or entry.suffix == ".csv"
                or (file_name == "images" and entry.is_dir())
                or (feature and file_name.rsplit("_", 1)[0] not in rebuilt)):
            keep.append(entry)
    return keep


def link_source(source: Path, out: Path, name: str, rebuilt: set[str]) -> list[str]:
    """Symlink the source's entries into `out` (absolute targets); return the names linked now."""
    linked = []
    for entry in linked_entries(source, name, rebuilt):
        target = out / entry.name
        if not os.path.lexists(target):
            os.symlink(entry.absolute(), target, target_is_directory=entry.is_dir())
            linked.append(entry.name)
    return linked
