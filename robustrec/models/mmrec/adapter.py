"""What an MMRec model sees of the data: a stand-in for MMRec's training ``DataLoader`` (the
``dataset`` argument of ``Model(config, dataset)``) and the files some models read from
``config['data_path'] + config['dataset']``, which robustrec points at a scratch folder of its
own cache, never at the user's data folder."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class _Counts:
    """``dataloader.dataset`` in MMRec: sizes of the training split."""

    def __init__(self, n_users: int, n_items: int, n_inter: int) -> None:
        self.user_num, self.item_num, self.inter_num = n_users, n_items, n_inter

    def get_user_num(self) -> int:
        return self.user_num

    def get_item_num(self) -> int:
        return self.item_num

    def __len__(self) -> int:
        return self.inter_num


class MMRecDataset:
    """``inter_matrix(form='coo'|'csr')``: the n_users × n_items training interactions (value
    1.0 per pair), ``dataset.get_user_num()`` / ``get_item_num()``, ``item_features`` (the
    ``v_feat`` / ``t_feat`` matrices the shim ``GeneralRecommender`` reads), ``config``."""

    def __init__(self, train: sp.csr_matrix, item_features: dict[str, np.ndarray], config) -> None:
        pattern = sp.csr_matrix(train, dtype=np.float64, copy=True)
        pattern.data[:] = 1.0
        self._train = pattern
        self.item_features = item_features
        self.config = config
        self.dataset = _Counts(train.shape[0], train.shape[1], int(pattern.nnz))
        self.batch_size = config["train_batch_size"]

    def inter_matrix(self, form: str = "coo", value_field=None):
        if value_field is not None:
            raise ValueError("robustrec's MMRec adapter has no interaction values other than 1 (value_field)")
        if form == "coo":
            return self._train.tocoo()
        if form == "csr":
            return self._train.copy()
        raise NotImplementedError(f"sparse matrix format [{form}] has not been implemented.")

    def __len__(self) -> int:
        return len(self.dataset)


def cooccurrence_graph_dict(train: sp.csr_matrix, side: str, k: int = 10) -> dict[int, list]:
    """node → [neighbours, weights]: for each item (``side='item'``) or user, the ``k`` others it
    shares the most training interactions with (ties by id), weighted by that count. robustrec's
    stand-in for the ``item_graph_dict`` / ``user_graph_dict`` files MMRec datasets ship
    (DA-MRS, DualGNN), used when the dataset folder holds none."""
    pattern = sp.csr_matrix(train, dtype=np.float32, copy=True)
    pattern.data[:] = 1.0
    if side == "item":
        pattern = pattern.T.tocsr()
    counts = (pattern @ pattern.T).tocsr()
    counts.setdiag(0)
    counts.eliminate_zeros()
    out: dict[int, list] = {}
    for node in range(counts.shape[0]):
        start, end = counts.indptr[node], counts.indptr[node + 1]
        if start == end:
            continue
        others, weights = counts.indices[start:end], counts.data[start:end]
        order = np.lexsort((others, -weights))[:k]
        out[node] = [others[order].astype(np.int64).tolist(), weights[order].astype(np.int64).tolist()]
    return out
