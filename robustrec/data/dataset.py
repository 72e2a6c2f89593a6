"""The in-memory dataset every other stage consumes: train matrix, held-out items, features."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from robustrec.errors import DataError

#: the modalities MMRec's datasets ship, first in canonical order; any other name follows, sorted
PRIMARY_MODALITIES = ("image", "text")
_MODALITY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def canonical_order(modalities) -> tuple[str, ...]:
    """image, text, then every other modality alphabetically (the order models lay branches in)."""
    names = set(modalities)
    return tuple(m for m in PRIMARY_MODALITIES if m in names) + tuple(sorted(names - set(PRIMARY_MODALITIES)))


def check_modality_name(name: str) -> str:
    """A modality name is the ``<name>`` of a ``<name>_feat.npy`` file: lower-case letters, digits, _ and -."""
    if not _MODALITY_NAME.match(name):
        raise DataError(f"invalid modality name {name!r}: use lower-case letters, digits, '_' or '-' "
                        f"(the <name> of a <name>_feat.npy file)")
    return name


@dataclass
class InteractionData:
    """User–item interactions split into train/valid/test, with optional item features.

    Ids are 0-based internal ids; row ``i`` of every feature matrix describes item ``i``.
    ``train`` is a binary CSR matrix (n_users × n_items); ``valid`` and ``test`` are CSR
    matrices of held-out items (users without held-out items have empty rows).
    ``features`` maps a modality name (any: image, text, audio, ...) to its n_items × dim
    float32 matrix; ``masks`` optionally maps a modality to a boolean vector, True where the
    item had content (rows that are False were filled, e.g. with the mean row).
    """

    name: str
    n_users: int
    n_items: int
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    features: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for modality, matrix in self.features.items():
            check_features(modality, matrix, self.n_items)
        for modality, mask in self.masks.items():
            if modality not in self.features:
                raise DataError(f"a coverage mask for {modality!r} needs {modality} features")
            if mask.shape != (self.n_items,) or mask.dtype != np.bool_:
                raise DataError(f"{modality} coverage mask must be a boolean vector of {self.n_items} items, "
                                f"got {mask.dtype} {mask.shape}")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities whose features are loaded, in canonical order."""
        return canonical_order(self.features)

    def coverage(self, modality: str) -> np.ndarray:
        """Boolean vector: which items had content for ``modality`` (all True without a mask)."""
        return self.masks.get(modality, np.ones(self.n_items, dtype=bool))

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
        h = self._interactions_hash()
        for modality in sorted(self.features):
            h.update(modality.encode())
            h.update(memoryview(np.ascontiguousarray(self.features[modality], dtype=np.float32)))
        return h.hexdigest()[:16]

    def interactions_fingerprint(self) -> str:
        """Content hash of the interactions and splits only."""
        return self._interactions_hash().hexdigest()[:16]

    def feature_fingerprints(self) -> dict[str, str]:
        """Per modality, a content hash of its feature matrix (shape and float32 values)."""
        return {m: feature_fingerprint(self.features[m]) for m in self.modalities}

    def _interactions_hash(self):
        h = hashlib.sha256()
        h.update(f"{self.n_users}:{self.n_items}".encode())
        for matrix in (self.train, self.valid, self.test):
            h.update(matrix.indptr.astype(np.int64).tobytes())
            h.update(matrix.indices.astype(np.int64).tobytes())
        return h

    def with_features(self, features: dict[str, np.ndarray]) -> "InteractionData":
        """A copy sharing the interactions but with the given feature matrices (coverage masks
        of modalities that remain are kept: they describe the clean content)."""
        masks = {m: v for m, v in self.masks.items() if m in features}
        return InteractionData(self.name, self.n_users, self.n_items, self.train,
                               self.valid, self.test, dict(features), self.source, masks)

    def select_modalities(self, modalities) -> "InteractionData":
        """A copy holding only the features of ``modalities`` (each must be loaded)."""
        missing = [m for m in modalities if m not in self.features]
        if missing:
            raise DataError(missing_modalities_message(self, missing))
        return self.with_features({m: self.features[m] for m in canonical_order(modalities)})

    def describe(self) -> dict[str, object]:
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "train": int(self.train.nnz),
            "valid": int(self.valid.nnz),
            "test": int(self.test.nnz),
            "features": {m: list(self.features[m].shape) for m in self.modalities},
            "fingerprint": self.fingerprint(),
            "interactions_fingerprint": self.interactions_fingerprint(),
            "modalities": {m: {"file": f"{m}_feat.npy", "shape": list(self.features[m].shape),
                               "fingerprint": feature_fingerprint(self.features[m]),
                               "covered": int(self.coverage(m).sum())} for m in self.modalities},
        }


def feature_fingerprint(matrix: np.ndarray) -> str:
    """Content hash of one feature matrix: its shape and float32 values."""
    array = np.ascontiguousarray(matrix, dtype=np.float32)
    h = hashlib.sha256(f"{array.shape}".encode())
    h.update(memoryview(array))  # the bytes without a copy of the matrix
    return h.hexdigest()[:16]


def missing_modalities_message(data: "InteractionData", missing) -> str:
    return modalities_not_found(data.name, data.source or data.name, missing, data.modalities)


def modalities_not_found(name: str, where, missing, have) -> str:
    """The one-line message for asked-for modalities a dataset does not have."""
    files = ", ".join(f"{m}_feat.npy" for m in missing)
    return (f"dataset {name!r} has no {', '.join(missing)} features ({files} not found in {where}); "
            f"modalities it has: {', '.join(have) or 'none'}")


def check_features(modality: str, matrix: np.ndarray, n_items: int) -> None:
    """Raise DataError unless ``matrix`` is a finite 2-D array with one row per item."""
    check_modality_name(modality)
    if matrix.ndim != 2:
        raise DataError(f"{modality} features must be 2-D (items × dims), got shape {matrix.shape}")
    if matrix.shape[0] != n_items:
        raise DataError(
            f"{modality} features have {matrix.shape[0]} rows but the dataset has {n_items} items"
        )
    if not np.isfinite(matrix).all():
        bad = int((~np.isfinite(matrix)).any(axis=1).sum())
        raise DataError(f"{modality} features contain NaN or Inf values in {bad} row(s); models never see "
                        f"them: fill missing rows (robustrec features extract writes filled rows and a mask)")


def interactions_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary CSR matrix of (user, item) pairs; duplicates collapse to one."""
    data = np.ones(len(users), dtype=np.float32)
    matrix = sp.csr_matrix((data, (users, items)), shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.sort_indices()
    return matrix
