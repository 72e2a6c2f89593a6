"""Stress tests as typed specs: one definition per kind that ``robustrec perturb`` and study cells share.

A spec holds a kind's options exactly as the command line names them (levels as comma lists),
``check()`` validates them before anything is loaded, and ``run(checkpoints, data, settings,
callbacks, device)`` returns the reports (one per edit for ``image``) and the lines a front end may show.
``stress_spec(kind, options)`` builds one from a mapping (a study file), rejecting unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from robustrec.errors import ConfigError
from robustrec.limits import check_numbers


def parse_levels(text: str, flag: str) -> list[float]:
    """'1e-4,1e-3' -> [1e-4, 1e-3]; anything else is a one-line ConfigError."""
    try:
        values = [float(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{flag} must be a number or a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ConfigError(f"{flag} needs at least one value")
    return values


@dataclass
class StressOutcome:
    """The reports of one stress test and what a user should be told beside the tables."""

    reports: list[dict]
    notes: list[str] = field(default_factory=list)


class StressSpec:
    """Base of the per-kind specs: ``kind``, ``check()`` before loading, ``run()`` after."""

    kind: ClassVar[str] = ""

    def check(self) -> "StressSpec":
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        raise NotImplementedError


@dataclass
class NoiseStress(StressSpec):
    kind: ClassVar[str] = "noise"
    sigma: str = "1e-3"
    target: str = "all"
    flatness: bool = True

    def check(self) -> "NoiseStress":
        from robustrec.perturbations import GaussianEmbeddingNoise

        self._sigmas = parse_levels(self.sigma, "--sigma")
        for value in self._sigmas:
            GaussianEmbeddingNoise(value, self.target)  # validates σ and target
        check_numbers(self._sigmas, "--sigma", "noise.sigma")  # finite and not absurd (robustrec.limits)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.noise_study import run_noise_study

        return StressOutcome([run_noise_study(checkpoints, data, self._sigmas, self.target, settings, callbacks,
                                              self.flatness)])


def open_cache(encoder, scope: str, cache_dir: str, enabled: bool):
    """The on-disk cache of ``encoder``'s rows (None when off or when the encoder cannot be pinned)."""
    if not enabled:
        return None
    from robustrec.features.text_cache import open_text_cache

    return open_text_cache(encoder, scope, Path(cache_dir) if cache_dir else None)


def check_cache_dir(cache_dir: str) -> None:
    if cache_dir:
        from robustrec.paths import check_output_dir

        check_output_dir(Path(cache_dir), "--cache-dir")


def cache_warning(report: dict) -> list[str]:
    summary = report["settings"].get("text_cache")
    return [f"warning: {summary['warning']}"] if summary and summary.get("warning") else []


@dataclass
class CaptionStress(StressSpec):
    kind: ClassVar[str] = "caption"
    rate: str = "0.01"
    position: str = "random-sentence"
    captioner: str = ""
    captions: str = ""
    text_encoder: str = "all-MiniLM-L6-v2"
    cache_dir: str = ""
    text_cache: bool = True

    def check(self) -> "CaptionStress":
        from robustrec.perturbations.base import check_rate
        from robustrec.perturbations.caption import check_position

        self._rates = [check_rate(value) for value in parse_levels(self.rate, "--rate")]
        check_position(self.position)
        check_cache_dir(self.cache_dir)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.features.text import SentenceTextEncoder
        from robustrec.studies.caption_study import (ENCODER_CHECK_WARN, default_captioner, load_caption_inputs,
                                                     run_caption_study)

        inputs = load_caption_inputs(data, self.captioner or default_captioner(data.name), self.captions or None)
        encoder = SentenceTextEncoder(self.text_encoder, device=device)
        cache = open_cache(encoder, data.name, self.cache_dir, self.text_cache)
        report = run_caption_study(checkpoints, data, self._rates, self.position, inputs, encoder, settings,
                                   callbacks, cache)
        notes = cache_warning(report)
        check = report["settings"]["encoder_check"]
        if check and check["mean_cosine"] < ENCODER_CHECK_WARN:
            notes.append(f"warning: {encoder.encoder_id} re-encodes clean item texts with mean cosine "
                         f"{check['mean_cosine']:.3f} to text_feat.npy: it may not be the encoder that made it")
        return StressOutcome([report], notes)


@dataclass
class ModalityStress(StressSpec):
    kind: ClassVar[str] = "modality"
    missing: str | None = None
    swap: str | None = None
    noise: str | None = None
    rate: str | None = None
    sigma: str | None = None
    fill: str | None = None
    neighbour_k: int | None = None
    neighbour_modality: str | None = None

    def check(self) -> "ModalityStress":
        from robustrec.studies.modality_study import fault_spec

        self._spec, self._levels = fault_spec(self.missing, self.swap, self.noise, self.rate, self.sigma, self.fill,
                                              self.neighbour_k, self.neighbour_modality, parse_levels)
        if self._spec.fault == "noise":  # rates: check_rate keeps them in [0, 1]
            check_numbers(self._levels, "--sigma", "modality.sigma")
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.modality_study import check_against, run_modality_study

        check_against(self._spec, checkpoints, data)
        return StressOutcome([run_modality_study(checkpoints, data, self._spec, self._levels, settings, callbacks)])


@dataclass
class ImageStress(StressSpec):
    kind: ClassVar[str] = "image"
    edit: str = "blur"
    rate: str | None = None
    radius: float | None = None
    quality: int | None = None
    crop_fraction: float | None = None
    brightness: float | None = None
    occlusion: float | None = None

    def check(self) -> "ImageStress":
        from robustrec.studies.image_study import edit_plan

        self._plan, self._rates = edit_plan(self.edit, self.rate, {
            "blur": self.radius, "jpeg": self.quality, "crop": self.crop_fraction, "color": self.brightness,
            "occlude": self.occlusion}, parse_levels)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.perturbations.modality import model_unaffected_reason
        from robustrec.studies.image_study import load_photo_inputs, needs_encoder, prepare_rows, run_image_study

        photos, entry = load_photo_inputs(data)
        rows, check = (prepare_rows(data, photos, device=device) if needs_encoder(checkpoints, self._plan, self._rates)
                       else (None, None))
        notes = []
        if all(model_unaffected_reason(c.model, "image") is not None for c in checkpoints):
            notes.append("note: no given checkpoint's scores read image features at inference: every one is "
                         "reported unaffected by construction")
        reports = [run_image_study(checkpoints, data, name, amount, self._rates, photos, rows, check, entry,
                                   settings, callbacks) for name, amount in self._plan]
        if rows is not None:
            notes.append(f"re-encoded {rows.encoded} edited photos with {rows.encoder_id}")
        return StressOutcome(reports, notes)


@dataclass
class TextStress(StressSpec):
    kind: ClassVar[str] = "text"
    edit: str = ""
    rate: str = "0.05"
    keywords: int | None = None
    keyword_pool: int | None = None
    text_encoder: str | None = None
    cache_dir: str = ""
    text_cache: bool = True

    def check(self) -> "TextStress":
        from robustrec.perturbations.base import check_rate
        from robustrec.studies.text_study import check_flags

        self._keywords, self._pool = check_flags(self.edit, self.keywords, self.keyword_pool)
        self._rates = [check_rate(value) for value in parse_levels(self.rate, "--rate")]
        check_cache_dir(self.cache_dir)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.text_study import check_inputs, load_item_records, run_text_study, text_encoder_for

        items = load_item_records(data)
        check_inputs(self.edit, items, data)
        encoder, source = text_encoder_for(data.source, self.text_encoder, device)
        cache = open_cache(encoder, data.name, self.cache_dir, self.text_cache)
        report = run_text_study(checkpoints, data, self.edit, self._rates, items, encoder, settings, callbacks,
                                self._keywords, self._pool, source, cache)
        return StressOutcome([report], text_notes(report) + cache_warning(report))


def text_notes(report: dict) -> list[str]:
    """Eligible items, the keyword pool and the re-encoding of a text-edit report, as lines."""
    settings = report["settings"]
    lines = [f"eligible items: {settings['eligible_items']} of {settings['items_with_text']} with a text "
             f"({settings['n_items']} items)"]
    if settings.get("keyword_pool"):
        pool = ", ".join(f"{tag} ({count})" for tag, count in settings["keyword_pool"])
        lines.append(f"keyword pool (items carrying each tag): {pool}")
    if not settings.get("text_encoder"):
        lines.append("no given checkpoint's model reads text features at inference: all are unaffected by "
                     "construction")
    elif "reencoding" in settings:
        again, cached = settings["reencoding"], settings.get("text_cache") or {}
        reused = f" ({cached['rows_reused']} texts from the text cache)" if cached.get("rows_reused") else ""
        lines.append(f"re-encoded {again['edited_texts_encoded']} edited texts in {again['seconds']:.2f} s{reused} "
                     f"with {settings['text_encoder']} (encoder check: min cosine "
                     f"{settings['encoder_check']['min_cosine']:.5f})")
    return lines


@dataclass
class AdversarialStress(StressSpec):
    kind: ClassVar[str] = "adversarial"
    target: str = "features"
    eps: str = "0.1"
    steps: int = 1

    def check(self) -> "AdversarialStress":
        from robustrec.perturbations.adversarial import check_attack, check_target

        self._epsilons = parse_levels(self.eps, "--eps")
        check_target(self.target)
        for value in self._epsilons:
            check_attack(value, self.steps)
        check_numbers(self._epsilons, "--eps", "adversarial.eps")  # finite and not absurd (robustrec.limits)
        return self

    def run(self, checkpoints, data, settings, callbacks=None, device: str | None = None) -> StressOutcome:
        from robustrec.studies.adversarial_study import run_adversarial_study

        return StressOutcome([run_adversarial_study(checkpoints, data, self._epsilons, self.target, self.steps,
                                                    settings, callbacks)])


SPECS: dict[str, type[StressSpec]] = {cls.kind: cls for cls in (NoiseStress, CaptionStress, ModalityStress,
                                                                  ImageStress, TextStress, AdversarialStress)}


def stress_spec(kind: str, options: dict, what: str = "") -> StressSpec:
    """The checked spec of ``kind`` from ``options`` (a study file's table; lists of levels allowed)."""
    from robustrec.config import from_dict

    if kind not in SPECS:
        raise ConfigError(f"unknown stress kind {kind!r}; choose one of {', '.join(SPECS)}")
    values = {key.replace("-", "_"): (",".join(map(str, value)) if isinstance(value, list) else value)
              for key, value in options.items()}
    return from_dict(SPECS[kind], values, what or f"{kind} stress").check()
