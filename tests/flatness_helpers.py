"""A model with a known Hessian, for the flatness tests."""

import numpy as np
import torch
from torch import nn


class Quadratic(nn.Module):
    """loss = ½ θᵀ A θ with A = diag(1, 2, 3, 4, 5) + a rotation: known Hessian A."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        self.A = torch.tensor(q @ np.diag([1.0, 2.0, 3.0, 4.0, 5.0]) @ q.T, dtype=torch.float32)
        self.theta = nn.Parameter(torch.tensor(rng.standard_normal(5), dtype=torch.float32))

    def loss(self, *_):
        return 0.5 * self.theta @ self.A @ self.theta
