"""Load a dataset folder in MMRec's layout: ``<name>.inter`` plus optional feature files.

Every ``<modality>_feat.npy`` in the folder is a modality (image, text, audio, whisper, ...: any
name); ``<modality>_mask.npy`` beside it, when present, is a boolean vector saying which items
had content (``robustrec features extract`` writes it; rows without content are filled, see its
``features.json``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from robustrec.data.dataset import (InteractionData, canonical_order, check_modality_name,
                                    interactions_matrix, modalities_not_found)
from robustrec.errors import DataError

REQUIRED_COLUMNS = ("userID", "itemID", "x_label")
FEATURE_SUFFIX = "_feat.npy"
MASK_SUFFIX = "_mask.npy"


def feature_modalities(folder: str | Path) -> tuple[str, ...]:
    """The modalities of a dataset folder: the ``<modality>`` of each ``<modality>_feat.npy``."""
    names = [p.name[: -len(FEATURE_SUFFIX)] for p in Path(folder).glob(f"*{FEATURE_SUFFIX}")
             if p.is_file() and p.name != FEATURE_SUFFIX]
    return canonical_order(n for n in names if _valid_name(n))


def _valid_name(name: str) -> bool:
    try:
        check_modality_name(name)
    except DataError:
        return False
    return True


def load_mmrec(data_dir: str | Path, name: str, modalities=None) -> InteractionData:
    """Read ``<data_dir>/<name>/<name>.inter`` (tab-separated, header ``userID itemID x_label``).

    ``x_label`` is 0 for train, 1 for valid, 2 for test; extra columns are ignored.
    Features: every ``<modality>_feat.npy`` of the folder, or only ``modalities`` when given
    (each must exist), with its ``<modality>_mask.npy`` when present.
    """
    data = load_interactions(data_dir, name)
    folder = Path(data.source)
    available = feature_modalities(folder)
    if modalities is None:
        chosen = available
    else:
        chosen = canonical_order(check_modality_name(m) for m in modalities)
        missing = [m for m in chosen if m not in available]
        if missing:
            raise DataError(modalities_not_found(name, folder, missing, available))
    if not chosen:
        return data
    features = {m: _load_features(folder / f"{m}{FEATURE_SUFFIX}", m) for m in chosen}
    masks = {m: _load_mask(folder / f"{m}{MASK_SUFFIX}", data.n_items) for m in chosen
             if (folder / f"{m}{MASK_SUFFIX}").is_file()}
    return InteractionData(data.name, data.n_users, data.n_items, data.train, data.valid, data.test,
                           features, data.source, masks)


def load_interactions(data_dir: str | Path, name: str) -> InteractionData:
    """The interactions of ``<data_dir>/<name>/`` only (no feature file is read)."""
    folder = Path(data_dir) / name
    if not Path(data_dir).is_dir():
        raise DataError(f"data directory {str(data_dir)!r} does not exist")
    inter_path = folder / f"{name}.inter"
    if not inter_path.is_file():
        raise DataError(f"dataset file {inter_path} not found (expected MMRec layout <data-dir>/<name>/<name>.inter)")
    users, items, labels = _read_inter(inter_path)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    splits = [interactions_matrix(users[labels == k], items[labels == k], n_users, n_items) for k in (0, 1, 2)]
    if splits[0].nnz == 0:
        raise DataError(f"{inter_path} has no training rows (x_label 0)")
    return InteractionData(name, n_users, n_items, *splits, source=str(folder))


def _read_inter(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        frame = pd.read_csv(path, sep="\t", usecols=lambda c: c in REQUIRED_COLUMNS)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} could not be parsed as tab-separated text: {str(exc).splitlines()[0]}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path} is missing column(s) {', '.join(missing)} (header must hold userID itemID x_label)")
    if frame.empty:
        raise DataError(f"{path} has a header but no interactions")
    columns = [_int_column(frame[c], c, path) for c in REQUIRED_COLUMNS]
    users, items, labels = columns
    if not np.isin(labels, (0, 1, 2)).all():
        bad = labels[~np.isin(labels, (0, 1, 2))][0]
        raise DataError(f"{path}: x_label must be 0 (train), 1 (valid) or 2 (test), found {bad}")
    return users, items, labels


def _int_column(series: pd.Series, column: str, path: Path) -> np.ndarray:
    if pd.api.types.is_integer_dtype(series.dtype):
        numeric = series
    else:
        numeric = pd.to_numeric(series.astype(str).str.strip(), errors="coerce")
    bad = numeric.isna() | (numeric != numeric.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {column} row {row + 2} is not an integer: {str(series.iloc[row])!r}")
    values = numeric.to_numpy().astype(np.int64)
    if (values < 0).any():
        row = int(np.flatnonzero(values < 0)[0])
        raise DataError(f"{path}: column {column} row {row + 2} is negative ({values[row]}); ids must be 0-based")
    return values


def _load_features(path: Path, modality: str) -> np.ndarray:
    try:
        matrix = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        # numpy's own message for a pickle suggests allow_pickle=True: robustrec never unpickles
        reason = ("it holds pickled Python objects, which are never loaded" if "pickle" in str(exc)
                  else str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise DataError(f"{path} is not a .npy array file: {reason}") from None
    if not isinstance(matrix, np.ndarray):  # an .npz archive
        matrix.close()
        raise DataError(f"{path} is an .npz archive, expected one .npy array (n_items × dim)")
    if not np.issubdtype(matrix.dtype, np.number):
        raise DataError(f"{path} holds {matrix.dtype} values, expected numbers")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _load_mask(path: Path, n_items: int) -> np.ndarray:
    """A coverage mask: one boolean (or 0/1) per item."""
    try:
        mask = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is not a .npy array file: {reason}") from None
    if not isinstance(mask, np.ndarray):
        mask.close()
        raise DataError(f"{path} is an .npz archive, expected one boolean vector")
    if mask.shape != (n_items,):
        raise DataError(f"{path} has shape {mask.shape}, expected one flag per item ({n_items},)")
    if mask.dtype != np.bool_:
        if not np.issubdtype(mask.dtype, np.number) or not np.isin(mask, (0, 1)).all():
            raise DataError(f"{path} must hold booleans (True = the item has content)")
        mask = mask.astype(bool)
    return mask
