"""Datasets: MMRec-format folders, the built-in synthetic set, and the BPR sampler."""

from __future__ import annotations

from pathlib import Path

from robustrec.data.dataset import InteractionData
from robustrec.errors import DataError

SYNTHETIC = "synthetic"


def load_dataset(name: str, data_dir: str | Path = "data", modalities=None) -> InteractionData:
    """The dataset ``<data_dir>/<name>/``; the built-in ``synthetic`` one is written there on first use.

    ``modalities``: load only these feature files (None: every ``<modality>_feat.npy``)."""
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"invalid dataset name {name!r}")
    from robustrec.data.mmrec import load_mmrec

    if name == SYNTHETIC:
        from robustrec.data.synthetic_folder import ensure_synthetic

        ensure_synthetic(data_dir)

    return load_mmrec(data_dir, name, modalities)


__all__ = ["InteractionData", "load_dataset", "SYNTHETIC"]
