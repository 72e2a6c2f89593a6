"""Datasets: MMRec-format folders, the built-in synthetic set's interactions, and the BPR sampler."""

from __future__ import annotations

from pathlib import Path

from robustrec.data.dataset import InteractionData
from robustrec.errors import DataError

SYNTHETIC = "synthetic"


def load_dataset(name: str, data_dir: str | Path = "data", modalities=None) -> InteractionData:
    """The dataset ``<data_dir>/<name>/``; ``modalities``: load only these feature files (None: every
    ``<modality>_feat.npy``).

    Only reads: the built-in ``synthetic`` dataset is written by ``robustrec.synthetic.folder`` (it
    needs the text encoder, a higher floor), which commands call first (``prepare_dataset``)."""
    if not name or "/" in name or name.startswith("."):
        raise DataError(f"invalid dataset name {name!r}")
    from robustrec.data.mmrec import load_mmrec

    if name == SYNTHETIC and not (Path(data_dir) / name / f"{name}.inter").is_file():
        raise DataError(f"the built-in dataset {name!r} is not made yet under {data_dir}: any robustrec command "
                        "that uses it makes it (robustrec.synthetic.folder.prepare_dataset)")
    return load_mmrec(data_dir, name, modalities)


__all__ = ["InteractionData", "load_dataset", "SYNTHETIC"]
