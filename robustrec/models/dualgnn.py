"""DualGNN (Wang et al., IEEE TMM 2021): per-modality GCNs fused with a user co-occurrence graph."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from robustrec.models.base import Recommender, bpr_loss
from robustrec.models.graph import normalized_bipartite, spmm
from robustrec.models.registry import register
from robustrec.models.user_graph import cached_neighbours, top_k_neighbours, user_graph_operator


class ModalityGCN(nn.Module):
    """One modality's branch (DualGNN/DRAGON): items are a 2-layer MLP of their features, users
    are free preference vectors; rows are L2-normalised, then x + Âx + Â²x over the
    symmetric-normalised user–item graph Â (no self loops)."""

    def __init__(self, n_users: int, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, dim)))
        self.hidden = nn.Linear(feature_dim, 4 * dim)
        self.out = nn.Linear(4 * dim, dim)

    def forward(self, adjacency: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        items = self.out(F.leaky_relu(self.hidden(features)))
        x = F.normalize(torch.cat([self.preference, items]))
        first = spmm(adjacency, x)
        return x + first + spmm(adjacency, first)


def log2_bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """−mean log₂ σ(pos − neg), the BPR variant DualGNN/DRAGON train with."""
    return bpr_loss(pos, neg) / math.log(2.0)


def init_modality_weights(n_users: int, n_modalities: int) -> nn.Parameter:
    """Per-user modality weights, softmax-normalised once at init and then free (as in MMRec)."""
    return nn.Parameter(F.softmax(nn.init.xavier_normal_(torch.empty(n_users, n_modalities)), dim=1))


@register
class DualGNN(Recommender):
    """One GCN branch per modality (image, text, audio, ...); a user's representation is the per-user weighted sum of
    its branch outputs plus the softmax-weighted sum of its top-k co-occurring users'
    representations; an item's is the sum of its branch outputs. Scores are dot products and
    depend on item features at inference.

    Defaults (MMRec ``DualGNN.yaml`` / model code): embedding 64, two graph layers, k = 40
    user neighbours with softmax weights on co-occurrence counts, ``construction='weighted_sum'``,
    log₂-BPR loss, reg_weight 1e-3 (middle of MMRec's grid 1e-1…1e-5; tune on validation) on the
    batch users' preference vectors and the modality weights. Deviations: the user graph is
    built in the library and deterministic (see ``user_graph``); MMRec's unused drop-edge lists
    and unused ``weight_i`` are left out; MMRec adds the text output to the image output in
    place before weighting (users get w_v·(v+t) + w_t·t), here users get w_v·v + w_t·t as in
    the paper.
    """

    name = "dualgnn"
    graph_at_inference = True
    paper = ("Wang et al., DualGNN: Dual Graph Neural Network for Multimedia Recommendation, "
             "IEEE Transactions on Multimedia 2021")
    multimodal = True
    features_at_inference = True
    loss_reads_features = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        user_graph_k: int = 40
        user_aggregation: str = "softmax"
        reg_weight: float = 1e-3

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        self.adjacency = normalized_bipartite(data.train)
        dims = {m: getattr(self, f"feat_{m}").shape[1] for m in self.feature_names}
        self.branches = nn.ModuleDict({m: ModalityGCN(self.n_users, dims[m], params.embedding_dim)
                                       for m in self.feature_names})
        self.modality_weight = init_modality_weights(self.n_users, len(self.feature_names))
        neighbours = cached_neighbours(data, params.user_graph_k)
        self.user_graph, self.user_graph_t = user_graph_operator(neighbours, params.user_aggregation)

    def interactions_changed(self, train):
        """The user–item graph and the user co-occurrence graph, from ``train``."""
        self.adjacency = self.place(normalized_bipartite(train))
        neighbours = top_k_neighbours(train, self.params.user_graph_k)
        graph, graph_t = user_graph_operator(neighbours, self.params.user_aggregation)
        self.user_graph, self.user_graph_t = self.place(graph), self.place(graph_t)

    def final_embeddings(self):
        reps = torch.stack([self.branches[m](self.adjacency, getattr(self, f"feat_{m}"))
                            for m in self.feature_names], dim=2)
        users = (reps[: self.n_users] * self.modality_weight.unsqueeze(1)).sum(2)
        items = reps[self.n_users:].sum(2)
        users = users + spmm(self.user_graph, users, self.user_graph_t)
        return users, items

    def loss(self, users, pos, neg):
        user_all, item_all = self.final_embeddings()
        u = user_all[users]
        ranking = log2_bpr_loss((u * item_all[pos]).sum(1), (u * item_all[neg]).sum(1))
        reg = sum(b.preference[users].pow(2).mean() for b in self.branches.values())
        reg = reg + self.modality_weight.pow(2).mean()
        return ranking + self.params.reg_weight * reg

    def embedding_tables(self):
        return {f"user_{m}": b.preference for m, b in self.branches.items()}
