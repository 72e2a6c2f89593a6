"""``common.init``: initialisers applied with ``module.apply(...)`` (robustrec's implementation)."""

from __future__ import annotations

from torch import nn


def xavier_normal_initialization(module):
    """Xavier-normal weights for ``nn.Embedding`` and ``nn.Linear``; zero ``Linear`` biases."""
    _initialise(module, nn.init.xavier_normal_)


def xavier_uniform_initialization(module):
    """Xavier-uniform weights for ``nn.Embedding`` and ``nn.Linear``; zero ``Linear`` biases."""
    _initialise(module, nn.init.xavier_uniform_)


def _initialise(module, init) -> None:
    if isinstance(module, (nn.Embedding, nn.Linear)):
        init(module.weight.data)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias.data)
