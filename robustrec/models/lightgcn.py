"""LightGCN (He et al., SIGIR 2020): linear propagation over the user–item graph."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustrec.models.base import Recommender, bpr_loss, l2_penalty
from robustrec.models.graph import layer_mean, normalized_bipartite, spmm
from robustrec.models.registry import register


def propagate_mean(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of the layer outputs E, AE, A²E, …, AᴸE (LightGCN's layer combination)."""
    layers = [ego]
    for _ in range(n_layers):
        layers.append(spmm(adjacency, layers[-1]))
    return layer_mean(layers)


@register
class LightGCN(Recommender):
    """ID embeddings smoothed by L layers of D^-1/2 A D^-1/2 propagation, averaged.

    MMRec defaults: embedding 64, 2 layers (the PERF reference), reg_weight 1e-4 on the
    batch's ego embeddings.
    """

    name = "lightgcn"
    paper = "He et al., LightGCN: Simplifying and Powering Graph Convolution Network for Recommendation, SIGIR 2020"
    graph_at_inference = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_layers: int = 2
        reg_weight: float = 1e-4

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, params.embedding_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, params.embedding_dim)))
        self.adjacency = normalized_bipartite(data.train)

    def interactions_changed(self, train):
        self.adjacency = self.place(normalized_bipartite(train))

    def final_embeddings(self):
        ego = torch.cat([self.user_embedding, self.item_embedding])
        out = propagate_mean(self.adjacency, ego, self.params.n_layers)
        return out[: self.n_users], out[self.n_users:]

    def loss(self, users, pos, neg):
        user_all, item_all = self.final_embeddings()
        u, i, j = user_all[users], item_all[pos], item_all[neg]
        reg = l2_penalty(self.user_embedding[users], self.item_embedding[pos], self.item_embedding[neg])
        return bpr_loss((u * i).sum(1), (u * j).sum(1)) + self.params.reg_weight * reg

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
