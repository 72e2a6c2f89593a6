"""What a dataset folder holds: interactions per split, density, degree spread, every feature file
(``<modality>_feat.npy``, any modality name) with its coverage, and the raw content (texts, images).

``inspect_dataset`` returns plain data (JSON-able); the CLI draws it. Feature rows are checked for
what published feature files are known to contain: non-finite values, all-zero rows (a missing
item encoded as zeros) and duplicate rows.

"fingerprint" is the data fingerprint every command shows for this dataset (report headings,
``compare``, checkpoint errors): a hash of the user and item counts and the train/valid/test
interactions, computed even when training would refuse the folder. Each feature file has its own
fingerprint (shape and float32 values), as runs' data.json and reports record per modality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robustrec.errors import DataError

FEATURE_SUFFIX = "_feat.npy"


def inspect_dataset(name: str, data_dir: str | Path) -> dict:
    """A summary of ``<data_dir>/<name>/``; malformed files are one-line DataErrors."""
    from robustrec.data import load_dataset
    from robustrec.data.mmrec import load_interactions

    try:  # what training would load
        data = load_dataset(name, data_dir)
        load_error = None
    except DataError as exc:  # training would refuse the folder: say why, still show its interactions
        data, load_error = load_interactions(data_dir, name), str(exc)
    folder = Path(data_dir) / name
    # the data fingerprint every command shows (reports, compare, checkpoint errors): the interactions'
    # (see reports.schema.data_fingerprint); each feature file has its own, under "modalities"
    return {"name": data.name, "folder": str(folder.resolve()), "fingerprint": data.interactions_fingerprint(),
            "load_error": load_error, "interactions": _interactions(data),
            "modalities": [_modality(path, data.n_items) for path in feature_files(folder)],
            "content": _content(folder, name, data.n_items)}


def feature_files(folder: Path) -> list[Path]:
    """``<modality>_feat.npy`` files of a dataset folder, by modality name."""
    return sorted(p for p in Path(folder).glob(f"*{FEATURE_SUFFIX}") if p.is_file() and p.name != FEATURE_SUFFIX)


def _spread(counts: np.ndarray) -> dict:
    return {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())}


def _interactions(data) -> dict:
    total = data.train + data.valid + data.test
    per_user, per_item = np.diff(total.tocsr().indptr), np.asarray(total.sum(axis=0)).ravel()
    train_items = np.asarray(data.train.sum(axis=0)).ravel()
    return {"users": data.n_users, "items": data.n_items,
            "train": int(data.train.nnz), "valid": int(data.valid.nnz), "test": int(data.test.nnz),
            "total": int(total.nnz), "density": float(total.nnz / (data.n_users * data.n_items)),
            "per_user": _spread(per_user), "per_item": _spread(per_item),
            "items_without_training_interactions": int((train_items == 0).sum()),
            "users_with_test_items": int((np.diff(data.test.indptr) > 0).sum()),
            "users_with_valid_items": int((np.diff(data.valid.indptr) > 0).sum())}


def _modality(path: Path, n_items: int) -> dict:
    from robustrec.data.mmrec import MASK_SUFFIX, _load_features, _load_mask

    modality = path.name[: -len(FEATURE_SUFFIX)]
    matrix = _load_features(path, modality)  # one-line errors for anything that is not an array
    dtype = str(np.load(path, mmap_mode="r", allow_pickle=False).dtype)  # as stored, before float32
    if matrix.ndim != 2:
        raise DataError(f"{path} has shape {matrix.shape}, expected (n_items, dim)")
    finite = np.isfinite(matrix).all(axis=1)
    zero = finite & ~matrix.any(axis=1)
    covered, mask_file = finite & ~zero, path.with_name(f"{modality}{MASK_SUFFIX}")
    if mask_file.is_file() and matrix.shape[0] == n_items:  # the extractor's record of which items had content
        covered = _load_mask(mask_file, n_items)
    usable = matrix[covered & finite & ~zero]  # filled rows are equal by design: not counted as duplicates
    duplicates = len(usable) - len(np.unique(usable, axis=0)) if len(usable) else 0
    from robustrec.data.dataset import feature_fingerprint

    return {"modality": modality, "file": path.name, "fingerprint": feature_fingerprint(matrix),
            "rows": int(matrix.shape[0]), "dim": int(matrix.shape[1]),
            "dtype": dtype, "rows_match_items": matrix.shape[0] == n_items,
            "non_finite_rows": int((~finite).sum()), "all_zero_rows": int(zero.sum()),
            "duplicate_rows": int(duplicates),
            "coverage": float(covered.sum() / n_items) if n_items else 0.0,
            "mask": mask_file.name if mask_file.is_file() else None}


def _content(folder: Path, name: str, n_items: int) -> dict:
    from robustrec.data.content import item_text_path, load_item_images, load_item_records

    out = {"texts": None, "images": None}
    if item_text_path(folder, name).is_file():
        records = load_item_records(folder, name, n_items)
        out["texts"] = {"file": item_text_path(folder, name).name, "items": len(records),
                        "coverage": len(records) / n_items}
    if (folder / "images").is_dir() or (folder / f"{name}_url.csv").is_file():
        images = load_item_images(folder, name)
        local = [p for p in images.values() if "://" not in p]
        out["images"] = {"source": "images/" if (folder / "images").is_dir() else f"{name}_url.csv",
                         "items": len(images), "coverage": len(images) / n_items,
                         "local_files": sum(Path(p).is_file() for p in local), "urls": len(images) - len(local)}
    return out
