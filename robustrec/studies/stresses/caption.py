"""The ``caption`` kind: image captions inserted into item texts (docs/stress/caption.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress

CACHE_DIR_HELP = ("Root of the cache of encoded texts (default $ROBUSTREC_CACHE, else ~/.cache/robustrec); the data "
                  "folder is never written.")
TEXT_CACHE_HELP = ("Reuse texts encoded by earlier runs (keyed by the encoder's files and versions) and keep the "
                   "new ones.")


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


@register_stress
@dataclass
class CaptionStress(StressSpec):
    """Insert image captions into item texts at RATE, re-encode them, re-evaluate R times, report."""

    kind: ClassVar[str] = "caption"
    repeats: ClassVar[Repeats] = Repeats(5, "Item draws per rate.")
    rate: str = option("0.01", "Share of items whose text gets a caption, or a comma list (paper: 0.01).")
    position: str = option("random-sentence", "Where the caption goes: random-sentence (a random sentence "
                           "boundary, i.e. inserted into the text), append or prepend.")
    captioner: str = option("", "Captioner id of the cache (default: synthetic-reference on the synthetic data, "
                            "else blip2:Salesforce/blip2-opt-2.7b).")
    captions: str = option("", "Caption cache file (default <data>/<name>/captions/<captioner>.json).", path=True)
    text_encoder: str = option("all-MiniLM-L6-v2", "Sentence encoder that made text_feat.npy.")
    cache_dir: str = option("", CACHE_DIR_HELP, path=True)
    text_cache: bool = option(True, TEXT_CACHE_HELP)

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

    def stress_modalities(self) -> list[str]:
        return ["text"]

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.features.text import ItemTextEmbeddings
        from robustrec.perturbations.caption import CaptionInjection

        texts = [f"item {i}. it is a thing." for i in range(data.n_items)]
        stand_in = encoder("text", data.features["text"].shape[1])
        embeddings = ItemTextEmbeddings(stand_in, texts, clean=data.features["text"])
        return CaptionInjection(strength, {i: f"a photo of item {i}" for i in range(data.n_items)}, texts, embeddings)
