"""The image-edit study: edited product photos, re-encoded, over checkpoints — one report per edit.

``edit_plan`` turns the command's flags into (edit, strength) pairs and rate levels (one-line
errors for bad values, before anything is loaded). ``load_photo_inputs`` checks the dataset folder:
photos, ``image_feat.npy`` and its ``features.json`` entry. ``prepare_rows`` rebuilds the recorded
encoder once and checks that it reproduces stored rows. ``run_image_study`` runs the kind-agnostic
runner for one edit.

One report per edit, not one report with every edit as a level: the runner, the tables, the MG gain
rows and the severity plot are keyed by the rate, so blur and jpeg at rate 0.1 would be two
indistinguishable "rate 0.1" rows on one curve; as separate reports each edit gets its own titled
table and severity curve, and ``compare`` groups reports of one edit together (by title).
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.perturbations.base import check_rate
from robustrec.perturbations.image import EditedPhotoRows, ImageEdit, ItemPhotos
from robustrec.perturbations.image_edits import EDITS, STRENGTHS, check_edit, check_strength, default_strength
from robustrec.perturbations.modality import model_unaffected_reason
from robustrec.studies.runner import StudySettings, run_study

DEFAULT_RATE = 0.1
#: untouched photos re-encoded once to check the encoder against the stored rows
ENCODER_CHECK_ITEMS = 3
ENCODER_CHECK_MIN_COSINE = 0.999
SELECTION = ("per trial, numpy default_rng(seed).permutation of the items with a readable photo (ascending ids); "
             "the first floor(rate*n + 0.5) are edited (nested across rates for one seed)")
REENCODING = ("only the edited photos are re-encoded, with the image encoder recorded in features.json; "
              "every other item keeps its clean row")
EDIT_RULES = {
    "blur": "Pillow ImageFilter.GaussianBlur(radius)",
    "jpeg": "re-saved as JPEG at quality q with Pillow and read back",
    "crop": "window keeping crop_fraction of the area (each side x sqrt), position from "
            "default_rng([seed, item, 2]), resized back to the original size (bicubic)",
    "color": "Pillow ImageEnhance.Brightness(f) then ImageEnhance.Color(f), f = brightness",
    "occlude": "mid-grey (128) rectangle of occlusion x area, the photo's aspect ratio, position from "
               "default_rng([seed, item, 4])",
    "swap": "chosen items exchange photos by a uniformly random derangement (same generator, rejection "
            "sampling); the donor photo is re-encoded unedited",
}


def edit_plan(edits: str, rate: str | None, strengths: dict[str, float | None],
              parse_levels) -> tuple[list[tuple[str, float | None]], list[float]]:
    """([(edit, strength)], rates) from the flags. ``strengths`` maps an edit to its flag's value
    (None: not given); a strength flag for an edit that is not asked for is an error."""
    names = [e.strip() for e in edits.split(",") if e.strip()]
    if not names:
        raise ConfigError(f"--edit needs at least one edit; valid edits: {', '.join(EDITS)}")
    for name in names:
        check_edit(name)
    names = list(dict.fromkeys(names))
    for edit, value in strengths.items():
        if value is not None and edit not in names:
            raise ConfigError(f"{STRENGTHS[edit][0]} applies to --edit {edit}, which is not among --edit {edits}")
    plan = [(e, check_strength(e, strengths.get(e) if strengths.get(e) is not None else default_strength(e)))
            for e in names]
    rates = [check_rate(v) for v in parse_levels(rate if rate is not None else str(DEFAULT_RATE), "--rate")]
    return plan, rates


def load_photo_inputs(data) -> tuple[ItemPhotos, dict]:
    """(items with a readable photo, the image entry of ``features.json``); one-line DataErrors for
    a dataset without a folder, photos, image features or an image sidecar entry."""
    from robustrec.data.content import load_item_images
    from robustrec.features.sidecar import read_sidecar, sidecar_path
    from robustrec.files import file_sha256

    if not data.source:
        raise DataError(f"dataset {data.name!r} has no folder on disk (image edits need its item photos)")
    folder = Path(data.source)
    try:
        sources = load_item_images(folder, data.name)
    except DataError as exc:
        raise DataError(f"image edits need item photos: {exc}") from None
    feat = folder / "image_feat.npy"
    if "image" not in data.features and not feat.is_file():
        raise DataError(f"dataset {data.name!r} has no image features ({feat} not found); build them with "
                        f"`robustrec features extract --dataset {data.name} --modalities image`")
    entry = read_sidecar(folder)["modalities"].get("image")
    if not isinstance(entry, dict) or "encoder" not in entry:
        raise DataError(f"{sidecar_path(folder)} records no image encoder: image edits need features made by "
                        f"`robustrec features extract` (which records the encoder to re-encode edited photos with)")
    if entry.get("feat_sha256") and feat.is_file() and file_sha256(feat) != entry["feat_sha256"]:
        raise DataError(f"{feat} is not the file {sidecar_path(folder)} describes (sha256 differs): it was "
                        f"replaced after `robustrec features extract`; extract the image features again")
    covered = data.coverage("image") if "image" in data.features else np.ones(data.n_items, dtype=bool)
    ids = tuple(i for i in sorted(sources) if 0 <= i < data.n_items and covered[i])
    if not ids:
        raise DataError(f"dataset {data.name!r}: no item has a readable photo (image edits need some)")
    return ItemPhotos(ids, {i: sources[i] for i in ids}), entry


def needs_encoder(checkpoints, plan, rates) -> bool:
    """Whether any trial will edit a photo some checkpoint's scores read."""
    affected = any(model_unaffected_reason(c.model, "image") is None for c in checkpoints)
    return affected and any(rate > 0 for rate in rates) and any(
        not ImageEdit(edit, 1.0, amount, ItemPhotos((), {})).is_identity for edit, amount in plan)


def encoder_check(encoder, photos: ItemPhotos, clean: np.ndarray, n: int = ENCODER_CHECK_ITEMS) -> dict:
    """Cosine between stored rows and re-encoded untouched photos of ``n`` evenly spaced items;
    a DataError unless every cosine > 0.999."""
    picks = sorted({photos.ids[int(j)] for j in np.linspace(0, len(photos.ids) - 1, num=min(n, len(photos.ids)))})
    fresh = np.asarray(encoder.encode([photos.load(i) for i in picks]), dtype=np.float64)
    old = clean[picks].astype(np.float64)
    if fresh.shape != old.shape:
        raise DataError(f"image encoder {encoder.encoder_id} gives {fresh.shape[1]}-d rows, image_feat.npy has "
                        f"{old.shape[1]}-d rows")
    cosine = (fresh * old).sum(axis=1) / np.maximum(np.linalg.norm(fresh, axis=1) * np.linalg.norm(old, axis=1),
                                                    1e-12)
    if not cosine.min() > ENCODER_CHECK_MIN_COSINE:
        raise DataError(f"re-encoding the untouched photos of items {picks} with {encoder.encoder_id} gives cosine "
                        f"{cosine.min():.4f} to their stored rows (need > {ENCODER_CHECK_MIN_COSINE}): the stored "
                        f"image features were not made by this encoder/preprocessing")
    return {"items": [int(i) for i in picks], "min_cosine": float(cosine.min()), "threshold": ENCODER_CHECK_MIN_COSINE}


def prepare_rows(data, photos: ItemPhotos, encoder=None, device: str | None = None) -> tuple[EditedPhotoRows, dict]:
    """The recorded encoder (``encoder_for``: a mismatch is a ConfigError) wrapped to memoise edited
    rows, and the result of ``encoder_check``. ``encoder`` replaces the recorded one (tests)."""
    from robustrec.features.sidecar import encoder_for

    if encoder is None:
        encoder = encoder_for(data.source, "image", device=device)
    return EditedPhotoRows(encoder, photos), encoder_check(encoder, photos, data.features["image"])


def title(edit: str, amount) -> str:
    """Table heading, e.g. "image: blur (radius 4)"."""
    if edit == "swap":
        return "image: swap (photos swapped between items)"
    detail = {"blur": "Gaussian blur, radius {:g}", "jpeg": "JPEG quality {}", "crop": "random crop keeping {:g} of "
              "the area", "color": "brightness and colour x{:g}", "occlude": "grey patch over {:g} of the area"}[edit]
    return f"image: {edit} ({detail.format(amount)})"


def run_image_study(checkpoints, data, edit: str, amount, rates: list[float], photos: ItemPhotos,
                    rows: EditedPhotoRows | None, check: dict | None, entry: dict, settings: StudySettings,
                    callbacks=None) -> dict:
    """Clean + R edited evaluations per rate for each checkpoint, for one edit (see ``ImageEdit``)."""
    perturbations = [ImageEdit(edit, rate, amount, photos, rows) for rate in rates]
    probe = perturbations[0]
    strength = {probe.strength_key: probe.amount} if probe.strength_key else {}
    settings = dataclasses.replace(settings)  # a copy: the caller's settings stay as they were
    settings.extra_settings = {
        "edit": edit, "file_tag": edit, **strength, "title": title(edit, probe.amount),
        "description": f"edited photos re-encoded with {entry['encoder']}, {len(photos.ids)} items with a photo",
        "edit_rule": EDIT_RULES[edit], "selection": SELECTION, "reencoding": REENCODING,
        "image_encoder": entry["encoder"], "image_encoder_version": entry.get("encoder_version"),
        "encoder_check": check, "items_with_photo": len(photos.ids), "n_items": data.n_items,
    }
    return run_study(checkpoints, data, perturbations, settings, callbacks)
