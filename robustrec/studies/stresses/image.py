"""The ``image`` kind: item photos edited with Pillow and re-encoded (docs/stress/image.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from robustrec.studies.stresses.base import Repeats, StressOutcome, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class ImageStress(StressSpec):
    """Edit item photos (Pillow) at RATE, re-encode only those with the recorded encoder, re-evaluate R times.

    Needs image features made by `robustrec features extract` (features.json names the encoder).
    Items: the first ⌊rate·n + ½⌋ of a seeded permutation of the items with a readable photo; crop
    window and patch position are seeded per item; swap is a seeded derangement among the chosen
    items. Edited rows are encoded once per trial and reused for every checkpoint. Models that do
    not use image features at inference are reported as unaffected by construction.
    """

    kind: ClassVar[str] = "image"
    repeats: ClassVar[Repeats] = Repeats(5, "Draws per rate.")
    edit: str = option("blur", "Photo edits, comma list, one report each: blur, jpeg, crop, color, occlude, swap.")
    rate: str | None = option(None, "Share of the items with a photo whose photo is edited, or a comma list "
                              "(default 0.1).")
    radius: float | None = option(None, "blur: Gaussian blur radius in pixels, 0..100 (default 4; 0 = none).")
    quality: int | None = option(None, "jpeg: JPEG quality 1..95 (default 10).")
    crop_fraction: float | None = option(None, "crop: share of the photo's area kept by a random window, resized "
                                         "back; (0, 1] (default 0.5; 1 = none).")
    brightness: float | None = option(None, "color: factor of ImageEnhance Brightness and Color, 0..4 (default 0.5; "
                                      "1 = none).")
    occlusion: float | None = option(None, "occlude: share of the area under a grey patch at a random position, "
                                     "0..1 (default 0.25; 0 = none).")

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

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        """Blur (radius 4) at rate ``strength`` on seeded 16×16 noise photos held in memory, one
        per item, re-encoded by the stand-in (each photo given to it as the hash of its pixels)."""
        import hashlib

        import numpy as np

        from robustrec.perturbations.image import EditedPhotoRows, ImageEdit, ItemPhotos

        class InMemoryPhotos(ItemPhotos):
            def load(self, item: int):
                from PIL import Image

                pixels = np.random.default_rng(int(item)).integers(0, 256, (16, 16, 3), dtype=np.uint8)
                return Image.fromarray(pixels)

        class ByPixels:
            def __init__(self, inner) -> None:
                self.inner, self.dim, self.encoder_id = inner, inner.dim, inner.encoder_id

            def encode(self, images):
                return self.inner.encode([hashlib.sha256(image.tobytes()).hexdigest() for image in images])

        ids = tuple(range(data.n_items))
        photos = InMemoryPhotos(ids, {i: f"memory:{i}" for i in ids})
        stand_in = ByPixels(encoder("image", data.features["image"].shape[1]))
        return ImageEdit("blur", strength, 4.0, photos, EditedPhotoRows(stand_in, photos))

    def stress_modalities(self) -> list[str]:
        return ["image"]
