"""On-disk caption cache: one JSON file per (captioner, dataset), keyed by item id.

File format (UTF-8 JSON, written atomically: temp file in the same folder, then `os.replace`)::

    {
      "format": "robustrec-caption-cache",
      "version": 1,
      "captioner": "blip2:Salesforce/blip2-opt-2.7b",   # who wrote the captions
      "dataset": "baby",                                 # dataset name
      "fingerprint": "sha256:...",                       # dataset fingerprint given by the caller
      "captions": {"0": "a baby stroller ...", ...},      # item id (as string) -> caption
      "skipped": {"17": "unreadable image: ...", ...}     # item id -> why it has no caption
    }

A cache opened for a different captioner, dataset or fingerprint is rejected with `DataError`,
so captions are never silently mixed. Items already captioned (or skipped) are not redone, which
makes an interrupted run resumable. The LAVIS script (`lavis_caption.py`) writes the same format
without importing this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robustrec.errors import DataError
from robustrec.files import read_json, write_text_atomic

CACHE_FORMAT = "robustrec-caption-cache"
CACHE_VERSION = 1


@dataclass(frozen=True)
class CaptionRunSummary:
    """What one captioning run did: new captions, newly skipped items, items already cached."""

    captioned: int
    skipped: int
    cached: int


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see either the old or the new file, never half
    (`robustrec.files.write_text_atomic`; a full disk is a one-line DiskFullError)."""
    write_text_atomic(path, text)


def cache_file_name(captioner_id: str) -> str:
    """File name for a captioner's cache: the id with unsafe characters replaced by `_`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", captioner_id).strip("_") + ".json"


def default_cache_path(data_dir: Path, name: str, captioner_id: str) -> Path:
    """Default cache location: `<data-dir>/<name>/captions/<sanitized captioner id>.json`."""
    return Path(data_dir) / name / "captions" / cache_file_name(captioner_id)


class CaptionCache:
    """Captions of one dataset by one captioner, persisted to a JSON file.

    Use `CaptionCache.open` to create or resume a cache for writing and `CaptionCache.load` to
    read an existing one. `add`/`skip` record results and flush every `flush_every` changes.
    """

    def __init__(
        self,
        path: Path,
        captioner_id: str,
        dataset: str,
        fingerprint: str,
        *,
        flush_every: int = 32,
    ) -> None:
        if flush_every < 1:
            raise ValueError("flush_every must be >= 1")
        self.path = Path(path)
        self.captioner_id = captioner_id
        self.dataset = dataset
        self.fingerprint = fingerprint
        self.flush_every = flush_every
        self._captions: dict[int, str] = {}
        self._skipped: dict[int, str] = {}
        self._unsaved = 0

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: Path,
        captioner_id: str,
        dataset: str,
        fingerprint: str,
        *,
        flush_every: int = 32,
    ) -> CaptionCache:
        """Resume the cache at `path` (checking its header) or start an empty one."""
        cache = cls(path, captioner_id, dataset, fingerprint, flush_every=flush_every)
        if cache.path.exists():
            payload = _read_payload(cache.path)
            _check_header(cache.path, payload, captioner_id, dataset, fingerprint)
            cache._captions, cache._skipped = _read_entries(cache.path, payload)
        return cache

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        captioner_id: str | None = None,
        dataset: str | None = None,
        fingerprint: str | None = None,
    ) -> CaptionCache:
        """Read an existing cache; the header fields that are given must match."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"caption cache not found: {path}")
        payload = _read_payload(path)
        _check_header(path, payload, captioner_id, dataset, fingerprint)
        cache = cls(path, payload["captioner"], payload["dataset"], payload["fingerprint"])
        cache._captions, cache._skipped = _read_entries(path, payload)
        return cache

    def reload(self) -> None:
        """Re-read the file (e.g. after another process wrote it); the header must still match."""
        payload = _read_payload(self.path)
        _check_header(self.path, payload, self.captioner_id, self.dataset, self.fingerprint)
        self._captions, self._skipped = _read_entries(self.path, payload)
        self._unsaved = 0

    # -- reading ------------------------------------------------------------------------------

    @property
    def captions(self) -> dict[int, str]:
        """A copy of the captions: item id -> caption."""
        return dict(self._captions)

    @property
    def skipped(self) -> dict[int, str]:
        """A copy of the skipped items: item id -> reason."""
        return dict(self._skipped)

    def get(self, item_id: int) -> str | None:
        """The caption of `item_id`, or None."""
        return self._captions.get(int(item_id))

    def __contains__(self, item_id: object) -> bool:
        try:
            return int(item_id) in self._captions  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False

    def __len__(self) -> int:
        return len(self._captions)

    def pending(self, item_ids: Iterable[int], *, retry_skipped: bool = False) -> list[int]:
        """Item ids (in the given order) that still need a caption."""
        done = self._captions.keys() if retry_skipped else self._captions.keys() | self._skipped.keys()
        return [int(i) for i in item_ids if int(i) not in done]

    # -- writing ------------------------------------------------------------------------------

    def add(self, item_id: int, caption: str) -> None:
        """Record a caption (clears an earlier skip of the same item)."""
        item_id = int(item_id)
        self._captions[item_id] = caption
        self._skipped.pop(item_id, None)
        self._changed()

    def skip(self, item_id: int, reason: str) -> None:
        """Record that `item_id` could not be captioned, and why."""
        self._skipped[int(item_id)] = reason
        self._changed()

    def update(self, captions: Mapping[int, str]) -> None:
        """Record many captions at once."""
        for item_id, caption in captions.items():
            self.add(item_id, caption)

    def flush(self) -> None:
        """Write the cache atomically to its path."""
        atomic_write_text(self.path, json.dumps(self.to_payload(), ensure_ascii=False, indent=1))
        self._unsaved = 0

    def to_payload(self) -> dict[str, Any]:
        """The JSON document written to disk."""
        return {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "captioner": self.captioner_id,
            "dataset": self.dataset,
            "fingerprint": self.fingerprint,
            "captions": {str(k): v for k, v in sorted(self._captions.items())},
            "skipped": {str(k): v for k, v in sorted(self._skipped.items())},
        }

    def _changed(self) -> None:
        self._unsaved += 1
        if self._unsaved >= self.flush_every:
            self.flush()


def _read_payload(path: Path) -> dict[str, Any]:
    """Parse the JSON file and check it is a caption cache of a known version."""
    payload = read_json(path, "caption cache", DataError)
    if not isinstance(payload, dict) or payload.get("format") != CACHE_FORMAT:
        raise DataError(f"{path} is not a robustrec caption cache")
    if payload.get("version") != CACHE_VERSION:
        raise DataError(f"caption cache {path} has unsupported version {payload.get('version')!r}")
    return payload


def _check_header(
    path: Path,
    payload: Mapping[str, Any],
    captioner_id: str | None,
    dataset: str | None,
    fingerprint: str | None,
) -> None:
    """Raise DataError when a given expectation differs from the file's header."""
    if captioner_id is not None and payload.get("captioner") != captioner_id:
        raise DataError(
            f"caption cache {path} was made by captioner {payload.get('captioner')!r}, "
            f"not {captioner_id!r}; use another --cache path"
        )
    if dataset is not None and payload.get("dataset") != dataset:
        raise DataError(
            f"caption cache {path} is for dataset {payload.get('dataset')!r}, not {dataset!r}"
        )
    if fingerprint is not None and payload.get("fingerprint") != fingerprint:
        raise DataError(
            f"caption cache {path} was made for a different version of dataset "
            f"{payload.get('dataset')!r} (fingerprint mismatch); delete it or use another --cache path"
        )


def _read_entries(path: Path, payload: Mapping[str, Any]) -> tuple[dict[int, str], dict[int, str]]:
    """The `captions` and `skipped` maps with integer keys."""
    try:
        captions = {int(k): str(v) for k, v in dict(payload.get("captions", {})).items()}
        skipped = {int(k): str(v) for k, v in dict(payload.get("skipped", {})).items()}
    except (TypeError, ValueError):
        raise DataError(f"caption cache {path} has a non-integer item id") from None
    return captions, skipped
