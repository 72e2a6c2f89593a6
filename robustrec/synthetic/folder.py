"""The built-in synthetic dataset on disk: ``<data-dir>/synthetic/`` in MMRec layout plus content.

Made once, on first use, from ``make_synthetic``'s interactions and image features. Its item
texts, images and reference captions come from ``robustrec.synthetic.content``; its ``text_feat.npy`` is
the real text encoder (all-MiniLM-L6-v2, as MMRec) applied to those texts, so the caption stress
test re-encodes edited texts with the very encoder that made the clean features. The folder is
written to a temporary sibling and renamed into place, so a half-made dataset is never seen;
processes that ask for it at once make it once (a lock), and one that loses the rename to another
uses the other's folder (both made the same bytes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from robustrec.data.synthetic import SyntheticSpec, make_synthetic
from robustrec.errors import DataError
from robustrec.files import disk_full_as_error, disk_full_error, fsync_dir, fsync_tree
from robustrec.paths import umask_mode

NAME = "synthetic"
#: the feature files the built-in dataset has
MODALITIES = ("image", "text")


def prepare_dataset(name: str, data_dir: str | Path) -> None:
    """Make the built-in dataset ``name`` under ``data_dir`` if it is one and is not there yet (any
    other name: nothing). Commands call it before ``robustrec.data.load_dataset``, which only reads."""
    from robustrec.data import SYNTHETIC

    if name == SYNTHETIC:
        ensure_synthetic(data_dir)


def ensure_synthetic(data_dir: str | Path, spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """The synthetic dataset folder under ``data_dir``, created if it does not exist yet.

    Safe when several processes ask at once (a study's workers): the first makes it under the lock
    ``<data_dir>/.synthetic.lock``, the others wait for it and use what it made."""
    from robustrec.locks import waiting

    folder = Path(data_dir) / NAME
    if _complete(folder):
        return folder
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with waiting(Path(data_dir) / f".{NAME}.lock"):
        if not _complete(folder):
            write_synthetic(folder, spec)
    return folder


def _complete(folder: Path) -> bool:
    return (folder / f"{NAME}.inter").is_file()


def write_synthetic(folder: Path, spec: SyntheticSpec = SyntheticSpec()) -> None:
    """Generate the dataset and its content into ``folder`` atomically."""
    from robustrec.synthetic.content import synthetic_item_texts, write_synthetic_content

    encoder = _text_encoder()
    world = make_synthetic(spec, NAME)
    texts = synthetic_item_texts(world.item_factors, spec.seed)
    text_feat = encoder.encode([texts[i] for i in range(spec.n_items)])
    data = world.data.with_features({"image": world.data.features["image"], "text": text_feat})
    with disk_full_as_error(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}.", dir=folder.parent))
    try:
        _write_inter(tmp / f"{NAME}.inter", data)
        np.save(tmp / "image_feat.npy", data.features["image"])
        np.save(tmp / "text_feat.npy", data.features["text"])
        write_synthetic_content(tmp, NAME, world.item_factors, spec.seed, data.fingerprint())
        umask_mode(tmp)
        fsync_tree(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _complete(folder):  # not lost to another process making the same dataset
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # it did (same spec, same bytes): use its folder
        fsync_dir(folder.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full_error(exc, folder)
        if full is not None:
            raise full from None
        raise


def _write_inter(path: Path, data) -> None:
    rows = []
    for label, matrix in enumerate((data.train, data.valid, data.test)):
        users = np.repeat(np.arange(data.n_users), np.diff(matrix.indptr))
        rows.append(np.column_stack([users, matrix.indices, np.full(len(users), label)]))
    table = np.concatenate(rows)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    np.savetxt(path, table, fmt="%d", delimiter="\t", header="userID\titemID\tx_label", comments="")


def _text_encoder():
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        raise DataError("the synthetic dataset encodes its item texts with sentence-transformers; "
                        "install it with: pip install 'robustrec[captions]'") from None
    from robustrec.features.text import SentenceTextEncoder

    return SentenceTextEncoder()
