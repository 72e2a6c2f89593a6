"""Optimizers by name; an unknown name is an error."""

from __future__ import annotations

import torch

from robustrec.errors import ConfigError

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
}


def build_optimizer(name: str, parameters, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    key = name.lower()
    if key not in OPTIMIZERS:  # also checked by TrainConfig.validate, before any data is loaded
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    return OPTIMIZERS[key](list(parameters), lr=lr, weight_decay=weight_decay)
