"""The caption-injection study: item texts + cached captions + text encoder, run over checkpoints.

Inputs come from the dataset folder (``<data-dir>/<name>/``): item texts from
``<name>.items.jsonl`` (``robustrec.data.content``) and captions from a caption cache written by
``robustrec captions generate`` (default ``captions/<captioner id>.json`` in that folder), whose
header must name the captioner, the dataset and its fingerprint. The built-in synthetic dataset
ships a reference cache (captioner ``synthetic-reference``); other datasets default to BLIP-2.
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.perturbations.base import trial_seeds
from robustrec.perturbations.caption import CaptionInjection, MemoTextEncoder
from robustrec.studies.runner import StudySettings, run_study

DEFAULT_CAPTIONER = "blip2:Salesforce/blip2-opt-2.7b"
SYNTHETIC_CAPTIONER = "synthetic-reference"
#: clean texts re-encoded once to check that the encoder is the one that made text_feat.npy
ENCODER_CHECK_ITEMS = 16
ENCODER_CHECK_WARN = 0.95


def default_captioner(dataset: str) -> str:
    """``synthetic-reference`` for the built-in synthetic dataset, BLIP-2 2.7B otherwise."""
    return SYNTHETIC_CAPTIONER if dataset == "synthetic" else DEFAULT_CAPTIONER


@dataclass
class CaptionInputs:
    """What caption injection needs from a dataset folder."""

    texts: list[str]
    captions: dict[int, str]
    captioner: str
    cache_path: Path

    @property
    def without_caption(self) -> int:
        return sum(1 for i in range(len(self.texts)) if not self.captions.get(i, "").strip())


def dataset_folder(data) -> Path:
    if not data.source:
        raise DataError(f"dataset {data.name!r} has no folder on disk (item texts and captions live there)")
    return Path(data.source)


def load_caption_inputs(data, captioner: str, captions_path: str | Path | None = None) -> CaptionInputs:
    """Item texts and the caption cache of ``data``'s folder, validated against ``data``."""
    from robustrec.captioning.cache import CaptionCache, default_cache_path
    from robustrec.data.content import item_text_path, load_item_texts

    folder = dataset_folder(data)
    if not item_text_path(folder, data.name).is_file():
        raise DataError(f"dataset {data.name!r} has no item text: {item_text_path(folder, data.name)} not found "
                        f"(one JSON object per item: itemID, title, brand, categories, description)")
    texts = load_item_texts(folder, data.name, data.n_items)
    path = Path(captions_path) if captions_path else default_cache_path(folder.parent, data.name, captioner)
    if not path.is_file():
        raise DataError(_missing_cache_message(data, folder, captioner, path))
    cache = CaptionCache.load(path, captioner_id=captioner, dataset=data.name, fingerprint=data.fingerprint())
    return CaptionInputs([texts[i] for i in range(data.n_items)], cache.captions, captioner, path)


def _missing_cache_message(data, folder: Path, captioner: str, path: Path) -> str:
    from robustrec.data.content import load_item_images

    try:
        load_item_images(folder, data.name)
    except DataError:
        return (f"dataset {data.name!r} has no caption cache ({path} not found) and no item images "
                f"(neither {folder / 'images'}/ nor {folder / (data.name + '_url.csv')}); add images, then run "
                f"`robustrec captions generate --dataset {data.name} --data-dir {folder.parent}`")
    return (f"no captions by {captioner!r} for dataset {data.name!r}: {path} not found; run "
            f"`robustrec captions generate --dataset {data.name} --data-dir {folder.parent}` "
            f"or pass --captions PATH and --captioner ID")


def make_text_embeddings(encoder, texts: list[str], clean: np.ndarray, cache=None):
    """``ItemTextEmbeddings`` over ``clean`` (the model's text features) after a dimension check;
    ``cache`` (a ``TextEmbeddingCache``) serves texts encoded by earlier runs."""
    from robustrec.features.text import ItemTextEmbeddings

    memo = MemoTextEncoder(encoder, cache)
    if memo.dim != clean.shape[1]:
        raise ConfigError(f"text encoder {encoder.encoder_id} gives {memo.dim}-d vectors but the models' text "
                          f"features are {clean.shape[1]}-d; use the encoder that made text_feat.npy (--text-encoder)")
    return ItemTextEmbeddings(memo, texts, clean=clean)


def encoder_check_ids(n_texts: int, n: int = ENCODER_CHECK_ITEMS) -> np.ndarray:
    """The ``n`` evenly spaced item ids whose clean texts the encoder check re-encodes."""
    return np.unique(np.linspace(0, n_texts - 1, num=min(n, n_texts)).astype(int))


def encoder_check(encoder, texts: list[str], clean: np.ndarray, n: int = ENCODER_CHECK_ITEMS) -> dict:
    """Mean cosine between the clean features and the re-encoded clean texts of ``n`` items
    (evenly spaced ids): ≈ 1 when ``encoder`` is the one that made the clean features.

    Rows served by the on-disk text cache count as re-encoded: the cache is keyed by the encoder's
    exact identity (model files' hash, backend, library versions, device), so they are what this
    encoder produced for these texts.
    """
    ids = encoder_check_ids(len(texts), n)
    fresh = encoder.encode([texts[i] for i in ids]).astype(np.float64)
    old = clean[ids].astype(np.float64)
    norms = np.linalg.norm(fresh, axis=1) * np.linalg.norm(old, axis=1)
    cosine = (fresh * old).sum(axis=1) / np.maximum(norms, 1e-12)
    return {"items": int(len(ids)), "mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min())}


def run_caption_study(checkpoints, data, rates: list[float], position: str, inputs: CaptionInputs,
                      encoder, settings: StudySettings, callbacks=None, text_cache=None) -> dict:
    """Clean + R caption-injected evaluations per rate for each checkpoint (see ``CaptionInjection``).

    ``encoder`` is used only when some checkpoint consumes text at inference; models that do not
    are reported as unaffected by construction. The encoder-check texts and the distinct edited
    texts of every trial are encoded once, in one pass, before evaluation; ``text_cache`` (a
    ``TextEmbeddingCache`` of ``encoder``) serves those encoded by earlier runs, and gets the new
    ones — when it holds them all, a lazily loading encoder (``SentenceTextEncoder``) never loads.
    """
    probe = CaptionInjection(0.0, {}, inputs.texts, None, position, inputs.captioner, "-")
    affected = [c for c in checkpoints if probe.unaffected_reason(c.model) is None]
    check, embeddings, encoder_id = None, None, getattr(encoder, "encoder_id", str(encoder))
    if affected:
        clean = data.features["text"]
        embeddings = make_text_embeddings(encoder, inputs.texts, clean, text_cache)
    perturbations = [CaptionInjection(rate, inputs.captions, inputs.texts, embeddings, position,
                                      inputs.captioner, encoder_id) for rate in rates]
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = extra = {
        "title": "caption", "description": f"captions {inputs.captioner}, position {position}",
        "eligible_items": len(inputs.texts) - inputs.without_caption,
        "position": position, "captioner": inputs.captioner, "captions": str(inputs.cache_path),
        "text_encoder": encoder_id, "items_with_caption": len(inputs.texts) - inputs.without_caption,
        "items_without_caption": inputs.without_caption, "encoder_check": check,
        "selection": "per trial, numpy default_rng(seed): item drawn when U[0,1) < rate; "
                     "items without a caption are never changed",
    }
    if embeddings is not None:
        memo = embeddings.encoder
        seeds = trial_seeds(settings.seed, settings.repeats)
        edited = {t for p in perturbations for s in seeds for t in p.edited_texts(s).values()}
        checked = {inputs.texts[i] for i in encoder_check_ids(len(inputs.texts))}
        memo.encode(sorted(edited | checked))  # one length-sorted pass (the encoder sorts by length)
        extra["encoder_check"] = encoder_check(memo, inputs.texts, clean)
        write_error = memo.save()
        extra["reencoding"] = {"distinct_texts": len(edited | checked), "texts_encoded": memo.encoded,
                               "rule": "only edited texts (and the encoder check's clean texts): every trial's "
                                       "distinct edited texts, encoded once before evaluation and reused for "
                                       "every checkpoint"}
        summary = memo.cache_summary()
        if summary is not None:
            summary["warning"] = "; ".join(w for w in (summary["warning"], write_error) if w) or None
        extra["text_cache"] = summary
    return run_study(checkpoints, data, perturbations, settings, callbacks)
