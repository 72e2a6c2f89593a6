"""The modality-fault study: one fault (missing / swap / noise) on one modality, over checkpoints.

``fault_spec`` turns the command's flags into a typed ``ModalityFaultSpec`` (one-line errors for
bad combinations), ``check_against`` validates it against the loaded checkpoints before any
evaluation, and ``run_modality_study`` runs the kind-agnostic runner.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path

from robustrec.data.dataset import canonical_order, check_modality_name
from robustrec.errors import ConfigError, DataError
from robustrec.perturbations.base import check_rate
from robustrec.perturbations.modality import (DEFAULT_NEIGHBOUR_K, FAULTS, FeatureNoise, FeatureSwap,
                                              MissingModality, ModalityFault, check_fill, check_neighbour_k,
                                              check_sigma, model_unaffected_reason, rms_scale)
from robustrec.studies.runner import StudySettings, run_study

DEFAULT_RATE = 0.1
DEFAULT_SIGMA = 0.1
SELECTION = ("per trial, numpy default_rng(seed).permutation(n_items); the first floor(rate*n_items + 0.5) "
             "ids are chosen (nested across rates for one seed)")


@dataclass(frozen=True)
class ModalityFaultSpec:
    """Everything but the strength: which fault, on which modality, with which fill."""

    fault: str
    modality: str
    fill: str = "mean"
    neighbour_k: int = DEFAULT_NEIGHBOUR_K
    neighbour_modality: str | None = None

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ConfigError(f"unknown modality fault {self.fault!r}; choose one of {', '.join(FAULTS)}")
        check_modality_name(self.modality)

    @property
    def strength_flag(self) -> str:
        return "--sigma" if self.fault == "noise" else "--rate"

    def perturbations(self, levels: list[float], n_items: int, scale: float | None = None) -> list[ModalityFault]:
        """One perturbation per level (each validated)."""
        if self.fault == "missing":
            return [MissingModality(self.modality, n_items, level, self.fill, self.neighbour_k,
                                    self.neighbour_modality) for level in levels]
        if self.fault == "swap":
            return [FeatureSwap(self.modality, n_items, level) for level in levels]
        return [FeatureNoise(self.modality, n_items, level, scale) for level in levels]

    def title(self) -> str:
        """Table heading, e.g. "modality: missing audio (fill mean)"."""
        detail = {"missing": f" (fill {self.fill})", "swap": " (rows swapped between items)",
                  "noise": " (Gaussian noise on rows)"}[self.fault]
        return f"modality: {self.fault} {self.modality}{detail}"


def fault_spec(missing: str | None, swap: str | None, noise: str | None, rate: str | None, sigma: str | None,
               fill: str | None, neighbour_k: int | None, neighbour_modality: str | None,
               parse_levels) -> tuple[ModalityFaultSpec, list[float]]:
    """(spec, levels) from the command's flags; ``parse_levels(text, flag)`` splits a comma list.

    Exactly one of ``missing``/``swap``/``noise`` names the modality; ``--rate`` goes with
    missing and swap, ``--sigma`` with noise; ``--fill`` only with missing, ``--neighbour-k`` and
    ``--neighbour-modality`` only with ``--fill neighbours``.
    """
    given = [(name, value) for name, value in (("missing", missing), ("swap", swap), ("noise", noise))
             if value is not None]
    if len(given) != 1:
        which = "none" if not given else " and ".join(f"--{name}" for name, _ in given)
        raise ConfigError(f"give exactly one of --missing, --swap or --noise (a modality name), got {which}")
    fault, modality = given[0]
    check_modality_name(modality)
    if fault == "noise":
        if rate is not None:
            raise ConfigError("--rate applies to --missing and --swap; --noise takes --sigma")
        levels = [check_sigma(v) for v in parse_levels(sigma if sigma is not None else str(DEFAULT_SIGMA),
                                                        "--sigma")]
    else:
        if sigma is not None:
            raise ConfigError(f"--sigma applies to --noise; --{fault} takes --rate")
        levels = [check_rate(v) for v in parse_levels(rate if rate is not None else str(DEFAULT_RATE), "--rate")]
    if fault != "missing" and fill is not None:
        raise ConfigError(f"--fill applies to --missing only, not --{fault}")
    fill = check_fill(fill if fill is not None else "mean")
    if fill != "neighbours" and (neighbour_k is not None or neighbour_modality is not None):
        flag = "--neighbour-k" if neighbour_k is not None else "--neighbour-modality"
        raise ConfigError(f"{flag} applies to --fill neighbours only")
    k = check_neighbour_k(neighbour_k if neighbour_k is not None else DEFAULT_NEIGHBOUR_K)
    if neighbour_modality is not None:
        check_modality_name(neighbour_modality)
        if neighbour_modality == modality:
            raise ConfigError(f"--neighbour-modality must differ from the missing modality {modality!r}")
    spec = ModalityFaultSpec(fault, modality, fill, k, neighbour_modality)
    spec.perturbations(levels, 0)  # every level validated before anything is loaded
    return spec, levels


def check_against(spec: ModalityFaultSpec, checkpoints, data) -> None:
    """One-line errors, before any evaluation: the modality must be one some checkpoint's model
    uses, and ``--fill neighbours`` needs a second modality in every model the fault reaches."""
    used = canonical_order({m for c in checkpoints for m in getattr(c.model, "feature_names", ())})
    flag = f"--{spec.fault} {spec.modality}"
    if spec.modality not in used:
        uses = f"use {', '.join(used)}" if used else "use no item features"
        if _has_feature_file(data, spec.modality):
            raise DataError(f"{flag}: no given checkpoint uses the {spec.modality} modality (their models {uses}); "
                            f"train one with --modalities including {spec.modality}")
        raise DataError(f"{flag}: unknown modality {spec.modality!r}; the checkpoints' models {uses}")
    if spec.fault == "missing" and spec.fill == "neighbours":
        probe = spec.perturbations([0.0], data.n_items)[0]
        for checkpoint in checkpoints:
            if model_unaffected_reason(checkpoint.model, spec.modality) is None:
                probe.neighbour_modality_of(checkpoint.model)


def _has_feature_file(data, modality: str) -> bool:
    return modality in data.features or bool(data.source and (Path(data.source) / f"{modality}_feat.npy").is_file())


def run_modality_study(checkpoints, data, spec: ModalityFaultSpec, levels: list[float], settings: StudySettings,
                       callbacks=None) -> dict:
    """Clean + R faulty evaluations per level for each checkpoint (see ``robustrec.perturbations.modality``)."""
    check_against(spec, checkpoints, data)
    scale = rms_scale(data.features[spec.modality]) if spec.fault == "noise" else None
    perturbations = spec.perturbations(levels, data.n_items, scale)
    extra = {"fault": spec.fault, "modality": spec.modality, "title": spec.title(),
             "file_tag": f"{spec.fault}-{spec.modality}",
             "description": _description(spec, scale), "n_items": data.n_items}
    if spec.fault != "noise":
        extra["selection"] = SELECTION
    if spec.fault == "missing":
        extra["fill"] = spec.fill
        extra["fill_rule"] = FILL_RULES[spec.fill]
        if spec.fill == "neighbours":
            extra.update(neighbour_k=spec.neighbour_k, neighbour_modality=spec.neighbour_modality or "first other")
    elif spec.fault == "swap":
        extra["swap_rule"] = "chosen items exchange rows by a uniformly random derangement (rejection sampling)"
    else:
        extra.update(scale=scale, scale_rule="mean over items of row L2 norm / sqrt(dim) (RMS entry), clean rows",
                     noise_rule="every item's row + N(0, (sigma*scale)^2) per entry, numpy default_rng(seed)")
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = extra

    def level_extra(model, perturbation, seeds):  # the neighbour modality each model actually used
        if isinstance(perturbation, MissingModality) and perturbation.fill == "neighbours":
            return {"neighbour_modality": perturbation.neighbour_modality_of(model)}
        return {}

    return run_study(checkpoints, data, perturbations, settings, callbacks, level_extra)


FILL_RULES = {
    "zeros": "missing rows become the zero row",
    "mean": "missing rows become the mean of the rows of items not chosen (zero row if none remain)",
    "neighbours": "missing rows become the mean of the rows of the k most cosine-similar present items in the "
                  "neighbour modality (ties to the lower id; zero row if none remain)",
}


def _description(spec: ModalityFaultSpec, scale: float | None) -> str:
    if spec.fault == "missing":
        fill = spec.fill
        if spec.fill == "neighbours":
            fill += f", k {spec.neighbour_k} via {spec.neighbour_modality or 'first other modality'}"
        return f"missing {spec.modality}, fill {fill}"
    if spec.fault == "swap":
        return f"{spec.modality} rows swapped among chosen items"
    return f"noise on {spec.modality} rows, std = sigma x {scale:.4g} (RMS entry)"
