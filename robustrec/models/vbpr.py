"""VBPR (He & McAuley, AAAI 2016), in MMRec's variant."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender, bpr_loss, l2_penalty
from robustrec.models.projection import FeatureProjection, unique_rows
from robustrec.models.registry import register


@register
class VBPR(Recommender):
    """Item = [ID embedding ; W·[image ; text] + b], user embedding of twice the width.

    As in MMRec, the visual part is a linear projection of the concatenation of every item
    modality present (image, text, audio, ...). BPR loss plus ``reg_weight`` times the
    L2 norm of the batch's user and item representations. Defaults (MMRec): embedding 64
    (user 128), reg_weight 1e-4 (from MMRec's grid). The projection is evaluated only for
    the items of a batch during training, which gives the same gradients as projecting all.
    """

    name = "vbpr"
    paper = "He & McAuley, VBPR: Visual Bayesian Personalized Ranking from Implicit Feedback, AAAI 2016"
    multimodal = True
    features_at_inference = True
    loss_reads_features = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        reg_weight: float = 1e-4

        def __post_init__(self) -> None:
            if self.embedding_dim < 1 or self.reg_weight < 0:
                raise ConfigError(f"vbpr needs embedding_dim >= 1 and reg_weight >= 0, got {self}")

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, 2 * dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        dims = {m: f.shape[1] for m, f in self.features().items()}
        self.projection = FeatureProjection(dims, dim)

    def item_representations(self, items: torch.Tensor | None = None) -> torch.Tensor:
        ids = self.item_embedding if items is None else self.item_embedding[items]
        return torch.cat([ids, self.projection(self.features(), items)], dim=1)

    def final_embeddings(self):
        return self.user_embedding, self.item_representations()

    def loss(self, users, pos, neg):
        items, (pos_at, neg_at) = unique_rows(pos, neg)
        item_rep = self.item_representations(items)
        u, i, j = self.user_embedding[users], item_rep[pos_at], item_rep[neg_at]
        reg = l2_penalty(u, i, j)
        return bpr_loss((u * i).sum(1), (u * j).sum(1)) + self.params.reg_weight * reg

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
