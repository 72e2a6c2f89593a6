"""Flatness measures of trained models on their training loss."""

from robustrec.flatness.measures import (default_rho, noise_sensitivity, rho_sharpness, training_loss,
                                         training_triplets)

__all__ = ["default_rho", "noise_sensitivity", "rho_sharpness", "training_loss", "training_triplets"]
