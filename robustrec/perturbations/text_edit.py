"""Text edits on real item records (the Mirror Gradient paper's information-adjustment risk, Figure 1).

Merchants edit item text: they stuff popular keywords into it, drop fields, or put up another
item's text. ``TextEdit`` (kind ``"text"``) edits the raw item records of ``<name>.items.jsonl``,
rebuilds each edited text with ``build_item_text`` (the rule that made the clean ``text_feat.npy``),
re-encodes only the edited texts with the encoder that made the clean features, and gives the model
copy the new text rows through ``set_item_features``. Caption injection (``perturb caption``) is one
more text edit of this kind of risk, kept as its own command.

Which items: only *eligible* items can be chosen — items whose text is non-empty, and for
``drop-description`` / ``drop-categories`` items that have that field. A trial draws one permutation
of the eligible ids from ``numpy.random.default_rng(seed)`` and takes its first ⌊rate·n_eligible + ½⌋
entries (an exact share, nested across rates for one seed).

Edits:

* ``keywords`` (keyword stuffing): the catalogue's keyword ranking counts, for each tag string of
  the ``categories`` field (case-insensitive, stripped), the number of items carrying it; ties go to
  the string order. Each chosen item gets ``keywords`` = k tags put in front of its own categories,
  none of which it already has (case-insensitive): the k highest-ranked ones (deterministic), or, with
  ``keyword_pool`` = N, k drawn without replacement from the top N it does not have, from
  ``numpy.random.default_rng([seed, item id])`` (so an item's draw does not depend on which other
  items were chosen). A tag is inserted in its most frequent spelling (ties: string order). In
  front, not at the end: the encoder truncates long texts (MiniLM: 256 tokens), and many lfm2k items
  carry hundreds of tags, so tags appended at the end would often never reach the encoder.
* ``drop-description`` / ``drop-categories`` (field removal): the field is removed, the other fields
  kept. An item whose text was only that field gets the empty text, which is re-encoded as the
  encoder encodes ``""`` (MiniLM: the mean-pooled [CLS] [SEP] tokens) — unlike ``features extract``,
  which treats an item without text as missing and fills its row.
* ``swap``: the chosen items exchange their whole records by a uniformly random derangement
  (rejection sampling with the trial's generator), as ``perturb modality --swap`` exchanges rows.

``changed_items`` counts the chosen items whose text actually differs from the clean one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from robustrec.data.content import _flatten_categories, build_item_text
from robustrec.errors import ConfigError
from robustrec.perturbations.base import Perturbation
from robustrec.perturbations.base import check_rate, set_text_features
from robustrec.perturbations.modality import RECORDED_ITEMS, model_unaffected_reason

EDITS = ("keywords", "drop-description", "drop-categories", "swap")
DEFAULT_KEYWORDS = 3
#: the record field each field-removal edit drops
DROPPED_FIELD = {"drop-description": "description", "drop-categories": "categories"}


def check_edit(edit: str) -> str:
    if edit not in EDITS:
        raise ConfigError(f"unknown --edit {edit!r}; choose one of {', '.join(EDITS)}")
    return edit


def check_keywords(keywords: int, keyword_pool: int | None) -> tuple[int, int | None]:
    if keywords < 1:
        raise ConfigError(f"--keywords must be >= 1, got {keywords}")
    if keyword_pool is not None and keyword_pool < keywords:
        raise ConfigError(f"--keyword-pool must be >= --keywords ({keywords}), got {keyword_pool}")
    return int(keywords), None if keyword_pool is None else int(keyword_pool)


def _key(tag: str) -> str:
    return tag.strip().lower()


def record_tags(record: Mapping[str, Any]) -> list[str]:
    """The item's categories/tags as a flat list of stripped, non-empty strings."""
    return [t.strip() for t in _flatten_categories(record.get("categories")) if t.strip()]


def keyword_ranking(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """(tag, number of items carrying it), most frequent first, ties by the lower-cased string.

    Tags compare case-insensitively; each is shown in its most frequent spelling (ties: string order).
    """
    items: Counter = Counter()
    spellings: dict[str, Counter] = {}
    for record in records:
        keys = {}
        for tag in record_tags(record):
            keys.setdefault(_key(tag), tag)
            spellings.setdefault(_key(tag), Counter())[tag] += 1
        items.update(keys.keys())
    ranked = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(min(spellings[key].items(), key=lambda sc: (-sc[1], sc[0]))[0], count) for key, count in ranked]


def stuff_keywords(record: Mapping[str, Any], ranking: Sequence[str], k: int, pool: int | None = None,
                   rng: np.random.Generator | None = None) -> dict[str, Any]:
    """A copy of ``record`` with k ranked tags it lacks put in front of its categories (see module doc)."""
    own = {_key(t) for t in record_tags(record)}
    if pool is None:
        new = [tag for tag in ranking if _key(tag) not in own][:k]
    else:
        candidates = [tag for tag in ranking[:pool] if _key(tag) not in own]
        picks = rng.choice(len(candidates), size=min(k, len(candidates)), replace=False) if candidates else []
        new = [candidates[i] for i in picks]
    return {**record, "categories": new + record_tags(record)}


def drop_field(record: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A copy of ``record`` without the field ``name``."""
    return {key: value for key, value in record.items() if key != name}


def derangement(rng: np.random.Generator, count: int) -> np.ndarray:
    """A uniformly random permutation of range(count) without fixed points (count >= 2)."""
    while True:
        order = rng.permutation(count)
        if not np.any(order == np.arange(count)):
            return order


class ItemRecords:
    """The clean item records of a dataset (index = item id, ``{}`` for items without one), their
    texts and the keyword ranking. Read-only: edits return new records."""

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.records: tuple[Mapping[str, Any], ...] = tuple(dict(r) for r in records)
        self.texts: tuple[str, ...] = tuple(build_item_text(r) for r in self.records)
        self.has_text = np.array([bool(t) for t in self.texts], dtype=bool)
        self.ranking: tuple[tuple[str, int], ...] = tuple(keyword_ranking([r for r, t in zip(self.records, self.texts)
                                                                           if t]))
        self._tags = tuple(tag for tag, _ in self.ranking)

    @classmethod
    def from_mapping(cls, records: Mapping[int, Mapping[str, Any]], n_items: int) -> "ItemRecords":
        return cls([records.get(i, {}) for i in range(n_items)])

    @property
    def n_items(self) -> int:
        return len(self.records)

    def eligible(self, edit: str) -> np.ndarray:
        """Ids of the items ``edit`` may choose, ascending."""
        mask = self.has_text.copy()
        if edit in DROPPED_FIELD:
            name = DROPPED_FIELD[edit]
            mask &= np.array([_has_field(r, name) for r in self.records], dtype=bool)
        return np.flatnonzero(mask)

    def keyword_depth(self, k: int) -> int:
        """How far down the ranking the deterministic rule reaches for any item with text."""
        depth = 0
        for record, text in zip(self.records, self.texts):
            if text:
                own, taken = {_key(t) for t in record_tags(record)}, 0
                for index, tag in enumerate(self._tags):
                    if _key(tag) not in own:
                        taken += 1
                        if taken == k:
                            depth = max(depth, index + 1)
                            break
                else:
                    depth = len(self._tags)
        return depth


def _has_field(record: Mapping[str, Any], name: str) -> bool:
    if name == "categories":
        return bool(record_tags(record))
    return bool(str(record.get(name) or "").strip())


@dataclass(frozen=True)
class TextEdit(Perturbation):
    """Edit the records of a seeded share ``rate`` of eligible items, re-encode, give new text rows.

    ``embeddings``: an ``ItemTextEmbeddings`` over the clean text features whose encoder is the one
    that made them (wrap it in ``MemoTextEncoder`` so every edited text is encoded once across
    checkpoints); it may be None for a perturbation that is only described or drawn.
    """

    edit: str
    rate: float
    items: ItemRecords = field(compare=False, repr=False)
    embeddings: Any = field(default=None, compare=False, repr=False)
    keywords: int = DEFAULT_KEYWORDS
    keyword_pool: int | None = None

    kind: ClassVar[str] = "text"
    strength_name: ClassVar[str] = "rate"

    def __post_init__(self) -> None:
        check_edit(self.edit)
        check_rate(self.rate)
        check_keywords(self.keywords, self.keyword_pool)

    @property
    def strength(self) -> float:
        return self.rate

    def parameters(self) -> dict[str, object]:
        out: dict[str, object] = {"edit": self.edit, "rate": self.rate}
        if self.edit == "keywords":
            out.update(keywords=self.keywords, keyword_pool=self.keyword_pool or "deterministic")
        return out

    def unaffected_reason(self, model) -> str | None:
        return model_unaffected_reason(model, "text")

    def chosen(self, seed: int) -> np.ndarray:
        """The first ⌊rate·n_eligible + ½⌋ eligible ids of the trial's permutation (drawn order)."""
        eligible = self.items.eligible(self.edit)
        count = min(len(eligible), int(math.floor(self.rate * len(eligible) + 0.5)))
        return np.random.default_rng(seed).permutation(eligible)[:count]

    def edited_records(self, seed: int) -> dict[int, dict[str, Any]]:
        """Item id -> edited record for the items trial ``seed`` chooses (empty at rate 0)."""
        if self.rate == 0:
            return {}
        records = self.items.records
        if self.edit == "swap":
            rng = np.random.default_rng(seed)
            eligible = self.items.eligible(self.edit)
            count = min(len(eligible), int(math.floor(self.rate * len(eligible) + 0.5)))
            targets = rng.permutation(eligible)[:count]
            if count < 2:
                return {}
            sources = targets[derangement(rng, count)]
            return {int(t): {**records[s], "itemID": int(t)} for t, s in zip(targets, sources)}
        chosen = self.chosen(seed)
        if self.edit in DROPPED_FIELD:
            return {int(i): drop_field(records[i], DROPPED_FIELD[self.edit]) for i in chosen}
        tags = [tag for tag, _ in self.items.ranking]
        return {int(i): stuff_keywords(records[i], tags, self.keywords, self.keyword_pool,
                                       np.random.default_rng([seed, int(i)])) for i in chosen}

    def edited_texts(self, seed: int) -> dict[int, str]:
        """Item id -> new text of the chosen items whose text changes, ascending ids."""
        clean = self.items.texts
        edited = {i: build_item_text(r) for i, r in sorted(self.edited_records(seed).items())}
        return {i: t for i, t in edited.items() if t != clean[i]}

    def changed_items(self, seed: int) -> np.ndarray:
        return np.asarray(list(self.edited_texts(seed)) if self.rate != 0 else [], dtype=np.int64)

    def trial_record(self, seed: int) -> dict[str, object]:
        changed = list(self.edited_texts(seed)) if self.rate != 0 else []
        return {"changed_items": len(changed), "items": changed[:RECORDED_ITEMS]}

    def _perturb_copy(self, model, seed: int) -> None:
        if self.unaffected_reason(model) is not None:
            return
        if self.embeddings is None:
            raise ConfigError("this text edit has no text encoder to re-encode edited texts with")
        set_text_features(model, self.embeddings.with_texts(self.edited_texts(seed))[0])
