"""Inference-time perturbations: seeded objects that return perturbed copies of a model."""

from robustrec.perturbations.base import Perturbation, copy_model, trial_seeds
from robustrec.perturbations.noise import TARGETS, GaussianEmbeddingNoise

__all__ = ["GaussianEmbeddingNoise", "Perturbation", "TARGETS", "copy_model", "trial_seeds"]
