"""Item content of a dataset folder: item texts and item images.

A dataset folder `<data-dir>/<name>/` may carry:

* **Item text** — `<name>.items.jsonl`, one JSON object per line::

      {"itemID": 0, "title": "...", "brand": "...", "categories": ["Baby", "Feeding"], "description": "..."}

  `itemID` is the 0-based internal item id (the same ids as `<name>.inter`). Every other field is
  optional; `categories` may be a list of strings (or nested lists, as in Amazon metadata) or a
  string. Items without a line get the empty text.

* **Item images** — either a folder `images/` holding files named `<itemID>.<ext>` (png, jpg, ...),
  or a CSV `<name>_url.csv` with a header and columns `itemID,asin,imUrl` (MMRec's layout) or
  `itemID,path`. Relative paths are resolved against the dataset folder; rows with an empty
  path/URL are left out. The folder wins when both exist.

Item text is built the MMRec way: the fields title, brand, categories, description, in that order,
each stripped, empties dropped, categories joined by ", ", and the fields joined by ". " into one
string (`build_item_text`). This is the text the sentence encoder turns into `text_feat.npy`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robustrec.errors import DataError

ITEM_TEXT_FIELDS: tuple[str, ...] = ("title", "brand", "categories", "description")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


def item_text_path(folder: Path, name: str) -> Path:
    """Path of the item-text file of dataset `name` in `folder`."""
    return Path(folder) / f"{name}.items.jsonl"


def _flatten_categories(value: Any) -> list[str]:
    """Categories as a flat list of non-empty strings (Amazon nests them in lists)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, (list, tuple)):
        return [c for v in value for c in _flatten_categories(v)]
    return [str(value)]


def build_item_text(record: Mapping[str, Any]) -> str:
    """One item's text: title, brand, categories, description joined by '. ' (empties dropped)."""
    parts: list[str] = []
    for field in ITEM_TEXT_FIELDS:
        value = record.get(field)
        text = ", ".join(_flatten_categories(value)) if field == "categories" else str(value or "")
        text = text.strip()
        if text:
            parts.append(text)
    return ". ".join(parts)


def load_item_records(folder: Path, name: str, n_items: int) -> dict[int, dict[str, Any]]:
    """Parse `<name>.items.jsonl`: item id -> record; ids must be unique and in [0, n_items)."""
    path = item_text_path(folder, name)
    if not path.is_file():
        raise DataError(f"dataset {name!r} has no item text: {path} not found")
    records: dict[int, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                item_id, record = _parse_record(path, line_no, line, n_items)
                if item_id in records:
                    raise DataError(f"{path}:{line_no}: duplicate itemID {item_id}")
                records[item_id] = record
    return records


def _parse_record(path: Path, line_no: int, line: str, n_items: int) -> tuple[int, dict[str, Any]]:
    """One JSONL line -> (item id, record), with one-line errors."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict) or "itemID" not in record:
        raise DataError(f"{path}:{line_no}: expected a JSON object with an 'itemID'")
    item_id = record["itemID"]
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise DataError(f"{path}:{line_no}: itemID must be an integer, got {item_id!r}")
    if not 0 <= item_id < n_items:
        raise DataError(f"{path}:{line_no}: itemID {item_id} outside [0, {n_items})")
    return item_id, record


def load_item_texts(folder: Path, name: str, n_items: int) -> dict[int, str]:
    """Item id -> item text (see `build_item_text`) for every item in [0, n_items)."""
    records = load_item_records(folder, name, n_items)
    return {i: build_item_text(records[i]) if i in records else "" for i in range(n_items)}


def load_item_images(folder: Path, name: str) -> dict[int, str]:
    """Item id -> image path or URL, from `images/` or `<name>_url.csv` (see module doc)."""
    folder = Path(folder)
    image_dir = folder / "images"
    if image_dir.is_dir():
        return _images_from_folder(image_dir)
    csv_path = folder / f"{name}_url.csv"
    if csv_path.is_file():
        return _images_from_csv(csv_path, folder)
    raise DataError(f"dataset {name!r} has no item images: neither {image_dir}/ nor {csv_path} found")


def _images_from_folder(image_dir: Path) -> dict[int, str]:
    """Files `<itemID>.<ext>` in `image_dir`; other files are ignored."""
    images: dict[int, str] = {}
    for path in sorted(image_dir.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit():
            item_id = int(path.stem)
            if item_id in images:
                raise DataError(f"{image_dir}: more than one image for item {item_id}")
            images[item_id] = str(path)
    if not images:
        raise DataError(f"{image_dir} holds no images named <itemID>.<ext>")
    return images


def _images_from_csv(csv_path: Path, folder: Path) -> dict[int, str]:
    """Rows `itemID,asin,imUrl` or `itemID,path` of a CSV with a header."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        source = "imUrl" if "imUrl" in columns else "path" if "path" in columns else None
        if "itemID" not in columns or source is None:
            raise DataError(f"{csv_path}: expected columns itemID,asin,imUrl or itemID,path")
        images: dict[int, str] = {}
        for row_no, row in enumerate(reader, start=2):
            value = (row.get(source) or "").strip()
            if value:
                images[_csv_item_id(csv_path, row_no, row.get("itemID"))] = _resolve(value, folder)
    return images


def _csv_item_id(csv_path: Path, row_no: int, value: str | None) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise DataError(f"{csv_path}:{row_no}: itemID must be an integer, got {value!r}") from None


def _resolve(value: str, folder: Path) -> str:
    """URLs and absolute paths unchanged; relative paths made relative to the dataset folder."""
    if "://" in value or Path(value).is_absolute():
        return value
    return str(folder / value)
