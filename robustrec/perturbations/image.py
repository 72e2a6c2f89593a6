"""Image edits on real product photos (docs/design.md §2, content edits): edit, re-encode, re-score.

``ImageEdit`` (kind ``"image"``, strength = ``rate``) edits the photos of a seeded share of the
items that have a readable photo with one Pillow edit (``robustrec.perturbations.image_edits``),
re-encodes **only those photos** with the image encoder that made the clean ``image_feat.npy``
(rebuilt from ``features.json`` by ``robustrec.features.sidecar.encoder_for``), and gives the model
copy the new rows for the edited items and the clean rows for every other item, through
``set_item_features`` (which rebuilds kNN graphs and caches). Clean buffers are never written to.

Which items: a trial draws one permutation of the n items with a readable photo (ascending ids)
from ``numpy.random.default_rng(seed)`` and takes its first m = ⌊rate·n + ½⌋ entries (as
``perturb modality``: exact share, nested across rates for one seed). ``swap`` then gives each
chosen item the photo of another chosen item by a derangement drawn from the same generator
(nothing changes when fewer than 2 are chosen). ``crop`` and ``occlude`` draw their window from
``default_rng([seed, item, edit index])``: an edited photo is a pure function of (trial seed,
item, edit, strength), so ``EditedPhotoRows`` encodes it once and reuses the row for every
checkpoint (and every rate; edits without randomness also across seeds).

Rate 0, or a strength at which the edit changes nothing (radius 0, crop fraction 1, brightness 1,
occlusion 0), is the identity and encodes nothing. A model is unaffected by construction when it
uses no item features, does not use the image modality, or its scores ignore features at inference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.perturbations.base import Perturbation
from robustrec.perturbations.base import check_rate
from robustrec.perturbations.image_edits import (EDITS, STRENGTHS, check_strength, derangement, edit_photo,
                                                 leaves_unchanged)
from robustrec.perturbations.modality import RECORDED_ITEMS, model_unaffected_reason

#: photos edited and sent to the encoder at once
ENCODE_BATCH = 32


@dataclass(frozen=True)
class ItemPhotos:
    """The items with a readable photo (ascending ids) and where each photo is (path or URL)."""

    ids: tuple[int, ...]
    sources: Mapping[int, str] = field(repr=False)

    def load(self, item: int):
        """The RGB photo of ``item`` (DataError if it cannot be read now)."""
        from robustrec.features.image_loading import ImageSkipped, load_image

        try:
            return load_image(self.sources[item])
        except ImageSkipped as exc:
            raise DataError(f"photo of item {item} ({self.sources[item]}) cannot be read: {exc}") from None


def item_rng(seed: int, item: int, edit: str) -> np.random.Generator:
    """The generator of one item's edit in one trial (crop window, patch position)."""
    return np.random.default_rng([int(seed), int(item), EDITS.index(edit)])


class EditedPhotoRows:
    """Edits and re-encodes photos with ``encoder``, remembering every row it made.

    A row is keyed by what determines the edited photo: (edit, strength, seed, item) for crop and
    occlude, (edit, strength, item) for blur, jpeg and color, (swap, source item) for swap.
    ``encoded`` counts photos sent to the encoder, ``encode_calls`` the calls to ``encode``.
    """

    def __init__(self, encoder, photos: ItemPhotos, batch_size: int = ENCODE_BATCH) -> None:
        self.encoder = encoder
        self.photos = photos
        self.batch_size = batch_size
        self._rows: dict[tuple, np.ndarray] = {}
        self.encoded = 0
        self.encode_calls = 0

    @property
    def encoder_id(self) -> str:
        return self.encoder.encoder_id

    @staticmethod
    def key(edit: str, strength, seed: int, item: int, source: int) -> tuple:
        if edit == "swap":
            return ("swap", int(source))
        if edit in ("crop", "occlude"):
            return (edit, strength, int(seed), int(item))
        return (edit, strength, int(item))

    def rows(self, edit: str, strength, seed: int, targets: Sequence[int], sources: Sequence[int]) -> np.ndarray:
        """Rows (len(targets), dim) of the edited photos of ``targets`` (``sources``: swap's donors)."""
        keys = [self.key(edit, strength, seed, t, s) for t, s in zip(targets, sources)]
        pending: dict[tuple, tuple[int, int]] = {}
        for k, t, s in zip(keys, targets, sources):
            if k not in self._rows:
                pending.setdefault(k, (int(t), int(s)))
        todo = [(k, t, s) for k, (t, s) in pending.items()]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            images = [self.photos.load(s) if edit == "swap" else
                      edit_photo(self.photos.load(t), edit, strength, item_rng(seed, t, edit)) for _, t, s in batch]
            rows = np.asarray(self.encoder.encode(images), dtype=np.float32)
            self.encode_calls += 1
            self.encoded += len(batch)
            if rows.shape != (len(batch), self.encoder.dim) or not np.isfinite(rows).all():
                raise DataError(f"image encoder {self.encoder_id} returned {rows.shape} rows with NaN/inf or "
                                f"of the wrong shape for {len(batch)} photos")
            for (k, _, _), row in zip(batch, rows):
                self._rows[k] = row
        if not keys:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.stack([self._rows[k] for k in keys])


@dataclass(frozen=True)
class ImageEdit(Perturbation):
    """A seeded share ``rate`` of items with a photo get ``edit`` at ``amount``; re-encoded (module doc).

    ``amount`` is the edit's strength (radius, quality, crop fraction, brightness factor, occluded
    share; None for swap). ``rows`` may be None only when nothing needs encoding.
    """

    edit: str
    rate: float
    amount: float | None
    photos: ItemPhotos = field(repr=False, compare=False)
    rows: EditedPhotoRows | None = field(default=None, repr=False, compare=False)

    kind: ClassVar[str] = "image"
    strength_name: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        check_rate(self.rate)
        object.__setattr__(self, "amount", check_strength(self.edit, self.amount))

    @property
    def strength(self) -> float:
        return self.rate

    @property
    def strength_key(self) -> str | None:
        """The edit strength's name in ``parameters()`` (e.g. "radius"), None for swap."""
        return None if self.edit == "swap" else STRENGTHS[self.edit][0].removeprefix("--").replace("-", "_")

    @property
    def is_identity(self) -> bool:
        return self.rate == 0 or leaves_unchanged(self.edit, self.amount)

    def parameters(self) -> dict[str, object]:
        out: dict[str, object] = {"edit": self.edit, "rate": self.rate}
        if self.strength_key:
            out[self.strength_key] = self.amount
        if self.rows is not None:
            out["image_encoder"] = self.rows.encoder_id
        return out

    def unaffected_reason(self, model) -> str | None:
        return model_unaffected_reason(model, "image")

    def assignment(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(targets, sources): item ``targets[j]`` gets the edited photo (swap: the photo of
        ``sources[j]``; other edits: its own, ``sources`` = ``targets``). Empty at identity."""
        ids = np.asarray(self.photos.ids, dtype=np.int64)
        if self.is_identity:
            return ids[:0], ids[:0]
        rng = np.random.default_rng(seed)
        count = min(len(ids), int(math.floor(self.rate * len(ids) + 0.5)))
        targets = ids[rng.permutation(len(ids))[:count]]
        if self.edit != "swap":
            return targets, targets
        if count < 2:
            return targets[:0], targets[:0]
        return targets, targets[derangement(rng, count)]

    def changed(self, seed: int) -> np.ndarray:
        """Ids of the items whose row trial ``seed`` changes, ascending."""
        return np.sort(self.assignment(seed)[0])

    def changed_items(self, seed: int) -> np.ndarray:
        return self.changed(seed)

    def trial_record(self, seed: int) -> dict[str, object]:
        items = self.changed(seed)
        return {"changed_items": int(len(items)), "items": [int(i) for i in items[:RECORDED_ITEMS]]}

    def _perturb_copy(self, model, seed: int) -> None:
        if self.unaffected_reason(model) is not None or self.is_identity:
            return
        targets, sources = self.assignment(seed)
        if len(targets) == 0:
            return
        if self.rows is None:
            raise ConfigError("image edits need the image encoder that made image_feat.npy (none was given)")
        current = model.features()
        clean = current["image"]
        if clean.shape[1] != self.rows.encoder.dim:
            raise DataError(f"image features of {model.name} are {clean.shape[1]}-d, the image encoder "
                            f"{self.rows.encoder_id} gives {self.rows.encoder.dim}-d rows")
        new = clean.detach().cpu().numpy().copy()  # a new array: the clean buffer is never written
        new[targets] = self.rows.rows(self.edit, self.amount, seed, targets, sources)
        model.set_item_features({**current, "image": new})
