"""Sparse graph helpers: normalised adjacency in CSR and sparse–dense products with autograd."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch


def to_torch_csr(matrix: sp.spmatrix) -> torch.Tensor:
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    matrix.sort_indices()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                       torch.from_numpy(matrix.indices.astype(np.int64)),
                                       torch.from_numpy(matrix.data), size=matrix.shape,
                                       check_invariants=False)


def sym_normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """D^-1/2 A D^-1/2 with zero-degree rows left at zero."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[degree > 0] = degree[degree > 0] ** -0.5
    d = sp.diags(inv_sqrt)
    return sp.csr_matrix(d @ matrix @ d)


def bipartite_adjacency(train: sp.csr_matrix) -> sp.csr_matrix:
    """The (users + items)² symmetric adjacency [[0, R], [Rᵀ, 0]] of the training graph."""
    return sp.bmat([[None, train], [train.T, None]], format="csr", dtype=np.float32)


def normalized_bipartite(train: sp.csr_matrix) -> torch.Tensor:
    """LightGCN's propagation matrix, D^-1/2 A D^-1/2 of the bipartite graph, as torch CSR."""
    return to_torch_csr(sym_normalize(bipartite_adjacency(train)))


def csr_mm(adjacency: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``torch.sparse.mm(adjacency, dense)`` with the same kernel and bitwise the same result, but
    on the CPU written straight into a fresh output: ``sparse.mm`` zero-fills and copies an
    output-sized buffer three to four times around the product, which made it ~1.5-2× slower
    than the product itself on Baby's graph (``addmm`` with β = 0 ignores the output's contents)."""
    differentiable = torch.is_grad_enabled() and (adjacency.requires_grad or dense.requires_grad)
    if adjacency.layout is torch.sparse_csr and dense.device.type == "cpu" and dense.dim() == 2 \
            and not differentiable:  # out= has no autograd: inside autograd.Functions and no_grad
        out = dense.new_empty((adjacency.shape[0], dense.shape[1]))
        return torch.addmm(out, adjacency, dense, beta=0, out=out)
    return torch.sparse.mm(adjacency, dense)


class _SparseMatmul(torch.autograd.Function):
    """y = A x with dx = Aᵀ dy, where Aᵀ is given up front (A itself when symmetric)."""

    @staticmethod
    def forward(ctx, adjacency, adjacency_t, dense):  # noqa: D401
        ctx.adjacency_t = adjacency_t
        return csr_mm(adjacency, dense)

    @staticmethod
    def backward(ctx, grad):
        return None, None, csr_mm(ctx.adjacency_t, grad)


def spmm(adjacency: torch.Tensor, dense: torch.Tensor, adjacency_t: torch.Tensor | None = None) -> torch.Tensor:
    """Sparse (CSR) × dense product; pass ``adjacency_t`` unless ``adjacency`` is symmetric."""
    if not dense.requires_grad:
        return csr_mm(adjacency, dense)
    return _SparseMatmul.apply(adjacency, adjacency if adjacency_t is None else adjacency_t, dense)


def layer_sum(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Elementwise sum of same-shaped tensors, left to right, without the stacked copy of
    ``torch.stack(tensors).sum(0)``, whose write, read and backward made the layer combination
    ~3x slower than the sum itself (its forward + backward on Baby's graph: 14 -> 5 ms, 1 thread).

    Bitwise the stacked sum for up to four tensors, and for any number when a tensor's size is a
    multiple of 16 (every embedding width here); otherwise the stacked sum of five or more
    switches to another summation order and the two differ in the last bits."""
    if len(tensors) == 1:
        return tensors[0].clone()
    total = tensors[0] + tensors[1]
    for tensor in tensors[2:]:
        total.add_(tensor)  # in place on a fresh tensor: an add's backward saves neither input
    return total


def layer_mean(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Elementwise mean: bitwise ``torch.stack(tensors).mean(0)`` (sum, then one division)."""
    return layer_sum(tensors).div_(len(tensors))


def transpose_csr(adjacency: torch.Tensor) -> torch.Tensor:
    return adjacency.t().to_sparse_csr()


def row_normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """D^-1 A: every non-empty row averages its neighbours (mean aggregation)."""
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    degree = np.asarray(matrix.sum(axis=1)).ravel()
    inverse = np.zeros_like(degree)
    inverse[degree > 0] = 1.0 / degree[degree > 0]
    return sp.csr_matrix(sp.diags(inverse) @ matrix)


class EdgePattern:
    """The fixed sparsity pattern of a (rows × cols) bipartite relation, e.g. users × items.

    Holds the pattern in row-major CSR order and its transpose, with ``to_transposed`` mapping
    edge values from row-major to column-major order, so models can learn per-edge weights
    (``weighted_spmm``) without rebuilding index structures every batch.
    """

    def __init__(self, matrix: sp.spmatrix) -> None:
        matrix = sp.csr_matrix(matrix, dtype=np.float32)
        matrix.sort_indices()
        self.shape = matrix.shape
        self.n_edges = int(matrix.nnz)
        order = sp.csr_matrix((np.arange(1, self.n_edges + 1, dtype=np.float64), matrix.indices,
                               matrix.indptr), shape=matrix.shape).T.tocsr()
        order.sort_indices()
        self.crow = torch.from_numpy(matrix.indptr.astype(np.int64))
        self.col = torch.from_numpy(matrix.indices.astype(np.int64))
        self.row = torch.repeat_interleave(torch.arange(self.shape[0]), torch.diff(self.crow))
        self.crow_t = torch.from_numpy(order.indptr.astype(np.int64))
        self.col_t = torch.from_numpy(order.indices.astype(np.int64))
        self.row_t = torch.repeat_interleave(torch.arange(self.shape[1]), torch.diff(self.crow_t))
        self.to_transposed = torch.from_numpy(order.data.astype(np.int64) - 1)

    def apply_tensors(self, fn) -> None:
        """Convert every index tensor (and cached ``ones`` pattern) with ``fn``, e.g. a device
        move: the owning model's ``.to()`` calls this."""
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor):
                setattr(self, name, fn(value))

    def csr(self, values: torch.Tensor, transposed: bool = False) -> torch.Tensor:
        crow, col, shape = ((self.crow_t, self.col_t, self.shape[::-1]) if transposed
                            else (self.crow, self.col, self.shape))
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)

    def other_order(self, values: torch.Tensor, transposed: bool) -> torch.Tensor:
        """Edge values reordered row-major → column-major (``transposed`` False) or back."""
        if not transposed:
            return values[self.to_transposed]
        out = torch.empty_like(values)
        out[self.to_transposed] = values
        return out

    def edge_dots(self, left: torch.Tensor, right: torch.Tensor, transposed: bool = False) -> torch.Tensor:
        """⟨left[r], right[c]⟩ for every edge (r, c), in the order of ``csr(transposed)``: one
        sampled dense–dense product (SDDMM) instead of gathering two E × d tables and
        multiplying them (about 9× faster on Baby's 118k edges; not differentiable, see
        ``edge_dots``)."""
        key = "_ones_t" if transposed else "_ones"
        ones = getattr(self, key, None)
        if ones is None or ones.dtype != left.dtype or ones.device != left.device:
            ones = self.csr(torch.ones(self.n_edges, dtype=left.dtype, device=left.device), transposed)
            setattr(self, key, ones)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse.sampled_addmm(ones, left, right.t(), beta=0.0).values()


class _EdgeWeightedMatmul(torch.autograd.Function):
    """y = A(w) x for a fixed pattern with learnable edge values w (row-major order)."""

    @staticmethod
    def forward(ctx, pattern: EdgePattern, transposed: bool, values, dense):  # noqa: D401
        ctx.pattern, ctx.transposed = pattern, transposed
        ctx.save_for_backward(values, dense)
        return csr_mm(pattern.csr(values, transposed), dense)

    @staticmethod
    def backward(ctx, grad):
        values, dense = ctx.saved_tensors
        pattern, transposed = ctx.pattern, ctx.transposed
        grad_values = grad_dense = None
        if ctx.needs_input_grad[2]:
            grad_values = pattern.edge_dots(grad, dense, transposed)
        if ctx.needs_input_grad[3]:
            # the transpose's values: reorder row-major ↔ column-major
            reordered = pattern.other_order(values, transposed)
            grad_dense = csr_mm(pattern.csr(reordered, not transposed), grad)
        return None, None, grad_values, grad_dense


def weighted_spmm(pattern: EdgePattern, values: torch.Tensor, dense: torch.Tensor,
                  transposed: bool = False) -> torch.Tensor:
    """A(values) @ dense, differentiable in both the edge values and ``dense``.

    ``values`` are in the order of the product's own rows: row-major order of ``pattern`` when
    ``transposed`` is False, column-major order (``pattern.to_transposed``) when it is True.
    """
    return _EdgeWeightedMatmul.apply(pattern, transposed, values, dense)


class _EdgeDots(torch.autograd.Function):
    """values[e] = ⟨left[r_e], right[c_e]⟩ over a fixed pattern, differentiable in both sides."""

    @staticmethod
    def forward(ctx, pattern: EdgePattern, transposed: bool, left, right):  # noqa: D401
        ctx.pattern, ctx.transposed = pattern, transposed
        ctx.save_for_backward(left, right)
        return pattern.edge_dots(left, right, transposed)

    @staticmethod
    def backward(ctx, grad):
        left, right = ctx.saved_tensors
        pattern, transposed = ctx.pattern, ctx.transposed
        grad_left = grad_right = None
        if ctx.needs_input_grad[2]:  # Σ_e g_e right[c_e] per row: S(g) @ right
            grad_left = csr_mm(pattern.csr(grad, transposed), right)
        if ctx.needs_input_grad[3]:  # Σ_e g_e left[r_e] per column: S(g)ᵀ @ left
            grad_right = csr_mm(pattern.csr(pattern.other_order(grad, transposed), not transposed), left)
        return None, None, grad_left, grad_right


def edge_dots(pattern: EdgePattern, left: torch.Tensor, right: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """⟨left[r], right[c]⟩ for every edge (r, c) of ``pattern`` (row-major order, or column-major
    when ``transposed``), differentiable in ``left`` and ``right``; E × d never materialised."""
    return _EdgeDots.apply(pattern, transposed, left, right)


def segment_softmax(logits: torch.Tensor, segments: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Softmax of ``logits`` within each group of equal ``segments`` id (e.g. a node's edges)."""
    peak = torch.full((n_segments,), -torch.inf, dtype=logits.dtype, device=logits.device)
    peak = peak.scatter_reduce(0, segments, logits.detach(), "amax", include_self=True)
    shifted = torch.exp(logits - peak[segments])
    total = torch.zeros(n_segments, dtype=logits.dtype, device=logits.device).index_add(0, segments, shifted)
    return shifted / total[segments]
