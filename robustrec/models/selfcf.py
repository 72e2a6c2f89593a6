"""SelfCF-ed (Zhou et al., TORS 2023): self-supervised CF with embedding dropout on a LightGCN backbone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender
from robustrec.models.graph import bipartite_adjacency, sym_normalize, to_torch_csr
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.registry import register


class EdgeDropout:
    """Drops undirected edges of a symmetric CSR adjacency and rescales the rest by 1/(1 − rate).

    Both directions of an edge are kept or dropped together, so the result stays symmetric
    and ``spmm``'s symmetric backward applies. Draws from torch's RNG.
    """

    def __init__(self, train: sp.csr_matrix) -> None:
        edge_ids = sp.csr_matrix((np.arange(1, train.nnz + 1, dtype=np.float64), train.indices, train.indptr),
                                 shape=train.shape)
        ids = sp.csr_matrix(bipartite_adjacency(edge_ids).astype(np.float64))
        ids.sort_indices()
        adjacency = to_torch_csr(sym_normalize(bipartite_adjacency(train)))
        self.crow = adjacency.crow_indices()
        self.col = adjacency.col_indices()
        self.values = adjacency.values()
        self.entry_edge = torch.from_numpy(ids.data.astype(np.int64) - 1)
        if not torch.equal(self.col, torch.from_numpy(ids.indices.astype(np.int64))):
            raise AssertionError("edge-id and adjacency sparsity patterns differ")
        self.n_edges, self.shape = train.nnz, adjacency.shape
        self.full = adjacency

    def apply_tensors(self, fn) -> None:
        """Convert the pattern's tensors with ``fn`` (the owning model's ``.to()``)."""
        for name in ("crow", "col", "values", "entry_edge", "full"):
            setattr(self, name, fn(getattr(self, name)))

    def __call__(self, rate: float) -> torch.Tensor:
        # drawn by the CPU generator on every device (the same edges for one seed), then moved
        keep_edge = (torch.rand(self.n_edges) >= rate).to(self.entry_edge.device)
        keep = keep_edge[self.entry_edge]
        kept_before = torch.cat([torch.zeros(1, dtype=torch.int64, device=keep.device), torch.cumsum(keep, 0)])
        return torch.sparse_csr_tensor(kept_before[self.crow], self.col[keep], self.values[keep] / (1.0 - rate),
                                       size=self.shape, check_invariants=False)


@register
class SelfCF(Recommender):
    """SelfCF-ed: an online LightGCN encoder plus a linear predictor; targets are dropped-out copies.

    Zhou et al., "SelfCF: A Simple Framework for Self-supervised Collaborative Filtering",
    ACM TORS 2023 — the "ed" (embedding dropout) variant that MMRec ships as ``SELFCFED_LGN``.
    For a batch of observed (user, item) pairs the online embeddings u, i come from a LightGCN
    encoder (mean of layers 0..L); the targets are stop-gradient copies passed through dropout
    ``dropout``; the loss is −½cos(P u, drop(i)) − ½cos(P i, drop(u)) + reg_weight·½(‖u‖² + ‖i‖²),
    with P a linear predictor. No negatives are needed: the sampled negatives are ignored.
    As in MMRec's (BUIR-derived) encoder, each training forward pass drops graph edges at a
    rate drawn uniformly from [0, ``edge_drop_max``) and rescales the rest; here both
    directions of an edge drop together (MMRec drops the two directed entries independently).
    Scores are P u · i + u · P i on the full graph, i.e. the dot product of [P u, u] and [i, P i].

    Defaults (MMRec ``SELFCFED_LGN.yaml``): embedding 64, 2 layers, dropout 0.5, reg_weight 0.0;
    the encoder's edge-drop ceiling is 1.0.
    """

    name = "selfcf"
    graph_at_inference = True
    paper = "Zhou et al., SelfCF: A Simple Framework for Self-supervised Collaborative Filtering, ACM TORS 2023"

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_layers: int = 2
        dropout: float = 0.5
        reg_weight: float = 0.0
        edge_drop_max: float = 1.0

    def __init__(self, data, params: Params) -> None:
        if not 0.0 <= params.dropout < 1.0:
            raise ConfigError(f"selfcf dropout must be in [0, 1), got {params.dropout}")
        if not 0.0 <= params.edge_drop_max <= 1.0:
            raise ConfigError(f"selfcf edge_drop_max must be in [0, 1], got {params.edge_drop_max}")
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.predictor = nn.Linear(dim, dim)
        self.edge_dropout = EdgeDropout(data.train.tocsr())

    def interactions_changed(self, train):
        dropout = EdgeDropout(train)
        dropout.apply_tensors(self.place)
        self.edge_dropout = dropout

    def _encode(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_embedding, self.item_embedding])
        out = propagate_mean(adjacency, ego, self.params.n_layers)
        return out[: self.n_users], out[self.n_users:]

    def _training_adjacency(self) -> torch.Tensor:
        rate = float(torch.rand(())) * self.params.edge_drop_max
        return self.edge_dropout(rate) if rate > 0 else self.edge_dropout.full

    def loss(self, users, pos, neg):
        user_all, item_all = self._encode(self._training_adjacency())
        u, i = user_all[users], item_all[pos]
        with torch.no_grad():
            u_target = F.dropout(u, self.params.dropout, training=True)
            i_target = F.dropout(i, self.params.dropout, training=True)
        loss_ui = -F.cosine_similarity(self.predictor(u), i_target, dim=-1).mean()
        loss_iu = -F.cosine_similarity(self.predictor(i), u_target, dim=-1).mean()
        reg = 0.5 * (u.pow(2).sum() + i.pow(2).sum())
        return (loss_ui + loss_iu) / 2 + self.params.reg_weight * reg

    def final_embeddings(self):
        users, items = self._encode(self.edge_dropout.full)
        return torch.cat([self.predictor(users), users], 1), torch.cat([items, self.predictor(items)], 1)

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
