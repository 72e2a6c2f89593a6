"""The Gaussian-noise study: noise levels plus the flatness figure of each checkpoint."""

from __future__ import annotations

import dataclasses

from robustrec.flatness import default_rho, noise_sensitivity, rho_sharpness, training_triplets
from robustrec.perturbations.noise import GaussianEmbeddingNoise
from robustrec.studies.runner import StudySettings, run_study

FLATNESS_SAMPLES = 4096


def noise_flatness(data, samples: int = FLATNESS_SAMPLES, seed: int = 0):
    """A level extra: training-loss rise under weight noise of the level's σ, and ρ-sharpness.

    The triplet sample is drawn once (seeded) and shared by every checkpoint and level.
    """
    triplets = training_triplets(data, samples, seed)

    def extra(model, perturbation: GaussianEmbeddingNoise, seeds: list[int]) -> dict:
        rises = noise_sensitivity(model, triplets, perturbation.sigma, seeds)
        rho = default_rho(model, perturbation.sigma)
        std = float(rises.std(ddof=1)) if len(rises) > 1 else 0.0
        return {"flatness": {
            "loss_rise": {"mean": float(rises.mean()), "std": std, "values": rises.tolist()},
            "rho": rho, "rho_sharpness": rho_sharpness(model, triplets, rho),
            "samples": int(len(triplets[0])),
        }}

    return extra


def run_noise_study(checkpoints, data, sigmas: list[float], target: str, settings: StudySettings,
                    callbacks=None, flatness: bool = True) -> dict:
    """Clean + R noisy evaluations per σ for each checkpoint, with flatness unless disabled."""
    perturbations = [GaussianEmbeddingNoise(sigma, target) for sigma in sigmas]
    for checkpoint in checkpoints:  # fail early when a model lacks the targeted tables
        perturbations[0].tables(checkpoint.model)
    named = {"title": "noise", "description": f"target {target}"}
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = {
        **named, "target": target,
        "flatness": {"measure": "BPR training-loss rise under N(0, sigma^2) weight noise on all learnable "
                                "parameters, same seeds as the trials; rho-sharpness with rho = sigma*sqrt(d)",
                     "samples": FLATNESS_SAMPLES if flatness else 0, "sample_seed": settings.seed},
    } if flatness else {**named, "target": target, "flatness": None}
    flat = noise_flatness(data, FLATNESS_SAMPLES, settings.seed) if flatness else None

    def extra(model, perturbation, seeds):  # name the tables actually perturbed
        out = {"tables": sorted(perturbation.tables(model))}
        return {**out, **flat(model, perturbation, seeds)} if flat else out

    return run_study(checkpoints, data, perturbations, settings, callbacks, extra)
