"""The perturbation contract: seeded objects that return perturbed copies of a model.

A ``Perturbation`` is a small, typed, immutable description of one stress (a kind plus its
parameters, e.g. Gaussian embedding noise with σ = 1e-3). ``apply(model, seed)`` returns a
perturbed *copy*; the input model is never modified, equal seeds give equal copies, and zero
strength (σ = 0, rate = 0) is the identity. Runners, reports and ``compare`` only rely on
``kind``, ``strength``, ``parameters()`` and ``apply``, so new kinds (caption injection, ...)
plug in without touching them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.models.base import copy_model  # noqa: F401  (re-exported: perturbations' public name)


class Perturbation(ABC):
    """Base class of inference-time perturbations (docs/design.md §2, §5)."""

    #: short name used in reports and file names ("noise", "caption", ...)
    kind: ClassVar[str] = ""
    #: name of the severity parameter ("sigma", "rate", ...), the x axis of severity curves
    strength_name: ClassVar[str] = "strength"

    @property
    @abstractmethod
    def strength(self) -> float:
        """The severity of this perturbation; 0 means identity."""

    @abstractmethod
    def parameters(self) -> dict[str, object]:
        """Every parameter needed to reproduce the perturbation (stored in reports)."""

    @abstractmethod
    def _perturb_copy(self, model, seed: int) -> None:
        """Perturb ``model`` (already a private copy) in place using ``seed``."""

    def unaffected_reason(self, model) -> str | None:
        """Why this perturbation cannot change ``model``'s scores by construction, or None.

        Runners report such models as "unaffected by construction" (clean metrics only), never
        as robust.
        """
        return None

    def trial_record(self, seed: int) -> dict[str, object]:
        """Numbers describing what trial ``seed`` changed (e.g. how many items), stored with it."""
        return {}

    def changed_items(self, seed: int) -> np.ndarray | None:
        """Ids of the items whose content trial ``seed`` changes (empty at zero strength), or
        None when the stress changes no specific items (e.g. noise on every embedding)."""
        return None

    def apply(self, model, seed: int):
        """A perturbed copy of ``model``; ``model`` itself is left untouched."""
        perturbed = copy_model(model)
        if self.strength != 0:
            self._perturb_copy(perturbed, int(seed))
        perturbed.eval()
        return perturbed

    def describe(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in self.parameters().items())


def trial_seeds(seed: int, repeats: int) -> list[int]:
    """``repeats`` independent 32-bit seeds derived from one root ``seed`` (NumPy SeedSequence)."""
    children = np.random.SeedSequence(seed).spawn(repeats)
    return [int(child.generate_state(1, dtype=np.uint32)[0]) for child in children]


def check_rate(rate: float) -> float:
    """``rate`` if it is a probability, else a one-line ConfigError."""
    if not 0.0 <= rate <= 1.0:  # also rejects NaN
        raise ConfigError(f"--rate must be in [0, 1], got {rate}")
    return float(rate)


def set_text_features(model, features: np.ndarray) -> None:
    """Give ``model`` (a private copy) new text features, the other modalities unchanged; a
    DataError when their shape is not the model's."""
    current = model.features()
    if tuple(current["text"].shape) != features.shape:
        raise DataError(f"text features of {model.name} have shape {tuple(current['text'].shape)}, "
                        f"the re-encoded texts {features.shape}")
    model.set_item_features({**current, "text": features})
