"""BM3 (Zhou et al., WWW 2023): bootstrapped multimodal latent representations, no negatives."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender
from robustrec.models.graph import normalized_bipartite
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.registry import register


def cosine_gap(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean cosine similarity, with the target treated as a constant."""
    return 1.0 - F.cosine_similarity(online, target.detach(), dim=-1).mean()


@register
class BM3(Recommender):
    """LightGCN-propagated ID embeddings (items add their ego embedding) are the online view;
    a dropout-perturbed, gradient-free copy is the target; a shared linear predictor maps
    online views onto targets (user→item, item→user), and projected features of every modality are
    pulled to the items' targets and to their own dropped-out copies. Only the (user, positive)
    pairs of a batch are used; negatives are ignored. Scoring uses predictor(ID embeddings)
    only, so item features do not matter at inference.

    Defaults (MMRec ``BM3.yaml``, the grid points used for Baby): embedding 64, feat_embed_dim
    64, n_layers 1, dropout 0.5, reg_weight 0.1 (on the Frobenius norms of the propagated
    tables divided by n_items, as MMRec's EmbLoss), cl_weight 2.0, features fine-tuned as in
    MMRec (``tune_features``; off keeps them frozen and makes checkpoints smaller). Features
    are projected only for the batch's items, which gives the same loss as projecting all.
    """

    name = "bm3"
    graph_at_inference = True
    paper = "Zhou et al., Bootstrap Latent Representations for Multi-modal Recommendation, WWW 2023"
    multimodal = True
    features_at_inference = False

    @dataclass
    class Params:
        embedding_dim: int = 64
        feat_embed_dim: int = 64
        n_layers: int = 1
        dropout: float = 0.5
        reg_weight: float = 0.1
        cl_weight: float = 2.0
        tune_features: bool = True

    def __init__(self, data, params: Params) -> None:
        if params.feat_embed_dim != params.embedding_dim:
            raise ConfigError("bm3 shares one predictor between ID and feature views: "
                              f"feat_embed_dim ({params.feat_embed_dim}) must equal embedding_dim "
                              f"({params.embedding_dim})")
        if not 0.0 <= params.dropout < 1.0:
            raise ConfigError(f"bm3 dropout must be in [0, 1), got {params.dropout}")
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.predictor = nn.Linear(dim, dim)
        nn.init.xavier_normal_(self.predictor.weight)
        self.projections = nn.ModuleDict()
        for m in self.feature_names:
            self.projections[m] = nn.Linear(getattr(self, f"feat_{m}").shape[1], dim)
            nn.init.xavier_normal_(self.projections[m].weight)
        self.tuned = nn.ParameterDict({m: nn.Parameter(getattr(self, f"feat_{m}").clone())
                                       for m in self.feature_names} if params.tune_features else {})
        self.adjacency = normalized_bipartite(data.train)

    def interactions_changed(self, train):
        self.adjacency = self.place(normalized_bipartite(train))

    def _online(self) -> tuple[torch.Tensor, torch.Tensor]:
        ego = torch.cat([self.user_embedding, self.item_embedding])
        out = propagate_mean(self.adjacency, ego, self.params.n_layers)
        return out[: self.n_users], out[self.n_users:] + self.item_embedding

    def final_embeddings(self):
        users, items = self._online()
        return self.predictor(users), self.predictor(items)

    def _item_features(self, modality: str, items: torch.Tensor) -> torch.Tensor:
        table = self.tuned[modality] if self.params.tune_features else getattr(self, f"feat_{modality}")
        return self.projections[modality](table[items])

    def loss(self, users, pos, neg):
        p = self.params
        user_all, item_all = self._online()
        u_online, i_online = self.predictor(user_all[users]), self.predictor(item_all[pos])
        with torch.no_grad():
            u_target = F.dropout(user_all[users], p.dropout)
            i_target = F.dropout(item_all[pos], p.dropout)
        loss = cosine_gap(u_online, i_target) + cosine_gap(i_online, u_target)
        feature_loss = 0.0
        for m in self.feature_names:
            projected = self._item_features(m, pos)
            target = F.dropout(projected.detach(), p.dropout)
            online = self.predictor(projected)
            feature_loss = feature_loss + cosine_gap(online, i_target) + cosine_gap(online, target)
        reg = (user_all.norm() + item_all.norm()) / self.n_items
        return loss + p.reg_weight * reg + p.cl_weight * feature_loss

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
