"""An example model from a file: matrix factorisation whose items also read their features.

    robustrec models check robustrec/examples/models/mf_text.py:MFText
    robustrec train --model robustrec/examples/models/mf_text.py:MFText --dataset synthetic

Item = ID embedding + a linear projection of the item's features (every modality, concatenated).
"""

from dataclasses import dataclass

import torch
from torch import nn

from robustrec.models.base import Recommender, bpr_loss, l2_penalty


class MFText(Recommender):
    name = "mf-text"
    paper = "example: BPR-MF plus a linear map of the item features"
    multimodal = True  # built with every modality of the data (feature buffers feat_<m>)
    features_at_inference = True  # the features enter the scores
    loss_reads_features = True  # ...and the loss, straight from the buffers

    @dataclass
    class Params:
        embedding_dim: int = 32
        reg_weight: float = 1e-4

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        width = sum(f.shape[1] for f in self.features().values())
        self.project = nn.Linear(width, dim, bias=False)

    def items(self) -> torch.Tensor:
        content = torch.cat(list(self.features().values()), dim=1)
        return self.item_embedding + self.project(content)

    def final_embeddings(self):
        return self.user_embedding, self.items()

    def loss(self, users, pos, neg):
        items = self.items()
        u, i, j = self.user_embedding[users], items[pos], items[neg]
        return bpr_loss((u * i).sum(1), (u * j).sum(1)) + self.params.reg_weight * l2_penalty(u, i, j)

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
