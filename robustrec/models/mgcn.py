"""MGCN (Yu et al., ACM MM 2023): multi-view graph convolution with a behaviour-guided purifier."""

from __future__ import annotations

from dataclasses import dataclass

import scipy.sparse as sp
import torch
from torch import nn
import torch.nn.functional as F

from robustrec.models.base import Recommender, bpr_loss, check_params, l2_penalty
from robustrec.models.graph import bipartite_adjacency, spmm, sym_normalize, to_torch_csr, transpose_csr
from robustrec.models.knn import similarity_knn_adjacency
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.projection import unique_rows
from robustrec.models.registry import register


def info_nce(view1: torch.Tensor, view2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows of −log(exp(⟨a_i, b_i⟩/τ) / Σ_j exp(⟨a_i, b_j⟩/τ)) on unit vectors.

    Cosines are at most 1, so every logit minus 1/τ is ≤ 0: exponentials of the shifted logits
    cannot overflow, and the shift folds into the product (one pass over the B × B logits for
    the shift, one for exp, instead of logsumexp's max, subtract, exp and recomputed softmax)."""
    a = F.normalize(view1, dim=1) / temperature
    b = F.normalize(view2, dim=1)
    if temperature < 0.05:  # shifted logits could reach -80 and underflow: the stable form
        return (torch.logsumexp(a @ b.t(), dim=1) - (a * b).sum(1)).mean()
    shift = 1.0 / temperature
    shifted = torch.addmm(torch.full((1, 1), -shift, dtype=a.dtype, device=a.device), a, b.t())
    return (torch.exp(shifted).sum(1).log() + shift - (a * b).sum(1)).mean()


def gate(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())


@register
class MGCN(Recommender):
    """Three views of every user and item, fused by attention over the modalities.

    - Behaviour-guided purifier: each modality's features go through a linear map to the
      embedding size and a sigmoid gate that multiplies the item ID embeddings element-wise
      (x_m = e_item ⊙ σ(W_m f_m + b_m)), so features only select what the behaviour
      embedding already holds.
    - Item–item views: x_m propagated ``n_layers`` times over a frozen per-modality kNN graph
      (cosine top-``knn_k``, similarity-weighted, D^-1/2 S D^-1/2); users get the normalised
      user–item matrix times those item vectors.
    - User–item view: LightGCN mean over ``n_ui_layers`` of D^-1/2 A D^-1/2 (no self-loops).
    - Behaviour-aware fuser, any number M of modalities: attention weights softmaxed over the
      modalities give the common part c = Σ_m α_m v_m; each modality's specific part
      (v_m − c) is gated by σ(P_m · user–item view); side = (Σ_m specific_m + c) / (M + 1)
      (MMRec's /3 for image+text). Final = user–item view + side.
    - Loss: BPR + ``reg_weight`` × squared norms of the batch's final vectors / (2 · batch)
      + ``cl_weight`` × (InfoNCE(side, user–item view) over the batch's positive items + the same
      over its users), temperature ``temperature``.

    Defaults are MMRec's MGCN.yaml: embedding 64, n_ui_layers 2, n_layers 1, knn_k 10,
    reg_weight 1e-4, temperature 0.2; cl_weight (MMRec's ``cl_loss``) 0.01 from its grid
    0.001/0.01/0.1. Unlike MMRec, the raw features are the model's input and are not
    fine-tuned (MMRec updates every 4096-d image row with Adam on every step); MMRec's
    ``lambda_coeff`` is unused by its MGCN and omitted.
    """

    name = "mgcn"
    paper = "Yu et al., Multi-View Graph Convolutional Network for Multimedia Recommendation, ACM MM 2023"
    multimodal = True
    features_at_inference = True
    graph_at_inference = True
    loss_reads_features = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        knn_k: int = 10
        n_ui_layers: int = 2
        n_layers: int = 1
        reg_weight: float = 1e-4
        cl_weight: float = 0.01
        temperature: float = 0.2

        def __post_init__(self) -> None:
            checks = [(self.embedding_dim >= 1, "embedding_dim must be >= 1"),
                      (self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}"),
                      (self.n_ui_layers >= 0 and self.n_layers >= 0, "layer counts must be >= 0"),
                      (self.reg_weight >= 0, f"reg_weight must be >= 0, got {self.reg_weight}"),
                      (self.cl_weight >= 0, f"cl_weight must be >= 0, got {self.cl_weight}"),
                      (self.temperature > 0, f"temperature must be > 0, got {self.temperature}")]
            check_params("mgcn", checks)

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.projections = nn.ModuleDict({m: nn.Linear(f.shape[1], dim) for m, f in self.features().items()})
        self.purifiers = nn.ModuleDict({m: gate(dim) for m in self.feature_names})
        self.preferences = nn.ModuleDict({m: gate(dim) for m in self.feature_names})
        self.query = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1, bias=False))
        self.interactions_changed(data.train)
        self.features_changed()

    def interactions_changed(self, train) -> None:
        """The normalised user–item graph and its user → item block (the user–item view)."""
        normalized = sym_normalize(bipartite_adjacency(train))
        self.adjacency = self.place(to_torch_csr(normalized))
        user_item = to_torch_csr(sp.csr_matrix(normalized[: self.n_users, self.n_users:]))
        self.user_item, self.user_item_t = self.place(user_item), self.place(transpose_csr(user_item))

    def features_changed(self) -> None:
        k = self.params.knn_k
        graphs = {m: to_torch_csr(similarity_knn_adjacency(f, k)) for m, f in self.features().items()}
        self.item_graphs = {m: (self.place(g), self.place(transpose_csr(g))) for m, g in graphs.items()}

    # --- views --------------------------------------------------------------------------
    def modality_view(self, modality: str) -> torch.Tensor:
        """(users + items) × dim: the purified item vectors over the modality's kNN graph."""
        purified = self.item_embedding * self.purifiers[modality](self.projections[modality](
            getattr(self, f"feat_{modality}")))
        graph, graph_t = self.item_graphs[modality]
        for _ in range(self.params.n_layers):
            purified = spmm(graph, purified, graph_t)
        users = spmm(self.user_item, purified, self.user_item_t)
        return torch.cat([users, purified])

    def views(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(user–item view, fused side view) of the nodes ``rows`` (users first, then items; None:
        all). Propagation covers the whole graph; the fuser only runs on ``rows`` (a batch's
        users and items in training: about a quarter of Baby's nodes)."""
        content = propagate_mean(self.adjacency, torch.cat([self.user_embedding, self.item_embedding]),
                                 self.params.n_ui_layers)
        views = [self.modality_view(m) for m in self.feature_names]
        if rows is not None:
            content, views = content[rows], [v[rows] for v in views]
        attention = torch.softmax(torch.cat([self.query(v) for v in views], dim=1), dim=1)
        common = sum(attention[:, i:i + 1] * v for i, v in enumerate(views))
        side = common
        for m, v in zip(self.feature_names, views):
            side = side + self.preferences[m](content) * (v - common)
        return content, side / (len(views) + 1)

    def final_embeddings(self):
        content, side = self.views()
        out = content + side
        return out[: self.n_users], out[self.n_users:]

    def loss(self, users, pos, neg):
        p = self.params
        rows, (u_at, i_at, j_at) = unique_rows(users, self.n_users + pos, self.n_users + neg)
        content, side = self.views(rows)
        out = content + side
        u, i, j = out[u_at], out[i_at], out[j_at]
        loss = bpr_loss((u * i).sum(1), (u * j).sum(1))
        if p.reg_weight > 0:
            loss = loss + p.reg_weight * l2_penalty(u, i, j)
        if p.cl_weight > 0:
            loss = loss + p.cl_weight * (info_nce(side[i_at], content[i_at], p.temperature)
                                         + info_nce(side[u_at], content[u_at], p.temperature))
        return loss

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
