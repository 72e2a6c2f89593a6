"""Item kNN on interactions (Sarwar et al., WWW 2001; RecBole's ItemKNN defaults)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from robustrec.errors import ConfigError
from robustrec.models.fitted import NeighbourScores, top_k_neighbours
from robustrec.models.registry import register


@register
class ItemKNN(NeighbourScores):
    """score(u, i) = Σ_{j ∈ train(u)} sim(j, i) over the ``k`` nearest neighbours i of each j.

    sim(i, j) = |U_i ∩ U_j| / (√|U_i| · √|U_j| + shrink): the cosine of the two items'
    columns of the binary training matrix, shrunk toward 0 for rarely co-consumed pairs when
    ``shrink`` > 0. Each item keeps its ``k`` most similar other items with a positive
    similarity (ties: lower item id). Built block by block (``fitted.top_k_neighbours``):
    O(items · k) memory. Defaults are RecBole's: k 100, shrink 0. Nothing to learn.
    """

    name = "itemknn"
    paper = "Sarwar et al., Item-Based Collaborative Filtering Recommendation Algorithms, WWW 2001"

    @dataclass
    class Params:
        k: int = 100
        shrink: float = 0.0

        def __post_init__(self) -> None:
            if self.k < 1 or not self.shrink >= 0 or self.shrink == float("inf"):
                raise ConfigError(f"itemknn needs k >= 1 and a finite shrink >= 0, got {self}")

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        self.set_weights(interaction_neighbours(data.train, params.k, params.shrink))


def interaction_neighbours(train: sp.spmatrix, k: int, shrink: float) -> sp.csr_matrix:
    """Top-``k`` cosine neighbours of every item's column of the binary matrix ``train``."""
    train = sp.csr_matrix(train, dtype=np.float32)
    train.data[:] = 1.0
    by_item = sp.csr_matrix(train.T)
    norms = np.sqrt(np.asarray(train.sum(axis=0)).ravel())

    def similarity(start: int, stop: int) -> np.ndarray:
        co = (by_item[start:stop] @ train).toarray()
        with np.errstate(divide="ignore", invalid="ignore"):
            return co / (norms[start:stop, None] * norms[None, :] + shrink)

    return top_k_neighbours(similarity, train.shape[1], k)
