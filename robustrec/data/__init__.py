"""Datasets: MMRec-format folders, the built-in synthetic set, and the BPR sampler."""

from __future__ import annotations

from pathlib import Path

from robustrec.data.dataset import InteractionData
from robustrec.errors import DataError

SYNTHETIC = "synthetic"


def load_dataset(name: str, data_dir: str | Path = "data") -> InteractionData:
    """The dataset called ``name``: the built-in synthetic set, or ``<data_dir>/<name>/``."""
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"invalid dataset name {name!r}")
    if name == SYNTHETIC and not (Path(data_dir) / name / f"{name}.inter").is_file():
        from robustrec.data.synthetic import make_synthetic

        return make_synthetic().data
    from robustrec.data.mmrec import load_mmrec

    return load_mmrec(data_dir, name)


__all__ = ["InteractionData", "load_dataset", "SYNTHETIC"]
