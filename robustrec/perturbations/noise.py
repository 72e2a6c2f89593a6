"""Gaussian embedding noise (the Mirror Gradient paper's inherent-noise risk, docs/design.md §2).

At inference, ε ~ N(0, σ²) is added to the model's learnable ID embedding tables, the model is
re-scored and evaluated. The paper (Zhong et al., WWW 2024) used σ² = 1e-6 (σ = 1e-3), R = 10
repeats, REC@5, on all embedding tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation

TARGETS = ("all", "user", "item")


@dataclass(frozen=True)
class GaussianEmbeddingNoise(Perturbation):
    """Add N(0, σ²) noise to the tables of ``model.embedding_tables()`` named by ``target``.

    ``target``: "all" (every table, the paper's setting), "user" or "item" (tables whose name
    is, or starts with, that word). Tables are visited in name order and each draws from one
    ``torch.Generator`` seeded with the trial seed, so a seed fixes the noise exactly.
    """

    sigma: float = 1e-3
    target: str = "all"

    kind = "noise"
    strength_name = "sigma"

    def __post_init__(self) -> None:
        if not self.sigma >= 0 or self.sigma == float("inf"):
            raise ConfigError(f"--sigma must be a finite number >= 0, got {self.sigma}")
        if self.target not in TARGETS:
            raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {self.target!r}")

    @property
    def strength(self) -> float:
        return self.sigma

    def parameters(self) -> dict[str, object]:
        return {"sigma": self.sigma, "target": self.target}

    def unaffected_reason(self, model) -> str | None:
        """A model without learnable ID embedding tables (an MMRec ItemKNNCBF file) cannot be
        affected."""
        if not model.embedding_tables():
            return f"model {model.name!r} has no learnable ID embedding table"
        return None

    def tables(self, model) -> dict[str, torch.nn.Parameter]:
        """The embedding tables this noise perturbs on ``model`` (by name)."""
        tables = model.embedding_tables()
        if self.target == "all":
            return dict(sorted(tables.items()))
        chosen = {name: t for name, t in sorted(tables.items()) if name.split("_")[0] == self.target}
        if not chosen:
            raise ConfigError(f"model {model.name!r} has no {self.target!r} embedding table; "
                              f"its tables are {', '.join(sorted(tables))}")
        return chosen

    def _perturb_copy(self, model, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for table in self.tables(model).values():
                noise = torch.randn(table.shape, generator=generator, dtype=table.dtype)
                table.add_(noise.to(table.device), alpha=self.sigma)
