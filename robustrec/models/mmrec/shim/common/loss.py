"""``common.loss``: the loss modules MMRec model files use (robustrec's implementation)."""

from __future__ import annotations

import torch
from torch import nn


class BPRLoss(nn.Module):
    """−mean log(γ + σ(pos − neg)); γ keeps the log finite."""

    def __init__(self, gamma=1e-10):
        super().__init__()
        self.gamma = gamma

    def forward(self, pos_score, neg_score):
        return -torch.log(self.gamma + torch.sigmoid(pos_score - neg_score)).mean()


class EmbLoss(nn.Module):
    """Σ ‖e‖_p over the given tensors divided by the last one's row count (a 1-element tensor)."""

    def __init__(self, norm=2):
        super().__init__()
        self.norm = norm

    def forward(self, *embeddings):
        last = embeddings[-1]
        total = torch.zeros(1, device=last.device)
        for embedding in embeddings:
            total = total + torch.norm(embedding, p=self.norm)
        return total / last.shape[0]


class L2Loss(nn.Module):
    """Σ ½‖e‖² over the given tensors (a 1-element tensor)."""

    def forward(self, *embeddings):
        total = torch.zeros(1, device=embeddings[-1].device)
        for embedding in embeddings:
            total = total + 0.5 * embedding.pow(2).sum()
        return total
