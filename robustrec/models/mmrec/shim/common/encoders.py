"""``common.encoders``: ``LightGCN_Encoder``, the online encoder of SelfCF-style models
(robustrec's implementation of its interface: ``embedding_dict`` with ``user_emb`` / ``item_emb``,
``forward(inputs)`` → the embeddings of ``inputs[0]`` users and ``inputs[1]`` items after
LightGCN propagation over a randomly edge-dropped graph, ``get_embedding()`` → every user's and
item's embedding over the full graph)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from robustrec.models.mmrec.shim.common.abstract_recommender import GeneralRecommender


class LightGCN_Encoder(GeneralRecommender):  # noqa: N801  (MMRec's name)
    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.interaction_matrix = dataset.inter_matrix(form="coo").astype(np.float32)
        self.user_count, self.item_count = self.n_users, self.n_items
        self.latent_size = config["embedding_size"]
        self.n_layers = 3 if config["n_layers"] is None else config["n_layers"]
        self.layers = [self.latent_size] * self.n_layers
        self.drop_ratio = 1.0
        self.drop_flag = True
        self.embedding_dict = nn.ParameterDict({
            "user_emb": nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, self.latent_size))),
            "item_emb": nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, self.latent_size))),
        })
        self.sparse_norm_adj = self.get_norm_adj_mat().to(self.device)

    def get_norm_adj_mat(self):
        """D^-1/2 A D^-1/2 of the user–item bipartite graph, a sparse COO tensor."""
        inter = sp.coo_matrix(self.interaction_matrix)
        n = self.n_users + self.n_items
        rows = np.concatenate([inter.row, inter.col + self.n_users])
        cols = np.concatenate([inter.col + self.n_users, inter.row])
        adjacency = sp.coo_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n)).tocsr()
        adjacency.data[:] = 1.0  # duplicates count once
        degree = np.asarray(adjacency.sum(axis=1)).ravel() + 1e-7
        scale = sp.diags(np.power(degree, -0.5))
        normalised = sp.coo_matrix(scale @ adjacency @ scale)
        indices = torch.from_numpy(np.vstack([normalised.row, normalised.col]).astype(np.int64))
        return torch.sparse_coo_tensor(indices, torch.from_numpy(normalised.data.astype(np.float32)), (n, n)).coalesce()

    def sparse_dropout(self, x, rate, noise_shape):
        keep = torch.floor((1 - rate) + torch.rand(noise_shape, device=x.device)).bool()
        indices, values = x._indices()[:, keep], x._values()[keep]
        return torch.sparse_coo_tensor(indices, values, x.shape) * (1.0 / (1 - rate))

    def _propagate(self, adjacency):
        ego = torch.cat([self.embedding_dict["user_emb"], self.embedding_dict["item_emb"]], 0)
        layers = [ego]
        for _ in self.layers:
            ego = torch.sparse.mm(adjacency, ego)
            layers.append(ego)
        out = torch.stack(layers, dim=1).mean(dim=1)
        return out[: self.user_count], out[self.user_count:]

    def forward(self, inputs):
        adjacency = self.sparse_norm_adj
        if self.drop_flag:
            adjacency = self.sparse_dropout(adjacency, np.random.random() * self.drop_ratio,
                                            self.sparse_norm_adj._nnz())
        users_all, items_all = self._propagate(adjacency)
        return users_all[inputs[0]], items_all[inputs[1]]

    @torch.no_grad()
    def get_embedding(self):
        return self._propagate(self.sparse_norm_adj)
