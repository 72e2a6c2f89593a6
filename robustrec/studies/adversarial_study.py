"""The adversarial study: FGSM/PGD at each budget ε, the worst case rather than a random draw."""

from __future__ import annotations

import dataclasses

import numpy as np

from robustrec.errors import ConfigError
from robustrec.perturbations.adversarial import (NORM, PGD_STEP_FACTOR, SAMPLES, AdversarialPerturbation,
                                                 feature_gradients, mean_row_norm)
from robustrec.studies.runner import StudySettings, run_study

PROBE_SAMPLES = 64


def describe(target: str, steps: int) -> str:
    attack = "FGSM" if steps == 1 else f"PGD, {steps} steps of {PGD_STEP_FACTOR}·eps/{steps}"
    what = "item feature rows" if target == "features" else "ID embedding rows"
    return (f"worst case, not a random draw: {attack} on {what} maximising the model's own training loss on "
            f"{SAMPLES} seeded training triplets; L2 budget per row = eps x the mean row norm")


def check_gradient_path(checkpoints, data, perturbation: AdversarialPerturbation) -> None:
    """Refuse (one line) a feature attack on a model whose training loss has no gradient w.r.t.
    its features: the attack could not move them, and a zero drop would read as robustness."""
    from robustrec.flatness.measures import fixed_loss, training_triplets

    if perturbation.target != "features":
        return
    triplets = training_triplets(data, PROBE_SAMPLES, 0)
    for checkpoint in checkpoints:
        model = checkpoint.model
        if perturbation.unaffected_reason(model) is not None:
            continue
        from robustrec.perturbations.base import copy_model

        probe = copy_model(model)
        probe.eval()
        zeros = {m: x.new_zeros(x.shape) for m, x in probe.features().items()}
        grads = feature_gradients(probe, lambda: fixed_loss(probe, triplets), zeros,
                                  rebuild=not getattr(probe, "loss_reads_features", False))
        if all(g is None for g in grads.values()):
            raise ConfigError(f"checkpoint {checkpoint.run.name}: model {model.name!r}'s training loss has no "
                              f"gradient w.r.t. its item features, so a gradient attack cannot move them; use "
                              f"--target embeddings or `perturb modality --noise`")


def run_adversarial_study(checkpoints, data, epsilons: list[float], target: str, steps: int,
                          settings: StudySettings, callbacks=None) -> dict:
    """Clean + attacked evaluation per ε for each checkpoint (R trials re-draw the triplet sample)."""
    perturbations = [AdversarialPerturbation(eps, target, steps, data=data) for eps in epsilons]
    check_gradient_path(checkpoints, data, perturbations[0])
    row_norms = ({m: mean_row_norm(_tensor(x)) for m, x in sorted(data.features.items())}
                 if target == "features" else None)
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = {
        "title": "adversarial", "description": describe(target, steps), "worst_case": True,
        "target": target, "attack": "fgsm" if steps == 1 else "pgd", "steps": steps, "norm": NORM,
        "budget": "per-row L2 radius eps * mean L2 row norm of the row's feature matrix / embedding table",
        "pgd_step_size": f"{PGD_STEP_FACTOR} * eps * mean row norm / steps" if steps > 1 else None,
        "loss": "model.loss (training objective, regulariser included), model in eval mode, RNG fixed",
        "samples": SAMPLES, "sample_seeds": "the trial seeds",
        "feature_mean_row_norms": row_norms, "file_tag": target,
        "flatness": {"measure": "training-loss rise the attack reaches on its triplet sample (worst case at "
                                "this budget, not a random-direction rise)", "samples": SAMPLES},
    }
    return run_study(checkpoints, data, perturbations, settings, callbacks, attacked_loss_rise)


def attacked_loss_rise(model, perturbation: AdversarialPerturbation, seeds: list[int]) -> dict:
    """The level's loss rise (mean ± std over trials), shown where the noise study shows flatness."""
    rises = np.array([perturbation.trial_record(seed)["loss_rise"] for seed in seeds])
    std = float(rises.std(ddof=1)) if len(rises) > 1 else 0.0
    return {"flatness": {"loss_rise": {"mean": float(rises.mean()), "std": std, "values": rises.tolist()},
                         "worst_case": True}}


def _tensor(matrix):
    import torch

    return torch.from_numpy(np.asarray(matrix, dtype=np.float32))
