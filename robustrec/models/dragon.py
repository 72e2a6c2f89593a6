"""DRAGON (Zhou et al., ECAI 2023): dual heterogeneous (user–item) and homogeneous graphs."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustrec.models.knn import multimodal_knn_adjacency
from robustrec.models.dualgnn import DualGNN
from robustrec.models.graph import spmm, to_torch_csr
from robustrec.models.registry import register

@register
class DRAGON(DualGNN):
    """DualGNN's parts and loss plus item–item graphs. Heterogeneous side: one ``ModalityGCN`` per modality over the user–item graph; users
    concatenate their per-modality outputs scaled by learned per-user weights, items their
    outputs. Homogeneous side: items add L hops over the item–item graph
    0.1·kNN(image) + 0.9·kNN(text) (other modalities: ``knn.modality_mix_weights``; rebuilt from features in ``features_changed``); users add
    the softmax-weighted sum of their top-k co-occurring users. Scores use item features at
    inference.

    Defaults (MMRec ``DRAGON.yaml`` / model code): embedding 64, knn_k 10, n_mm_layers 1,
    mm_image_weight 0.1, k = 40 user neighbours (softmax), ``construction='cat'``, log₂-BPR,
    reg_weight 1e-3 (middle of MMRec's grid 1e-1…1e-5; tune on validation) on the batch users'
    preference vectors and the modality weights. Deviations: graphs are built in the library
    and cached; the user graph is deterministic; MMRec's unused drop-edge lists and unused
    fine-tunable feature tables are left out.
    """

    name = "dragon"
    paper = ("Zhou et al., Enhancing Dyadic Relations with Homogeneous Graphs for Multimodal "
             "Recommendation (DRAGON), ECAI 2023")
    multimodal = True
    features_at_inference = True
    loss_reads_features = True

    @dataclass
    class Params(DualGNN.Params):
        knn_k: int = 10
        n_mm_layers: int = 1
        mm_image_weight: float = 0.1

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)  # DualGNN: user–item graph, branches, weights, user graph
        self.features_changed()

    def features_changed(self) -> None:
        graph = multimodal_knn_adjacency(self.features(), self.params.knn_k, self.params.mm_image_weight)
        self.item_graph, self.item_graph_t = self.place(to_torch_csr(graph)), self.place(to_torch_csr(graph.T))

    def final_embeddings(self):
        reps = [self.branches[m](self.adjacency, getattr(self, f"feat_{m}")) for m in self.feature_names]
        users = torch.cat([r[: self.n_users] * self.modality_weight[:, j:j + 1] for j, r in enumerate(reps)], 1)
        items = torch.cat([r[self.n_users:] for r in reps], 1)
        hops = items
        for _ in range(self.params.n_mm_layers):
            hops = spmm(self.item_graph, hops, self.item_graph_t)
        users = users + spmm(self.user_graph, users, self.user_graph_t)
        return users, items + hops
