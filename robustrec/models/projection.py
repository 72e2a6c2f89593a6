"""Learned linear projections of raw item features, evaluated only on the rows a batch needs."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class FeatureProjection(nn.Module):
    """y = [x_m1, x_m2, …] Wᵀ + b: one linear map of the concatenated modalities.

    The concatenation is never materialised: each modality multiplies its own column block
    of W, and ``rows`` restricts the work to the items a batch touches (the gradient of W
    is the same as projecting every item and indexing afterwards).
    """

    def __init__(self, dims: dict[str, int], out_dim: int) -> None:
        super().__init__()
        self.names = tuple(dims)
        self.dims = tuple(dims[m] for m in self.names)
        self.weight = nn.Parameter(nn.init.xavier_normal_(torch.empty(out_dim, sum(self.dims))))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def forward(self, features: dict[str, torch.Tensor], rows: torch.Tensor | None = None) -> torch.Tensor:
        out, start = None, 0
        for name, dim in zip(self.names, self.dims):
            x = features[name] if rows is None else features[name].index_select(0, rows)
            block = self.weight[:, start:start + dim]
            # a column block of W is strided; F.linear on a contiguous copy is the same product
            # (bitwise) and much faster (VBPR on Baby shapes: 4.5–5.6 → 3.4–3.8 s/epoch, 1 thread)
            part = F.linear(x, block if len(self.dims) == 1 else block.contiguous())
            out = part if out is None else out + part
            start += dim
        return out + self.bias


def unique_rows(*indices: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(distinct ids, each input re-expressed as positions into the distinct ids)."""
    joined = torch.cat(indices)
    distinct, inverse = torch.unique(joined, return_inverse=True)
    return distinct, list(torch.split(inverse, [len(i) for i in indices]))
