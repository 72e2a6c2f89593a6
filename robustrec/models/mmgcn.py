"""MMGCN (Wei et al., ACM MM 2019), following the paper and MMRec's defaults."""

from __future__ import annotations

from dataclasses import dataclass

import math

import torch
from torch import nn
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender, bpr_loss, joint_xavier_tables
from robustrec.models.graph import bipartite_adjacency, layer_sum, row_normalize, spmm, to_torch_csr, transpose_csr
from robustrec.models.registry import register


class ModalityGCN(nn.Module):
    """One modality's graph: user preference vectors and item features, L GCN layers.

    Per layer (paper Eqs. 1–5, MMRec's ``GCN``): h = σ(mean_{j∈N(i)} W x_j) (aggregation),
    x̂ = σ(W₁ x) + id (combination with the ID embedding), x = σ(W₂ h + x̂) ("concat False").
    The first layer works at the modality's width (``latent_dim`` after a linear map of the raw
    features, or the raw width when ``latent_dim`` is 0); later layers at the ID width.
    """

    def __init__(self, n_users: int, feature_dim: int, latent_dim: int, id_dim: int, n_layers: int) -> None:
        super().__init__()
        width = latent_dim or feature_dim
        self.mlp = nn.Linear(feature_dim, latent_dim) if latent_dim else None
        self.preference = nn.Parameter(nn.init.xavier_normal_(torch.empty(n_users, width)))
        widths = [width] + [id_dim] * (n_layers - 1)
        self.conv = nn.ParameterList([nn.Parameter(_uniform(w, w)) for w in widths])
        self.linear = nn.ModuleList([_xavier_linear(w, id_dim) for w in widths])
        self.gate = nn.ModuleList([_xavier_linear(w, id_dim) for w in widths])

    def forward(self, features: torch.Tensor, id_embedding: torch.Tensor, adjacency, adjacency_t) -> torch.Tensor:
        items = self.mlp(features) if self.mlp is not None else features
        x = F.normalize(torch.cat([self.preference, items]), dim=1)
        for conv, linear, gate in zip(self.conv, self.linear, self.gate):
            h = F.leaky_relu(spmm(adjacency, x @ conv, adjacency_t))
            x_hat = F.leaky_relu(linear(x)) + id_embedding
            x = F.leaky_relu(gate(h) + x_hat)
        return x


def _uniform(fan_in: int, out: int) -> torch.Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(fan_in, out).uniform_(-bound, bound)


def _xavier_linear(fan_in: int, out: int) -> nn.Linear:
    layer = nn.Linear(fan_in, out)
    nn.init.xavier_normal_(layer.weight)
    return layer


@register
class MMGCN(Recommender):
    """A GCN per modality over the user–item graph; user/item = sum of the modality outputs.

    Each modality (any number: the paper's visual, acoustic and textual branches) has its own
    user preference table and item features; every layer mixes in a shared learned ID embedding. Mean aggregation (D⁻¹A). BPR loss plus ``reg_weight`` ×
    (mean squared ID embeddings of the batch + mean squared preference tables).
    Defaults (MMRec MMGCN.yaml / mmgcn.py): embedding 64, n_layers 2, image projected to a
    latent width 256 first and text used at its raw width (``text_latent_dim`` 0),
    aggr_mode mean, concate False, reg_weight 1e-4 (grid 0…0.1); any other modality (audio, ...)
    is projected to ``latent_dim`` first (0, the default, uses its raw width). Deviations from MMRec,
    which hard-codes 3 layers, averages the modalities and leaves its ID and preference
    tensors outside the optimizer: here ``n_layers`` is honoured, modalities are summed as
    in the paper, and ID/preference tables are learned.
    """

    name = "mmgcn"
    graph_at_inference = True
    paper = ("Wei et al., MMGCN: Multi-modal Graph Convolution Network for Personalized "
             "Recommendation of Micro-video, ACM MM 2019")
    multimodal = True
    features_at_inference = True
    loss_reads_features = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_layers: int = 2
        image_latent_dim: int = 256
        text_latent_dim: int = 0
        latent_dim: int = 0
        reg_weight: float = 1e-4

        def __post_init__(self) -> None:
            if self.embedding_dim < 1 or self.n_layers < 1:
                raise ConfigError(f"mmgcn needs embedding_dim >= 1 and n_layers >= 1, got {self}")
            if min(self.image_latent_dim, self.text_latent_dim, self.latent_dim) < 0 or self.reg_weight < 0:
                raise ConfigError(f"mmgcn latent dims and reg_weight must be >= 0, got {self}")

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding, self.item_embedding = joint_xavier_tables(self.n_users, self.n_items, dim)
        latent = {"image": params.image_latent_dim, "text": params.text_latent_dim}
        self.branches = nn.ModuleDict({
            m: ModalityGCN(self.n_users, f.shape[1], latent.get(m, params.latent_dim), dim, params.n_layers)
            for m, f in self.features().items()})
        self.adjacency = to_torch_csr(row_normalize(bipartite_adjacency(data.train)))
        self.adjacency_t = transpose_csr(self.adjacency)

    def interactions_changed(self, train):
        adjacency = to_torch_csr(row_normalize(bipartite_adjacency(train)))
        self.adjacency, self.adjacency_t = self.place(adjacency), self.place(transpose_csr(adjacency))

    def representations(self) -> torch.Tensor:
        feats = self.features()
        ids = torch.cat([self.user_embedding, self.item_embedding])
        outs = [branch(feats[m], ids, self.adjacency, self.adjacency_t)
                for m, branch in self.branches.items()]
        return layer_sum(outs)

    def final_embeddings(self):
        out = self.representations()
        return out[: self.n_users], out[self.n_users:]

    def loss(self, users, pos, neg):
        out = self.representations()
        pos_nodes, neg_nodes = pos + self.n_users, neg + self.n_users
        u = out[users]
        loss = bpr_loss((u * out[pos_nodes]).sum(1), (u * out[neg_nodes]).sum(1))
        user_sq = self.user_embedding[users].pow(2)
        reg = ((user_sq + self.item_embedding[pos].pow(2)).mean()
               + (user_sq + self.item_embedding[neg].pow(2)).mean()) / 2
        reg = reg + sum(branch.preference.pow(2).mean() for branch in self.branches.values())
        return loss + self.params.reg_weight * reg

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
