"""BPR-MF: matrix factorisation trained with the BPR loss (Rendle et al., UAI 2009)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustrec.models.base import Recommender, bpr_loss, l2_penalty
from robustrec.models.registry import register


@register
class BPRMF(Recommender):
    """User and item ID embeddings scored by dot product. Defaults: embedding 64, reg 1e-4."""

    name = "bprmf"
    paper = "Rendle et al., BPR: Bayesian Personalized Ranking from Implicit Feedback, UAI 2009"

    @dataclass
    class Params:
        embedding_dim: int = 64
        reg_weight: float = 1e-4

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, params.embedding_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, params.embedding_dim)))

    def final_embeddings(self):
        return self.user_embedding, self.item_embedding

    def loss(self, users, pos, neg):
        u, i, j = self.user_embedding[users], self.item_embedding[pos], self.item_embedding[neg]
        return bpr_loss((u * i).sum(1), (u * j).sum(1)) + self.params.reg_weight * l2_penalty(u, i, j)

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
