"""The text-edit study: item records + the encoder that made ``text_feat.npy``, run over checkpoints.

Inputs come from the dataset folder: item records from ``<name>.items.jsonl``
(``robustrec.data.content``). The re-encoding encoder is the one recorded for text in the folder's
``features.json`` (``encoder_for``; a mismatch is an error); without such an entry (lfm2k ships
``text_feat.npy`` without a sidecar) it is ``--text-encoder`` (default all-MiniLM-L6-v2). Either
way, re-encoding a few untouched items with text must reproduce their stored rows (cosine > 0.999),
otherwise the stored features were not made by that encoder and the study stops with one line.
"""

from __future__ import annotations

import dataclasses

import time
from pathlib import Path

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.perturbations.caption import MemoTextEncoder
from robustrec.perturbations.base import trial_seeds
from robustrec.studies.runner import StudySettings, run_study
from robustrec.perturbations.text_edit import (DEFAULT_KEYWORDS, DROPPED_FIELD, ItemRecords, TextEdit, check_edit,
                                               check_keywords)

DEFAULT_TEXT_ENCODER = "all-MiniLM-L6-v2"
ENCODER_CHECK_ITEMS = 8
ENCODER_CHECK_MIN_COSINE = 0.999
SELECTION = ("per trial, numpy default_rng(seed).permutation(eligible ids); the first "
             "floor(rate*n_eligible + 0.5) are chosen (nested across rates for one seed)")
EDIT_RULES = {
    "keywords": "put in front of the item's categories the k catalogue tags it lacks (case-insensitive) ranked "
                "highest by the number of items carrying them (ties by string); with --keyword-pool N, k drawn from "
                "the top N it lacks with numpy default_rng([seed, item]); text rebuilt by build_item_text",
    "drop-description": "remove the description field (title, brand, categories kept); text rebuilt by build_item_text",
    "drop-categories": "remove the categories field (other fields kept); an item left without text gets the "
                       "encoder's embedding of the empty string",
    "swap": "chosen items exchange their whole records by a uniformly random derangement (rejection sampling)",
}


class TimedEncoder:
    """A text encoder that counts the texts it encodes and the seconds it spends."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.texts = 0
        self.seconds = 0.0

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def encoder_id(self) -> str:
        return self.encoder.encoder_id

    def encode(self, texts):
        start = time.perf_counter()
        rows = self.encoder.encode(list(texts))
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return rows


def check_flags(edit: str, keywords: int | None, keyword_pool: int | None) -> tuple[int, int | None]:
    """(keywords, keyword_pool) after validating the command's flags (one-line ConfigErrors)."""
    check_edit(edit)
    if edit != "keywords" and (keywords is not None or keyword_pool is not None):
        flag = "--keywords" if keywords is not None else "--keyword-pool"
        raise ConfigError(f"{flag} applies to --edit keywords only")
    return check_keywords(DEFAULT_KEYWORDS if keywords is None else keywords, keyword_pool)


def load_item_records(data) -> ItemRecords:
    """The item records of ``data``'s folder; a one-line DataError when there are none."""
    from robustrec.data.content import item_text_path, load_item_records as load

    if not data.source:
        raise DataError(f"dataset {data.name!r} has no folder on disk (item texts live there)")
    folder = Path(data.source)
    if not item_text_path(folder, data.name).is_file():
        raise DataError(f"dataset {data.name!r} has no item texts: {item_text_path(folder, data.name)} not found")
    items = ItemRecords.from_mapping(load(folder, data.name, data.n_items), data.n_items)
    if not items.has_text.any():
        raise DataError(f"dataset {data.name!r} has no item texts: every record of "
                        f"{item_text_path(folder, data.name)} builds an empty text")
    return items


def check_inputs(edit: str, items: ItemRecords, data) -> None:
    """One-line errors: a field-removal edit needs items with that field; text features must exist."""
    if edit in DROPPED_FIELD and len(items.eligible(edit)) == 0:
        fields = sorted({key for r in items.records for key in r} - {"itemID"})
        raise DataError(f"--edit {edit}: no item of dataset {data.name!r} has a {DROPPED_FIELD[edit]} "
                        f"(its records have {', '.join(fields) or 'no fields'})")
    if "text" not in data.features and not (Path(data.source) / "text_feat.npy").is_file():
        raise DataError(f"dataset {data.name!r} has no text features (text_feat.npy) to edit; extract them with "
                        f"`robustrec features extract --modalities text`")


def text_encoder_for(folder: str | Path, text_encoder: str | None, device: str | None = None):
    """(encoder, source): the sidecar's text encoder, or ``--text-encoder`` when there is none,
    on ``device`` (a device string; None: the encoder library's choice)."""
    from robustrec.features.sidecar import encoder_for, read_sidecar, sidecar_path

    entry = read_sidecar(folder)["modalities"].get("text")
    if isinstance(entry, dict) and "encoder" in entry:
        if text_encoder and _encoder_id(text_encoder) != entry["encoder"]:
            raise ConfigError(f"--text-encoder {text_encoder!r} differs from the text encoder recorded in "
                              f"{sidecar_path(folder)} ({entry['encoder']!r}); leave it out to use the recorded one")
        return encoder_for(folder, "text", device=device), f"{sidecar_path(folder)}"
    from robustrec.features.text import SentenceTextEncoder

    return (SentenceTextEncoder(text_encoder or DEFAULT_TEXT_ENCODER, device=device),
            "--text-encoder (no features.json entry)")


def _encoder_id(name: str) -> str:
    name = name.removeprefix("sentence-transformers:")
    if Path(name).is_dir():
        return f"sentence-transformers:{Path(name).resolve()}"
    return f"sentence-transformers:{name.removeprefix('sentence-transformers/')}"


def encoder_check(encoder, items: ItemRecords, clean: np.ndarray, n: int = ENCODER_CHECK_ITEMS) -> dict:
    """Cosines between stored rows and the re-encoded clean texts of ``n`` evenly spaced items with
    text; a one-line DataError when the lowest is not above 0.999."""
    with_text = np.flatnonzero(items.has_text)
    ids = with_text[np.unique(np.linspace(0, len(with_text) - 1, num=min(n, len(with_text))).astype(int))]
    fresh = np.asarray(encoder.encode([items.texts[i] for i in ids]), dtype=np.float64)
    if fresh.shape[1] != clean.shape[1]:
        raise ConfigError(f"text encoder {encoder.encoder_id} gives {fresh.shape[1]}-d vectors but the stored text "
                          f"features are {clean.shape[1]}-d; the stored features were not made by that encoder")
    old = clean[ids].astype(np.float64)
    cosine = (fresh * old).sum(axis=1) / np.maximum(np.linalg.norm(fresh, axis=1) * np.linalg.norm(old, axis=1), 1e-12)
    if cosine.min() <= ENCODER_CHECK_MIN_COSINE:
        raise DataError(f"the stored text features were not made by {encoder.encoder_id}: re-encoding {len(ids)} "
                        f"untouched items gives cosine {cosine.min():.4f} (need > {ENCODER_CHECK_MIN_COSINE}); "
                        f"pass the encoder that made text_feat.npy with --text-encoder")
    return {"items": [int(i) for i in ids], "min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean())}


def run_text_study(checkpoints, data, edit: str, rates: list[float], items: ItemRecords, encoder,
                   settings: StudySettings, callbacks=None, keywords: int = DEFAULT_KEYWORDS,
                   keyword_pool: int | None = None, encoder_source: str = "", text_cache=None) -> dict:
    """Clean + R edited evaluations per rate for each checkpoint (see ``robustrec.perturbations.text_edit``).

    ``encoder`` is used only when some checkpoint's model reads text at inference (``SentenceTextEncoder``
    loads lazily); models that do not are reported as unaffected by construction. ``text_cache`` (a
    ``TextEmbeddingCache`` of ``encoder``) serves texts encoded by earlier runs, the encoder check's
    included (cached rows are exactly what this encoder produced), and keeps the new ones.
    """
    from robustrec.features.text import ItemTextEmbeddings

    check_inputs(edit, items, data)
    probe = TextEdit(edit, 0.0, items, None, keywords, keyword_pool)
    affected = [c for c in checkpoints if probe.unaffected_reason(c.model) is None]
    embeddings, timed, check, encoder_id = None, None, None, None
    if affected:
        clean = np.asarray(data.features["text"], dtype=np.float32)
        timed = TimedEncoder(encoder)
        memo = MemoTextEncoder(timed, text_cache)
        check = encoder_check(memo, items, clean)
        embeddings = ItemTextEmbeddings(memo, list(items.texts), clean=clean)
        encoder_id = encoder.encoder_id
    perturbations = [TextEdit(edit, rate, items, embeddings, keywords, keyword_pool) for rate in rates]
    eligible = len(items.eligible(edit))
    extra = {"edit": edit, "file_tag": edit, "title": f"text: {edit}", "description": _description(edit, keywords, keyword_pool),
             "n_items": items.n_items, "items_with_text": int(items.has_text.sum()), "eligible_items": eligible,
             "selection": SELECTION, "edit_rule": EDIT_RULES[edit], "text_encoder": encoder_id,
             "encoder_source": encoder_source if affected else None, "encoder_check": check,
             "text_rule": "robustrec.data.content.build_item_text (title, brand, categories, description)"}
    if edit == "keywords":
        depth = keyword_pool or items.keyword_depth(keywords)
        extra.update(keywords=keywords, keyword_pool_size=keyword_pool,
                     keyword_pool=[[tag, count] for tag, count in items.ranking[:depth]])
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = extra
    if embeddings is not None:  # every trial's edited texts, encoded once in one length-sorted pass
        before = timed.texts
        seeds = trial_seeds(settings.seed, settings.repeats)
        edited = {t for p in perturbations for s in seeds for t in p.edited_texts(s).values()}
        embeddings.encoder.encode(sorted(edited))
        extra["reencoding"] = {"edited_texts_encoded": timed.texts - before, "seconds": round(timed.seconds, 3),
                               "rule": "only edited texts: the distinct edited texts of every trial, encoded once "
                                       "before evaluation and reused for every checkpoint"}
        write_error = memo.save()
        summary = memo.cache_summary()
        if summary is not None:
            summary["warning"] = "; ".join(w for w in (summary["warning"], write_error) if w) or None
        extra["text_cache"] = summary
    return run_study(checkpoints, data, perturbations, settings, callbacks)


def _description(edit: str, keywords: int, keyword_pool: int | None) -> str:
    if edit == "keywords":
        source = f"drawn from the top {keyword_pool}" if keyword_pool else "most frequent"
        return f"{keywords} {source} catalogue tags stuffed into chosen items' categories"
    if edit in DROPPED_FIELD:
        return f"{DROPPED_FIELD[edit]} field removed from chosen items"
    return "chosen items' texts swapped among them"
