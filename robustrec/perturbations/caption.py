"""Caption injection (the Mirror Gradient paper's information-adjustment risk, docs/design.md §2).

Each item's text gets, with probability ``rate``, a caption of the item's image inserted into it
(the paper: BLIP-2 captions, rate 0.01, REC@5). The edited texts are re-encoded with the encoder
that made the clean text features (MMRec: all-MiniLM-L6-v2 on title + brand + categories +
description), and the model is re-scored with the new text features; image features are unchanged.

Where the caption goes (``position``):

* ``random-sentence`` (default) — at a sentence boundary of the text chosen uniformly at random
  (before the first sentence, between two, or after the last). The paper says the caption is
  *inserted into* the item text without fixing a place; a random boundary inserts it into the text
  while keeping every original sentence intact.
* ``append`` — after the last sentence; ``prepend`` — before the first.

Sentences are split after ``.``, ``!`` or ``?`` followed by white space; the caption becomes a
sentence of its own, joined the way ``build_item_text`` joins fields (``". "``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation, check_rate, set_text_features

POSITIONS = ("random-sentence", "append", "prepend")
DEFAULT_POSITION = "random-sentence"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def check_position(position: str) -> str:
    if position not in POSITIONS:
        raise ConfigError(f"--position must be one of {', '.join(POSITIONS)}, got {position!r}")
    return position


def join_sentences(left: str, right: str) -> str:
    """``left`` and ``right`` as consecutive sentences (". " unless ``left`` already ends one)."""
    left, right = left.strip(), right.strip()
    if not left or not right:
        return left or right
    return f"{left} {right}" if left[-1] in ".!?" else f"{left}. {right}"


def insert_caption(text: str, caption: str, slot: float | None) -> str:
    """``text`` with ``caption`` inserted as a sentence.

    ``slot`` in [0, 1) picks the sentence boundary (k sentences have k + 1 boundaries); ``None``
    appends. ``0.0`` prepends.
    """
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s]
    boundary = len(sentences) if slot is None else min(int(slot * (len(sentences) + 1)), len(sentences))
    before, after = " ".join(sentences[:boundary]), " ".join(sentences[boundary:])
    return join_sentences(join_sentences(before, caption), after)


class MemoTextEncoder:
    """A text encoder that remembers every text it encoded (trials of several checkpoints share
    item draws, so their edited texts are encoded once), optionally backed by an on-disk
    ``TextEmbeddingCache``: texts found there are not encoded, and the wrapped encoder is not even
    loaded when every text asked for is cached (``dim`` then comes from the cached rows)."""

    def __init__(self, encoder, cache=None) -> None:
        self.encoder = encoder
        self.cache = cache
        self._rows: dict[str, np.ndarray] = {}
        self.encoded = 0  # texts actually sent to the wrapped encoder
        self.reused = 0  # texts found in the on-disk cache

    @property
    def dim(self) -> int:
        cached = None if self.cache is None else self.cache.dim
        return self.encoder.dim if cached is None else cached

    @property
    def encoder_id(self) -> str:
        return self.encoder.encoder_id

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if self.cache is not None and missing:
            for text in missing:
                row = self.cache.get(text)
                if row is not None:
                    self._rows[text] = row
                    self.reused += 1
            missing = [t for t in missing if t not in self._rows]
        if missing:
            for text, row in zip(missing, self.encoder.encode(missing)):
                self._rows[text] = np.asarray(row, dtype=np.float32)
                if self.cache is not None:
                    self.cache.put(text, self._rows[text])
            self.encoded += len(missing)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._rows[t] for t in texts])

    def save(self) -> str | None:
        """Write new rows to the on-disk cache; a one-line reason when that failed."""
        return None if self.cache is None else self.cache.save()

    def cache_summary(self) -> dict | None:
        """What the on-disk cache did, for the report (None without one)."""
        if self.cache is None:
            return None
        inner = self.encoder
        while not hasattr(inner, "backend") and hasattr(inner, "encoder"):  # through wrappers (TimedEncoder)
            inner = inner.encoder
        return {"file": str(self.cache.path), "rows_reused": self.reused, "texts_encoded": self.encoded,
                "encoder_loaded": getattr(inner, "backend", "eager") is not None,
                "replaced_stale_file": self.cache.stale, "warning": self.cache.warning}


class CaptionInjection(Perturbation):
    """Insert cached image captions into item texts at ``rate``, re-encode, give the model new text features.

    ``captions``: item id -> caption (items without one, or with an empty one, are never chosen);
    ``texts``: the clean item texts (index = item id); ``embeddings``: an
    ``ItemTextEmbeddings`` whose clean rows are the model's text features — only edited items are
    re-encoded. Per trial, every item draws u ~ U[0, 1) from ``numpy.random.default_rng(seed)``
    and is drawn when u < rate; a second uniform per item picks the sentence boundary. Drawing for
    every item, captioned or not, means a seed picks the same items whatever the cache holds.
    """

    kind = "caption"
    strength_name = "rate"

    def __init__(self, rate: float, captions: Mapping[int, str], texts: Sequence[str], embeddings,
                 position: str = DEFAULT_POSITION, captioner: str = "", text_encoder: str = "") -> None:
        self.rate = check_rate(rate)
        self.position = check_position(position)
        self.texts = list(texts)
        n_items = len(self.texts)
        self.captions = {int(i): c.strip() for i, c in captions.items() if 0 <= int(i) < n_items and c.strip()}
        self.has_caption = np.zeros(n_items, dtype=bool)
        self.has_caption[list(self.captions)] = True
        self.embeddings = embeddings
        self.captioner = captioner
        self.text_encoder = text_encoder or getattr(embeddings.encoder, "encoder_id", "")

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        return {"rate": self.rate, "position": self.position, "captioner": self.captioner,
                "text_encoder": self.text_encoder}

    def unaffected_reason(self, model) -> str | None:
        """Why caption injection cannot change ``model``'s scores, or None when it can."""
        if not getattr(model, "features_at_inference", False):
            return "inference does not use raw item features"
        if "text" not in getattr(model, "feature_names", ()):
            return "model does not consume text features"
        return None

    def draw(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(chosen item ids, their boundary slots in [0, 1), ids drawn but without a caption)."""
        rng = np.random.default_rng(seed)
        drawn = rng.random(len(self.texts)) < self.rate
        slots = rng.random(len(self.texts))
        chosen = np.flatnonzero(drawn & self.has_caption)
        return chosen, slots[chosen], np.flatnonzero(drawn & ~self.has_caption)

    def edited_texts(self, seed: int) -> dict[int, str]:
        """Item id -> edited text of the items this seed chooses (empty at rate 0)."""
        if self.rate == 0:
            return {}
        chosen, slots, _ = self.draw(seed)
        if self.position == "random-sentence":
            places = slots.tolist()
        else:
            places = [None if self.position == "append" else 0.0] * len(chosen)
        return {int(i): insert_caption(self.texts[i], self.captions[int(i)], place)
                for i, place in zip(chosen, places)}

    def trial_record(self, seed: int) -> dict[str, int]:
        if self.rate == 0:
            return {"changed_items": 0, "drawn_without_caption": 0}
        chosen, _, missing = self.draw(seed)
        return {"changed_items": int(len(chosen)), "drawn_without_caption": int(len(missing))}

    def changed_items(self, seed: int) -> np.ndarray:
        return np.zeros(0, dtype=np.int64) if self.rate == 0 else np.sort(self.draw(seed)[0])

    def _perturb_copy(self, model, seed: int) -> None:
        if self.unaffected_reason(model) is not None:
            return
        set_text_features(model, self.embeddings.with_texts(self.edited_texts(seed))[0])
