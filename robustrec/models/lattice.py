"""LATTICE (Zhang et al., ACM MM 2021): a learned item–item graph mixed with a frozen kNN graph."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
import torch.nn.functional as F

from robustrec.models.base import Recommender, bpr_loss, check_params, l2_penalty
from robustrec.models.graph import EdgePattern, bipartite_adjacency, row_normalize, spmm, to_torch_csr, \
    transpose_csr, weighted_spmm
from robustrec.models.knn import cosine_top_k, similarity_knn_adjacency
from robustrec.models.registry import register


class ItemGraph:
    """One item–item graph as COO edge lists (rows, cols, values): cheap to concatenate."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor) -> None:
        self.rows, self.cols, self.values = rows, cols, values

    @classmethod
    def from_scipy(cls, matrix: sp.csr_matrix) -> "ItemGraph":
        coo = matrix.tocoo()
        return cls(torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64)),
                   torch.from_numpy(coo.data.astype(np.float32)))

    def apply_tensors(self, fn) -> None:
        self.rows, self.cols, self.values = fn(self.rows), fn(self.cols), fn(self.values)


def learned_knn_graph(projected: torch.Tensor, k: int) -> ItemGraph:
    """Top-``k`` cosine neighbours of every projected item (itself included), each edge valued by
    its similarity (clipped at 0), differentiable in ``projected``: the neighbour choice is a
    blockwise top-k (n × k memory, never n × n), the values a gather of n × k pairs."""
    neighbours = cosine_top_k(projected.detach(), k)
    n, k = neighbours.shape
    unit = F.normalize(projected, dim=1)
    values = (unit[neighbours] * unit.unsqueeze(1)).sum(2).clamp_min(0.0)
    rows = torch.arange(n, device=projected.device).repeat_interleave(k)
    return ItemGraph(rows, neighbours.reshape(-1), values.reshape(-1))


def sym_normalized_values(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """Values of D^-1/2 S D^-1/2, D the row sums of S (summing duplicate edges), differentiable."""
    degree = torch.zeros(n, dtype=values.dtype, device=values.device).index_add(0, rows, values)
    positive = degree > 0
    inv_sqrt = torch.where(positive, degree.clamp_min(1e-12).rsqrt(), torch.zeros_like(degree))
    return values * inv_sqrt[rows] * inv_sqrt[cols]


@register
class LATTICE(Recommender):
    """Item ID embeddings propagated over a latent item–item graph, added to LightGCN's.

    - Frozen graphs: per modality, the top-``knn_k`` cosine neighbours of each item's raw
      features, weighted by the similarity and normalised D^-1/2 S D^-1/2 (rebuilt only when the
      features change).
    - Learned graphs: the same construction on each modality's linear projection
      (``feat_embed_dim``), rebuilt from the current projections once per epoch (the first batch
      of the epoch back-propagates through the edge values into the projections and the
      modality weights; later batches use it as a constant, as in the paper's code) and again
      for scoring.
    - Mixing: softmax-normalised learnable modality weights w (one per modality, any number;
      equal at start, MMRec's [0.5, 0.5] for image+text): learned = norm(Σ_m w_m S̃_m), frozen =
      Σ_m w_m S_m, item graph A = (1 − λ) · learned + λ · frozen with λ = ``lambda_coeff``.
    - Items: h = A^``n_layers`` · item ID embeddings; final item = LightGCN item + h / ‖h‖.
      LightGCN here is MMRec's LATTICE variant: D^-1 (A_ui + I) over ``n_ui_layers`` layers, mean
      of the layer outputs (ego included).
    - Loss: BPR on the final representations + ``reg_weight`` × their squared norms / (2 · batch).

    Defaults are MMRec's LATTICE.yaml: embedding 64, feat_embed_dim 64, weight_size [64, 64]
    (two user–item layers), n_layers 1, knn_k 10, lambda_coeff 0.9, cf_model lightgcn;
    reg_weight 1e-4 from its grid 0/1e-5/1e-4/1e-3. Unlike MMRec: the raw features are the
    model's input and are not fine-tuned (MMRec only updates them on an epoch's first batch);
    the graphs are sparse (n_items · k edges per modality) where MMRec keeps dense
    n_items × n_items matrices and multiplies them densely on every batch; negative
    similarities among the top k are clipped at 0 (MMRec's degree would turn NaN).
    """

    name = "lattice"
    paper = "Zhang et al., Mining Latent Structures for Multimedia Recommendation, ACM MM 2021"
    multimodal = True
    features_at_inference = True
    graph_at_inference = True
    # the loss reads the features on an epoch's first batch only, through the learned graph
    loss_reads_features = False

    @dataclass
    class Params:
        embedding_dim: int = 64
        feat_embed_dim: int = 64
        knn_k: int = 10
        lambda_coeff: float = 0.9
        n_layers: int = 1
        n_ui_layers: int = 2
        reg_weight: float = 1e-4

        def __post_init__(self) -> None:
            checks = [(self.embedding_dim >= 1 and self.feat_embed_dim >= 1, "dimensions must be >= 1"),
                      (self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}"),
                      (0.0 <= self.lambda_coeff <= 1.0,
                       f"lambda_coeff must be in [0, 1], got {self.lambda_coeff}"),
                      (self.n_layers >= 0 and self.n_ui_layers >= 0, "layer counts must be >= 0"),
                      (self.reg_weight >= 0, f"reg_weight must be >= 0, got {self.reg_weight}")]
            check_params("lattice", checks)

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.projections = nn.ModuleDict({m: nn.Linear(f.shape[1], params.feat_embed_dim)
                                          for m, f in self.features().items()})
        self.modal_weight = nn.Parameter(torch.full((len(self.feature_names),), 1.0 / len(self.feature_names)))
        self.interactions_changed(data.train)
        self.epoch_graph: tuple[torch.Tensor, torch.Tensor] | None = None  # detached, this epoch's
        self.features_changed()

    def interactions_changed(self, train) -> None:
        """The random-walk user–item graph with self-loops the ID embeddings propagate over."""
        walk = row_normalize(bipartite_adjacency(train) + sp.eye(self.n_users + self.n_items))
        adjacency = to_torch_csr(walk)
        self.adjacency, self.adjacency_t = self.place(adjacency), self.place(transpose_csr(adjacency))

    # --- graphs -------------------------------------------------------------------------
    def features_changed(self) -> None:
        k = self.params.knn_k
        self.frozen = {m: ItemGraph.from_scipy(similarity_knn_adjacency(f, k)) for m, f in self.features().items()}
        for graph in self.frozen.values():
            graph.apply_tensors(self.place)
        self.epoch_graph = None

    def pre_epoch(self) -> None:
        self.epoch_graph = None  # the epoch's first batch rebuilds the learned graph

    def item_graph(self) -> tuple[EdgePattern, torch.Tensor]:
        """(pattern, values) of (1 − λ) · learned + λ · frozen, differentiable in the
        projections and the modality weights when autograd is on."""
        p, n = self.params, self.n_items
        weights = torch.softmax(self.modal_weight, 0)
        # features detached: the loss never differentiates them (loss_reads_features False)
        learned = [learned_knn_graph(self.projections[m](f.detach()), p.knn_k) for m, f in self.features().items()]
        rows = torch.cat([g.rows for g in learned])
        cols = torch.cat([g.cols for g in learned])
        values = torch.cat([w * g.values for w, g in zip(weights, learned)])
        values = (1.0 - p.lambda_coeff) * sym_normalized_values(rows, cols, values, n)
        frozen = [self.frozen[m] for m in self.feature_names]
        rows = torch.cat([rows] + [g.rows for g in frozen])
        cols = torch.cat([cols] + [g.cols for g in frozen])
        values = torch.cat([values] + [p.lambda_coeff * w * g.values for w, g in zip(weights, frozen)])
        keys, position = torch.unique(rows * n + cols, return_inverse=True)  # sorted: CSR order
        merged = torch.zeros(len(keys), dtype=values.dtype, device=values.device).index_add(0, position, values)
        keys = keys.cpu().numpy()
        ones = np.ones(len(keys), np.float32)
        pattern = EdgePattern(sp.csr_matrix((ones, (keys // n, keys % n)), shape=(n, n)))
        pattern.apply_tensors(lambda t: t.to(values.device))
        return pattern, merged

    @staticmethod
    def constant_graph(pattern: EdgePattern, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        values = values.detach()
        return pattern.csr(values), pattern.csr(pattern.other_order(values, False), transposed=True)

    # --- scoring ------------------------------------------------------------------------
    def _propagate(self, graph) -> tuple[torch.Tensor, torch.Tensor]:
        """(users, items); ``graph`` is (pattern, values) with gradient or (csr, csr_t) without."""
        h = self.item_embedding
        for _ in range(self.params.n_layers):
            h = weighted_spmm(graph[0], graph[1], h) if isinstance(graph[0], EdgePattern) \
                else spmm(graph[0], h, graph[1])
        layer = torch.cat([self.user_embedding, self.item_embedding])
        total = layer
        for _ in range(self.params.n_ui_layers):
            layer = spmm(self.adjacency, layer, self.adjacency_t)
            total = total + layer
        out = total / (self.params.n_ui_layers + 1)
        return out[: self.n_users], out[self.n_users:] + F.normalize(h, dim=1)

    def final_embeddings(self):
        return self._propagate(self.constant_graph(*self.item_graph()))

    def loss(self, users, pos, neg):
        if self.epoch_graph is None:
            pattern, values = self.item_graph()
            self.epoch_graph = self.constant_graph(pattern, values)
            graph = (pattern, values) if values.requires_grad else self.epoch_graph
        else:
            graph = self.epoch_graph
        user_all, item_all = self._propagate(graph)
        u, i, j = user_all[users], item_all[pos], item_all[neg]
        loss = bpr_loss((u * i).sum(1), (u * j).sum(1))
        if self.params.reg_weight > 0:
            loss = loss + self.params.reg_weight * l2_penalty(u, i, j)
        return loss

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}
