"""The in-memory dataset every other stage consumes: train matrix, held-out items, features."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from robustrec.errors import DataError

MODALITIES = ("image", "text")


@dataclass
class InteractionData:
    """User–item interactions split into train/valid/test, with optional item features.

    Ids are 0-based internal ids; row ``i`` of every feature matrix describes item ``i``.
    ``train`` is a binary CSR matrix (n_users × n_items); ``valid`` and ``test`` are CSR
    matrices of held-out items (users without held-out items have empty rows).
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    features: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        for modality, matrix in self.features.items():
            check_features(modality, matrix, self.n_items)

    @property
    def n_train(self) -> int:
        return int(self.train.nnz)

    def split(self, name: str) -> sp.csr_matrix:
        if name not in ("valid", "test"):
            raise DataError(f"unknown split {name!r}; choose 'valid' or 'test'")
        return self.valid if name == "valid" else self.test

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """(users, items) of every training interaction, in CSR order."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.train.indptr))
        return users, self.train.indices.astype(np.int64)

    def fingerprint(self) -> str:
        """Content hash of the interactions and features: two runs on equal data share it."""
        h = hashlib.sha256()
        h.update(f"{self.n_users}:{self.n_items}".encode())
        for matrix in (self.train, self.valid, self.test):
            h.update(matrix.indptr.astype(np.int64).tobytes())
            h.update(matrix.indices.astype(np.int64).tobytes())
        for modality in sorted(self.features):
            h.update(modality.encode())
            h.update(np.ascontiguousarray(self.features[modality], dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def with_features(self, features: dict[str, np.ndarray]) -> "InteractionData":
        """A copy sharing the interactions but with the given feature matrices."""
        return InteractionData(self.name, self.n_users, self.n_items, self.train,
                               self.valid, self.test, dict(features), self.source)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train": int(self.train.nnz),
            "valid": int(self.valid.nnz),
            "test": int(self.test.nnz),
            "features": {m: list(f.shape) for m, f in self.features.items()},
            "fingerprint": self.fingerprint(),
        }


def check_features(modality: str, matrix: np.ndarray, n_items: int) -> None:
    """Raise DataError unless ``matrix`` is a finite 2-D array with one row per item."""
    if modality not in MODALITIES:
        raise DataError(f"unknown modality {modality!r}; expected one of {', '.join(MODALITIES)}")
    if matrix.ndim != 2:
        raise DataError(f"{modality} features must be 2-D (items × dims), got shape {matrix.shape}")
    if matrix.shape[0] != n_items:
        raise DataError(
            f"{modality} features have {matrix.shape[0]} rows but the dataset has {n_items} items"
        )
    if not np.isfinite(matrix).all():
        raise DataError(f"{modality} features contain NaN or Inf values")


def interactions_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR matrix of (user, item) pairs; duplicates collapse to one."""
    data = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
