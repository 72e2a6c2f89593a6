"""A one-parameter model with a hand-computable gradient, for the step-strategy tests."""

import torch


class Quadratic(torch.nn.Module):
    """loss = 0.5 · Σ c·w² for the batch's coefficient c (so ∇L = c·w)."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(w))

    def loss(self, users, pos, neg):
        return 0.5 * (users.float().mean() * self.w.pow(2)).sum()


def _batch(c=1.0):
    return torch.tensor([c]), torch.tensor([0]), torch.tensor([0])
