"""The ``text`` kind: real item texts edited (keywords, field removal, swap) and re-encoded (docs/stress/text.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.caption import (CACHE_DIR_HELP, TEXT_CACHE_HELP, cache_warning, check_cache_dir,
                                                open_cache)
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class TextStress(StressSpec):
    """Edit real item texts (keyword stuffing, field removal, swap) at RATE, re-encode them, re-evaluate R times.

    The Mirror Gradient paper's information-adjustment risk on the dataset's own records: edited
    records are rebuilt into text by build_item_text and only edited texts are re-encoded, with the
    encoder recorded in features.json (else --text-encoder, checked against the stored rows).
    Items: the first ⌊rate·n + ½⌋ eligible ids of a seeded permutation. Models that do not read
    text features at inference are reported as unaffected by construction.
    """

    kind: ClassVar[str] = "text"
    repeats: ClassVar[Repeats] = Repeats(5, "Draws per rate.")
    edit: str = option("", "keywords (stuff the catalogue's most frequent tags into the item's categories), "
                       "drop-description, drop-categories (remove that field) or swap (chosen items exchange texts "
                       "by a random derangement).", required=True)
    rate: str = option("0.05", "Share of the eligible items (items with a text; with the field, for drop-*) that are "
                       "edited, or a comma list.")
    keywords: int | None = option(None, "--edit keywords: tags stuffed into each chosen item (default 3).")
    keyword_pool: int | None = option(None, "--edit keywords: draw the tags (seeded) from the top N of the ranking "
                                      "instead of taking the k most frequent the item lacks.")
    text_encoder: str | None = option(None, "Encoder that made text_feat.npy when features.json records none "
                                      "(default all-MiniLM-L6-v2); checked on untouched items.")
    cache_dir: str = option("", CACHE_DIR_HELP, path=True)
    text_cache: bool = option(True, TEXT_CACHE_HELP)

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

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.features.text import ItemTextEmbeddings
        from robustrec.perturbations.text_edit import ItemRecords, TextEdit

        records = ItemRecords([{"title": f"item {i}", "description": f"thing number {i}."}
                               for i in range(data.n_items)])
        texts = list(records.texts)
        stand_in = encoder("text", data.features["text"].shape[1])
        embeddings = ItemTextEmbeddings(stand_in, texts, clean=data.features["text"])
        return TextEdit("swap", strength, records, embeddings)

    def stress_modalities(self) -> list[str]:
        return ["text"]


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
