"""FREEDOM (Zhou & Shen, ACM MM 2023), following MMRec's implementation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from robustrec.models.base import Recommender, bpr_loss, check_params
from robustrec.models.graph import normalized_bipartite, spmm, to_torch_csr, transpose_csr
from robustrec.models.knn import multimodal_knn_adjacency
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.projection import unique_rows
from robustrec.models.registry import register


@register
class FREEDOM(Recommender):
    """A frozen item–item kNN graph plus a denoised (edge-dropped) user–item graph.

    - Item–item graph: per modality, top-``knn_k`` cosine neighbours of each item (itself
      included), each edge 1/k (MMRec's normalisation), mixed ``mm_image_weight`` · image +
      (1 − ``mm_image_weight``) · text; with other modalities (audio, ...) image keeps its
      weight and the rest share the remainder equally, without image all weigh the same
      (``knn.modality_mix_weights``). Built in memory from the features passed in and
      rebuilt whenever they change; never trained ("frozen").
    - User–item graph: every epoch keeps (1 − ``dropout``) of the training edges, sampled
      without replacement with probability ∝ 1/√(d_u d_i) (degree-sensitive pruning), and
      re-normalises the kept graph symmetrically; scoring uses the full normalised graph.
    - Representations: LightGCN mean over ``n_ui_layers`` on the user–item graph; items add
      ``n_mm_layers`` propagations of their ID embeddings over the item–item graph.
    - Loss: BPR, plus ``reg_weight`` × BPR of the user representation against linear
      projections (``feat_embed_dim``) of each modality's raw features.

    Defaults are MMRec's FREEDOM.yaml: embedding 64, feat_embed_dim 64, knn_k 10,
    mm_image_weight 0.1, n_mm_layers 1, n_ui_layers 2, dropout 0.8 (grid 0.8/0.9),
    reg_weight 0.0 (grid 0/1e-5/1e-4/1e-3). MMRec's ``lambda_coeff`` is unused by its FREEDOM
    and omitted. Unlike MMRec, the raw features are not fine-tuned (they are the model's
    input, so perturbations can replace them); with reg_weight 0 this changes nothing.
    """

    name = "freedom"
    graph_at_inference = True
    paper = ("Zhou & Shen, A Tale of Two Graphs: Freezing and Denoising Graph Structures for "
             "Multimodal Recommendation, ACM MM 2023")
    multimodal = True
    features_at_inference = True
    host_tensors = ("edge_users", "edge_items", "edge_weights")  # edge sampling: the CPU generator

    @dataclass
    class Params:
        embedding_dim: int = 64
        feat_embed_dim: int = 64
        knn_k: int = 10
        mm_image_weight: float = 0.1
        n_ui_layers: int = 2
        n_mm_layers: int = 1
        dropout: float = 0.8
        reg_weight: float = 0.0

        def __post_init__(self) -> None:
            checks = [(self.embedding_dim >= 1 and self.feat_embed_dim >= 1, "dimensions must be >= 1"),
                      (self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}"),
                      (0.0 <= self.mm_image_weight <= 1.0,
                       f"mm_image_weight must be in [0, 1], got {self.mm_image_weight}"),
                      (self.n_ui_layers >= 0 and self.n_mm_layers >= 0, "layer counts must be >= 0"),
                      (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}"),
                      (self.reg_weight >= 0, f"reg_weight must be >= 0, got {self.reg_weight}")]
            check_params("freedom", checks)

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, params.embedding_dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, params.embedding_dim)))
        self.projections = nn.ModuleDict({m: nn.Linear(f.shape[1], params.feat_embed_dim)
                                          for m, f in self.features().items()})
        self.train_matrix = data.train
        self.full_adjacency = normalized_bipartite(data.train)
        self.edge_users, self.edge_items = (torch.from_numpy(a) for a in data.train_pairs())
        self.edge_weights = _inverse_sqrt_degree_products(data.train)
        self.masked_adjacency: torch.Tensor | None = None
        self.features_changed()

    def interactions_changed(self, train):
        users = np.repeat(np.arange(train.shape[0], dtype=np.int64), np.diff(train.indptr))
        self.train_matrix = train
        self.full_adjacency = self.place(normalized_bipartite(train))
        self.edge_users, self.edge_items = torch.from_numpy(users), torch.from_numpy(train.indices.astype(np.int64))
        self.edge_weights = _inverse_sqrt_degree_products(train)
        self.masked_adjacency = None

    # --- graphs -------------------------------------------------------------------------
    def features_changed(self) -> None:
        graph = to_torch_csr(multimodal_knn_adjacency(self.features(), self.params.knn_k,
                                                      self.params.mm_image_weight))
        self.item_graph, self.item_graph_t = self.place(graph), self.place(transpose_csr(graph))

    def pre_epoch(self) -> None:
        """Resample the kept user–item edges (torch's global RNG, so seeded runs repeat)."""
        self.masked_adjacency = self.sample_masked_adjacency()

    def sample_masked_adjacency(self) -> torch.Tensor:
        if self.params.dropout <= 0:
            return self.full_adjacency
        n_keep = max(1, int(len(self.edge_weights) * (1.0 - self.params.dropout)))
        kept = torch.multinomial(self.edge_weights, n_keep, replacement=False).numpy()
        users, items = self.edge_users.numpy()[kept], self.edge_items.numpy()[kept]
        matrix = sp.csr_matrix((np.ones(len(kept), np.float32), (users, items)), shape=self.train_matrix.shape)
        return self.place(normalized_bipartite(matrix))

    # --- scoring ------------------------------------------------------------------------
    def propagate(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        item_side = self.item_embedding
        for _ in range(self.params.n_mm_layers):
            item_side = spmm(self.item_graph, item_side, self.item_graph_t)
        ego = torch.cat([self.user_embedding, self.item_embedding])
        out = propagate_mean(adjacency, ego, self.params.n_ui_layers)
        return out[: self.n_users], out[self.n_users:] + item_side

    def final_embeddings(self):
        return self.propagate(self.full_adjacency)

    def loss(self, users, pos, neg):
        if self.masked_adjacency is None:
            self.pre_epoch()
        user_all, item_all = self.propagate(self.masked_adjacency)
        u = user_all[users]
        loss = bpr_loss((u * item_all[pos]).sum(1), (u * item_all[neg]).sum(1))
        if self.params.reg_weight > 0:  # exactly zero otherwise: skip the projections
            loss = loss + self.params.reg_weight * self._modality_bpr(u, pos, neg)
        return loss

    def _modality_bpr(self, u, pos, neg) -> torch.Tensor:
        items, (pos_at, neg_at) = unique_rows(pos, neg)
        total = torch.zeros((), dtype=u.dtype, device=u.device)
        for modality, projection in self.projections.items():
            projected = projection(self.features()[modality].index_select(0, items))
            total = total + bpr_loss((u * projected[pos_at]).sum(1), (u * projected[neg_at]).sum(1))
        return total

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}


def _inverse_sqrt_degree_products(train: sp.csr_matrix) -> torch.Tensor:
    """1/√(d_u d_i) for every training edge, in ``train_pairs`` (CSR) order."""
    user_degree = np.diff(train.indptr).astype(np.float64)
    item_degree = np.bincount(train.indices, minlength=train.shape[1]).astype(np.float64)
    users = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    weights = 1.0 / np.sqrt(user_degree[users] * item_degree[train.indices])
    return torch.from_numpy(weights.astype(np.float32))
