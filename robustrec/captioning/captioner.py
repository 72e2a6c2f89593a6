"""What every captioner shares: the protocol and the item loop that fills a caption cache."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from robustrec.captioning.cache import CaptionCache, CaptionRunSummary
from robustrec.features.image_loading import ImageSkipped, load_image

ProgressCallback = Callable[[int, int], None]
"""Called as `progress(done, total)` after each batch; `total` counts the items to caption."""


class Captioner(Protocol):
    """A captioner: a stable id (stored in cache headers) and a batch captioning method."""

    @property
    def captioner_id(self) -> str: ...

    def caption_images(self, images: Sequence[Any]) -> list[str]: ...


def caption_items_with(
    captioner: Captioner,
    items: Mapping[int, str],
    cache: CaptionCache,
    *,
    progress: ProgressCallback | None = None,
    batch_size: int = 8,
    max_bytes: int,
    max_pixels: int,
) -> CaptionRunSummary:
    """Caption the items of `items` (id -> path/URL) not yet in `cache`, writing to the cache.

    Unreadable or oversized images are recorded as skipped in the cache, never raised.
    The cache is flushed at the end (and every `cache.flush_every` changes on the way).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    todo = cache.pending(sorted(items))
    cached = len(items) - len(todo)
    captioned = skipped = done = 0
    for start in range(0, len(todo), batch_size):
        batch_ids = todo[start : start + batch_size]
        ids, images = [], []
        for item_id in batch_ids:
            try:
                images.append(load_image(items[item_id], max_bytes=max_bytes, max_pixels=max_pixels))
                ids.append(item_id)
            except ImageSkipped as exc:
                cache.skip(item_id, str(exc))
                skipped += 1
        if images:
            for item_id, caption in zip(ids, captioner.caption_images(images)):
                cache.add(item_id, caption)
                captioned += 1
        done += len(batch_ids)
        if progress is not None:
            progress(done, len(todo))
    cache.flush()
    return CaptionRunSummary(captioned=captioned, skipped=skipped, cached=cached)
