"""Flatness measures of trained models on their training loss."""

from robustrec.flatness.measures import (default_rho, direction_loss_rise, hessian_top_eigenvalue, noise_sensitivity,
                                         random_direction, rho_sharpness, sharpness, training_loss,
                                         training_triplets)

__all__ = ["default_rho", "direction_loss_rise", "hessian_top_eigenvalue", "noise_sensitivity",
           "random_direction", "rho_sharpness", "sharpness", "training_loss", "training_triplets"]
