"""SMORE (Ong & Khong, WSDM 2025), on any set of item modalities."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from robustrec.models.base import Recommender, bpr_loss, check_params, l2_penalty
from robustrec.models.graph import bipartite_adjacency, layer_mean, spmm, sym_normalize, to_torch_csr, transpose_csr
from robustrec.models.knn import max_union, similarity_knn_adjacency
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.registry import register


def _gate(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.Sigmoid())


def _query(dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, dim, bias=False))


def info_nce(view1: torch.Tensor, view2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean InfoNCE of row i of ``view1`` against row i of ``view2``, the batch's other rows
    of ``view2`` as negatives (cosine similarity / temperature)."""
    a, b = F.normalize(view1, dim=1), F.normalize(view2, dim=1)
    logits = a @ b.t() / temperature
    return (torch.logsumexp(logits, 1) - logits.diagonal()).mean()


@register
class SMORE(Recommender):
    """Spectral fusion of modality projections, gating item–item views, plus LightGCN.

    - Each modality m: a linear projection of its features to ``embedding_dim``, filtered in
      the frequency domain (rFFT over the embedding dimension × a learnable complex filter
      W_m, inverse rFFT: "uni-modal denoising"); the fusion view multiplies the spectra of all
      modalities with a filter W_f (MMRec: image × text; one modality: its own spectrum).
    - Item views: the item ID embedding gated by sigmoid(Linear(filtered)) per modality and for
      the fusion, propagated ``n_layers`` times over an item–item graph: per modality the
      top-``knn_k`` cosine kNN graph weighted by similarity and normalised d^-1/2 S d^-1/2
      (``knn.similarity_knn_adjacency``), for the fusion the element-wise max of all of them
      over their union (``knn.max_union``). Rebuilt whenever the features change.
    - Users read each item view through the normalised user–item block of the bipartite graph.
    - Behaviour view ("content"): LightGCN mean over ``n_ui_layers`` of the normalised graph.
    - Preference: each modality view weighted by softmax(query_m(fusion view)) and gated by
      sigmoid(Linear(content)) (dropout ``dropout`` on the gates), the fusion view gated too;
      side = mean of the M + 1 gated views; representation = content + side.
    - Loss: BPR + ``reg_weight`` · L2 of the batch's final representations + ``cl_weight`` ·
      (InfoNCE(side, content) of the positive items + of the users), temperature ``temperature``.

    Defaults are MMRec's SMORE.yaml (first value of each grid): embedding 64, n_ui_layers 3,
    n_layers 1, knn_k 10 (MMRec's image_knn_k and text_knn_k; one k for every modality here),
    reg_weight 1e-5, cl_weight 0.01, temperature 0.2, dropout 0. Unlike MMRec, raw features
    are not fine-tuned (they are the model's input, so perturbations can replace them), and a
    batch computes the user side representations for its own users only (same values).
    """

    name = "smore"
    paper = ("Ong & Khong, Spectrum-based Modality Representation Fusion Graph Convolutional "
             "Network for Multimodal Recommendation, WSDM 2025")
    multimodal = True
    features_at_inference = True
    graph_at_inference = True
    loss_reads_features = True  # the projections read the feature buffers in every forward

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_ui_layers: int = 3
        n_layers: int = 1
        knn_k: int = 10
        reg_weight: float = 1e-5
        cl_weight: float = 0.01
        temperature: float = 0.2
        dropout: float = 0.0

        def __post_init__(self) -> None:
            checks = [(self.embedding_dim >= 2, "embedding_dim must be >= 2"),
                      (self.n_ui_layers >= 0 and self.n_layers >= 0, "layer counts must be >= 0"),
                      (self.knn_k >= 1, f"knn_k must be >= 1, got {self.knn_k}"),
                      (self.reg_weight >= 0 and self.cl_weight >= 0, "loss weights must be >= 0"),
                      (self.temperature > 0, f"temperature must be > 0, got {self.temperature}"),
                      (0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")]
            check_params("smore", checks)

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        modalities = self.feature_names
        self.projections = nn.ModuleDict({m: nn.Linear(f.shape[1], dim) for m, f in self.features().items()})
        self.queries = nn.ModuleDict({m: _query(dim) for m in modalities})
        self.view_gates = nn.ModuleDict({m: _gate(dim) for m in modalities})
        self.prefer_gates = nn.ModuleDict({m: _gate(dim) for m in modalities})
        self.fusion_gate, self.fusion_prefer_gate = _gate(dim), _gate(dim)
        frequencies = dim // 2 + 1
        self.filters = nn.ParameterDict({m: nn.Parameter(torch.randn(1, frequencies, 2)) for m in modalities})
        self.fusion_filter = nn.Parameter(torch.randn(1, frequencies, 2))
        self.gate_dropout = nn.Dropout(params.dropout)
        self.interactions_changed(data.train)
        self.features_changed()

    def interactions_changed(self, train) -> None:
        """The normalised user–item graph and its user → item block (users read item views)."""
        normalized = sym_normalize(bipartite_adjacency(train))
        self.adjacency = self.place(to_torch_csr(normalized))
        user_items = to_torch_csr(normalized[: self.n_users, self.n_users:])
        self.user_items, self.user_items_t = self.place(user_items), self.place(transpose_csr(user_items))

    # --- graphs -------------------------------------------------------------------------
    def features_changed(self) -> None:
        graphs = {m: similarity_knn_adjacency(f, self.params.knn_k, clip_negative=False)  # SMORE keeps negatives
                  for m, f in self.features().items()}
        graphs["__fusion__"] = max_union(graphs.values()) if len(graphs) > 1 else graphs[self.feature_names[0]]
        self.item_graphs = {}
        for key, graph in graphs.items():
            csr = to_torch_csr(graph)
            self.item_graphs[key] = (self.place(csr), self.place(transpose_csr(csr)))

    # --- representations ----------------------------------------------------------------
    def _spectral(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Per modality the filtered projection, and the fusion of all spectra (items × dim)."""
        dim = self.params.embedding_dim
        spectra = {m: torch.fft.rfft(self.projections[m](f), dim=1, norm="ortho")
                   for m, f in self.features().items()}
        filtered = {m: torch.fft.irfft(s * torch.view_as_complex(self.filters[m]), n=dim, dim=1, norm="ortho")
                    for m, s in spectra.items()}
        product = None
        for s in spectra.values():
            product = s if product is None else product * s
        fusion = torch.fft.irfft(product * torch.view_as_complex(self.fusion_filter), n=dim, dim=1, norm="ortho")
        return filtered, fusion

    def _item_views(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Gated item ID embeddings propagated over each modality's (and the fusion) kNN graph."""
        filtered, fusion = self._spectral()
        views = {m: self.item_embedding * self.view_gates[m](x) for m, x in filtered.items()}
        views["__fusion__"] = self.item_embedding * self.fusion_gate(fusion)
        for key in views:
            graph, graph_t = self.item_graphs[key]
            for _ in range(self.params.n_layers):
                views[key] = spmm(graph, views[key], graph_t)
        return {m: views[m] for m in self.feature_names}, views["__fusion__"]

    def _side(self, content: torch.Tensor, views: dict[str, torch.Tensor], fusion: torch.Tensor) -> torch.Tensor:
        """The modality-aware preference: gated, attention-weighted views, averaged."""
        parts = []
        for m, view in views.items():
            attention = torch.softmax(self.queries[m](fusion), dim=-1)
            parts.append(self.gate_dropout(self.prefer_gates[m](content)) * (attention * view))
        parts.append(self.gate_dropout(self.fusion_prefer_gate(content)) * fusion)
        return layer_mean(parts)

    def _content(self) -> torch.Tensor:
        ego = torch.cat([self.user_embedding, self.item_embedding])
        return propagate_mean(self.adjacency, ego, self.params.n_ui_layers)

    def _user_rows(self, item_rows: torch.Tensor, users: torch.Tensor | None) -> torch.Tensor:
        rows = spmm(self.user_items, item_rows, self.user_items_t)
        return rows if users is None else rows.index_select(0, users)

    def representations(self, users: torch.Tensor | None = None, items: torch.Tensor | None = None):
        """(user content, user side, item content, item side) for ``users`` and ``items``
        (None: all)."""
        content = self._content()
        item_views, item_fusion = self._item_views()
        user_content = content[: self.n_users]
        item_content = content[self.n_users:]
        if users is not None:
            user_content = user_content.index_select(0, users)
        user_side = self._side(user_content, {m: self._user_rows(v, users) for m, v in item_views.items()},
                               self._user_rows(item_fusion, users))
        if items is not None:
            item_content = item_content.index_select(0, items)
            item_views = {m: v.index_select(0, items) for m, v in item_views.items()}
            item_fusion = item_fusion.index_select(0, items)
        item_side = self._side(item_content, item_views, item_fusion)
        return user_content, user_side, item_content, item_side

    def final_embeddings(self):
        user_content, user_side, item_content, item_side = self.representations()
        return user_content + user_side, item_content + item_side

    def loss(self, users, pos, neg):
        batch_users, user_at = torch.unique(users, return_inverse=True)
        batch_items, item_at = torch.unique(torch.cat([pos, neg]), return_inverse=True)
        pos_at, neg_at = item_at[: len(pos)], item_at[len(pos):]
        user_content, user_side, item_content, item_side = self.representations(batch_users, batch_items)
        u = (user_content + user_side)[user_at]
        items = item_content + item_side
        p, n = items[pos_at], items[neg_at]
        loss = bpr_loss((u * p).sum(1), (u * n).sum(1))
        if self.params.reg_weight > 0:
            loss = loss + self.params.reg_weight * l2_penalty(u, p, n)
        if self.params.cl_weight > 0:
            t = self.params.temperature
            contrast = (info_nce(item_side[pos_at], item_content[pos_at], t)
                        + info_nce(user_side[user_at], user_content[user_at], t))
            loss = loss + self.params.cl_weight * contrast
        return loss

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}


__all__ = ["SMORE", "info_nce"]
