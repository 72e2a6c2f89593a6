"""``utils.utils``: the graph helpers and small utilities MMRec model files import (robustrec's
implementation of their documented behaviour; no torch_scatter needed).

- ``build_sim(x)``: cosine similarity matrix of the rows of ``x``.
- ``build_knn_neighbourhood(adj, topk)``: keep each row's ``topk`` largest entries (dense).
- ``compute_normalized_laplacian(adj)``: D^-1/2 A D^-1/2 of a dense matrix (zero-degree rows 0).
- ``get_dense_laplacian(adj, normalization)``: 'sym' (as above), 'rw' (D^-1 A) or 'none'.
- ``get_sparse_laplacian(edge_index, edge_weight, num_nodes, normalization)``: the same on an
  edge list, returning ``(edge_index, edge_weight)``.
- ``build_knn_normalized_graph(adj, topk, is_sparse, norm_type)``: top-``topk`` neighbours of
  each row, normalised; a sparse COO tensor when ``is_sparse``, else dense.
"""

from __future__ import annotations

import datetime
import random

import numpy as np
import torch


def get_local_time():
    return datetime.datetime.now().strftime("%b-%d-%Y-%H-%M-%S")


def init_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def early_stopping(value, best, cur_step, max_step, bigger=True):
    """(best, steps without improvement, stop?, improved?) after observing ``value``."""
    improved = value > best if bigger else value < best
    if improved:
        return value, 0, False, True
    cur_step += 1
    return best, cur_step, cur_step > max_step, False


def dict2str(result_dict):
    return "".join(f"{metric}: {value:.04f}    " for metric, value in result_dict.items())


def build_sim(context):
    unit = context / torch.norm(context, p=2, dim=-1, keepdim=True)
    return unit @ unit.t()


def build_knn_neighbourhood(adj, topk):
    values, indices = torch.topk(adj, topk, dim=-1)
    return torch.zeros_like(adj).scatter_(-1, indices, values)


def _inverse_power(degree, power):
    out = torch.pow(degree, power)
    out[torch.isinf(out)] = 0.0
    return out


def compute_normalized_laplacian(adj):
    scale = _inverse_power(adj.sum(-1), -0.5)
    return scale[:, None] * adj * scale[None, :]


def get_dense_laplacian(adj, normalization="none"):
    if normalization == "sym":
        return compute_normalized_laplacian(adj)
    if normalization == "rw":
        return _inverse_power(adj.sum(-1), -1.0)[:, None] * adj
    return adj


def get_sparse_laplacian(edge_index, edge_weight, num_nodes, normalization="none"):
    row, col = edge_index[0], edge_index[1]
    degree = torch.zeros(num_nodes, dtype=edge_weight.dtype, device=edge_weight.device).index_add_(0, row, edge_weight)
    if normalization == "sym":
        scale = _inverse_power(degree, -0.5)
        edge_weight = scale[row] * edge_weight * scale[col]
    elif normalization == "rw":
        edge_weight = _inverse_power(degree, -1.0)[row] * edge_weight
    return edge_index, edge_weight


def build_knn_normalized_graph(adj, topk, is_sparse, norm_type):
    values, indices = torch.topk(adj, topk, dim=-1)
    if not is_sparse:
        dense = torch.zeros_like(adj).scatter_(-1, indices, values)
        return get_dense_laplacian(dense, normalization=norm_type)
    rows = torch.arange(adj.shape[0], device=adj.device).repeat_interleave(topk)
    edge_index = torch.stack([rows, indices.reshape(-1)])
    edge_index, edge_weight = get_sparse_laplacian(edge_index, values.reshape(-1), adj.shape[0], norm_type)
    return torch.sparse_coo_tensor(edge_index, edge_weight, adj.shape, check_invariants=False)
