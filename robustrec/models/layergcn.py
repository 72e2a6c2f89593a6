"""LayerGCN (Zhou et al., ICDE 2023): layer-refined graph convolution with degree-sensitive edge dropout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender, bpr_loss, l2_penalty
from robustrec.models.graph import normalized_bipartite, spmm
from robustrec.models.registry import register

#: smallest ‖p‖·‖e‖ a cosine divides by (as in ``F.cosine_similarity``)
COSINE_EPS = 1e-8


def propagate_refined(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Σₗ xₗ with xₗ = cos(A xₗ₋₁, ego) ⊙ A xₗ₋₁ row-wise, x₀ = ego (ego itself is not summed).

    The cosine is written out as (p·e)/(‖p‖‖e‖) with ‖e‖ computed once: it needs far fewer
    passes over the (nodes × dim) matrices than ``F.cosine_similarity``, forward and backward.
    """
    ego_norm = torch.linalg.vector_norm(ego, dim=1)
    layer, total = ego, None
    for _ in range(n_layers):
        propagated = spmm(adjacency, layer)
        dot = (propagated * ego).sum(1)
        norms = torch.linalg.vector_norm(propagated, dim=1) * ego_norm
        layer = (dot / norms.clamp_min(COSINE_EPS)).unsqueeze(1) * propagated
        total = layer if total is None else total + layer
    return total


def edge_keep_weights(train: sp.csr_matrix) -> torch.Tensor:
    """1/√(d_u·d_i) per training edge (CSR order): edges between high-degree nodes weigh least."""
    user_degree = np.diff(train.indptr).astype(np.float64)
    item_degree = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    weights = ((user_degree[users] + 1e-7) * (item_degree[train.indices] + 1e-7)) ** -0.5
    return torch.from_numpy(weights.astype(np.float32))


@register
class LayerGCN(Recommender):
    """LightGCN-style propagation where each layer is rescaled by its cosine similarity to the ego layer.

    Zhou et al., "Layer-refined Graph Convolutional Networks for Recommendation", ICDE 2023.
    Layer output xₗ = cos(A xₗ₋₁, x₀) ⊙ A xₗ₋₁ (per node), final embedding Σₗ₌₁..ᴸ xₗ. Before
    every epoch (``pre_epoch``) a fraction ``dropout`` of the training edges is pruned and the
    rest renormalised; as in MMRec the pruning alternates between degree-sensitive sampling
    (keep edges ∝ 1/√(d_u·d_i), so edges of high-degree nodes go first) and uniform sampling,
    starting with degree-sensitive. Sampling draws from torch's RNG, so a seeded trainer
    reproduces it. Scoring always uses the full graph.

    Defaults (MMRec ``LayerGCN.yaml``): embedding 64, 4 layers; MMRec grid-searches
    reg_weight ∈ {1e-2, 1e-3, 1e-4, 1e-5} and dropout ∈ {0.0, 0.1, 0.2} — the defaults here are
    reg_weight 1e-4, dropout 0.1. The loss is BPR + reg_weight·Σ‖ego‖²/2 over the batch's ego
    embeddings; MMRec sums the BPR term over the batch instead of averaging, which differs by
    the batch-size factor only (Adam is invariant to it).
    """

    name = "layergcn"
    graph_at_inference = True
    paper = "Zhou et al., Layer-refined Graph Convolutional Networks for Recommendation, ICDE 2023"
    host_tensors = ("keep_weights",)  # edge sampling draws from the CPU generator on every device

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_layers: int = 4
        reg_weight: float = 1e-4
        dropout: float = 0.1

    def __init__(self, data, params: Params) -> None:
        if not 0.0 <= params.dropout < 1.0:
            raise ConfigError(f"layergcn dropout must be in [0, 1), got {params.dropout}")
        if params.n_layers < 1:
            raise ConfigError(f"layergcn n_layers must be >= 1, got {params.n_layers}")
        super().__init__(data, params)
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, params.embedding_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, params.embedding_dim)))
        self.train_matrix = data.train.tocsr()
        self.adjacency = normalized_bipartite(self.train_matrix)
        self.keep_weights = edge_keep_weights(self.train_matrix)
        self.train_adjacency = self.adjacency
        self._epochs_sampled = 0

    def interactions_changed(self, train):
        self.train_matrix = train
        self.adjacency = self.place(normalized_bipartite(train))
        self.keep_weights = edge_keep_weights(train)
        self.train_adjacency = self.adjacency

    def pre_epoch(self) -> None:
        """Resample the pruned training graph (degree-sensitive on even calls, uniform on odd)."""
        self.train_adjacency = self._pruned_adjacency(degree_sensitive=self._epochs_sampled % 2 == 0)
        self._epochs_sampled += 1

    def epoch_state(self) -> dict:
        return {"epochs_sampled": self._epochs_sampled}

    def load_epoch_state(self, state: dict) -> None:
        self._epochs_sampled = int(state["epochs_sampled"])

    def _pruned_adjacency(self, degree_sensitive: bool) -> torch.Tensor:
        n_edges = len(self.keep_weights)
        n_keep = int(n_edges * (1.0 - self.params.dropout))
        if n_keep == n_edges:
            return self.adjacency
        if degree_sensitive:
            keep = torch.multinomial(self.keep_weights, n_keep, replacement=False)
        else:
            keep = torch.randperm(n_edges)[:n_keep]
        mask = np.zeros(n_edges, dtype=bool)
        mask[keep.numpy()] = True
        kept = self.train_matrix.copy()
        kept.data = mask.astype(np.float32)
        kept.eliminate_zeros()
        return self.place(normalized_bipartite(kept))

    def _propagate(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_embedding, self.item_embedding])
        out = propagate_refined(adjacency, ego, self.params.n_layers)
        return out[: self.n_users], out[self.n_users:]

    def final_embeddings(self):
        return self._propagate(self.adjacency)

    def loss(self, users, pos, neg):
        user_all, item_all = self._propagate(self.train_adjacency)
        u, i, j = user_all[users], item_all[pos], item_all[neg]
        reg = l2_penalty(self.user_embedding[users], self.item_embedding[pos], self.item_embedding[neg])
        return bpr_loss((u * i).sum(1), (u * j).sum(1)) + self.params.reg_weight * reg

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
