"""Build `<modality>_feat.npy`, `<modality>_mask.npy` and `features.json` from item content.

`plan_extraction` checks everything that can be checked before work (dataset, modalities, content,
output folder, existing files) and writes nothing. `extract_features` encodes in batches; each
batch lands as one chunk file in `<out>/.features.partial/<modality>/`, keyed by encoder, version,
preprocessing, batch size and the item content, so a rerun of the same command continues where
an interrupted one stopped (other settings start over). When every modality is encoded, the
rows are assembled (missing items filled with the mean of the covered rows, or zeros), written
atomically, the sidecar updated and the partial folder removed. One extraction writes an output
folder at a time (the lock `<out>/.features.lock`): a second one is refused at once, naming the first's PID.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robustrec.errors import ConfigError, DataError
from robustrec.features import output
from robustrec.files import DiskFullError, file_sha256, write_atomic
from robustrec.features.content import ModalityContent, available_modalities, load_content
from robustrec.features.registry import MODALITIES
from robustrec.features.sidecar import (FORMAT, modality_entry, read_sidecar, sidecar_path,
                                        write_json_atomic)

FILLS = ("mean", "zeros")
LOCK = ".features.lock"  # held by the extraction writing an output folder (robustrec.locks)
DEFAULT_BATCH_SIZE = 32


@dataclass
class ExtractionPlan:
    """What one extraction will read and write; made by `plan_extraction`, which writes nothing."""

    name: str
    source: Path
    out: Path
    n_items: int
    content: dict[str, ModalityContent]
    fill: str = "mean"
    base_sidecar: dict[str, Any] = field(default_factory=dict)

    @property
    def in_place(self) -> bool:
        return self.out.resolve() == self.source.resolve()

    @property
    def modalities(self) -> list[str]:
        return list(self.content)

    @property
    def partial(self) -> Path:
        return self.out / output.PARTIAL


@dataclass
class ModalityResult:
    modality: str
    encoder_id: str
    dim: int
    items: int
    covered: int
    fill: str
    skipped: dict[str, int]
    skipped_examples: list[tuple[int, str]]
    seconds: float
    encoded_now: int
    path: Path | None = None
    entry: dict[str, Any] = field(default_factory=dict)

    @property
    def items_per_second(self) -> float:
        return self.encoded_now / self.seconds if self.seconds > 0 else float("nan")


def parse_modalities(value: str | Sequence[str] | None) -> list[str] | None:
    """'image,text' → ['image', 'text'] (None: every modality with content); unknown names refused."""
    if value is None:
        return None
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in MODALITIES]
    if unknown or not names:
        raise ConfigError(f"unknown modality {', '.join(map(repr, unknown)) or '(none given)'}; "
                          f"valid: {', '.join(MODALITIES)}")
    return list(dict.fromkeys(names))


def plan_extraction(data_dir: str | Path, name: str, modalities: Sequence[str] | None = None,
                    out_dir: str | Path | None = None, fill: str = "mean", overwrite: bool = False) -> ExtractionPlan:
    """Every check that needs no encoder, in order; raises DataError/ConfigError, writes nothing."""
    from robustrec.data.mmrec import load_interactions
    from robustrec.paths import check_folder_name

    if fill not in FILLS:
        raise ConfigError(f"--fill must be one of {', '.join(FILLS)}, got {fill!r}")
    check_folder_name(name, "--dataset")
    requested = parse_modalities(modalities)
    n_items = load_interactions(data_dir, name).n_items
    source = Path(data_dir) / name
    available = available_modalities(source, name)
    if not available:
        raise DataError(f"dataset {name!r} has no item content to extract features from "
                        f"(no {name}.items.jsonl, images/ or {name}_url.csv in {source})")
    for modality in requested or []:
        if modality not in available:
            raise DataError(f"dataset {name!r} has no {modality} content in {source}; it has: {', '.join(available)}")
    content = {m: load_content(source, name, n_items, m) for m in requested or available}
    for modality, found in content.items():
        if not found.sources:
            raise DataError(f"no item of dataset {name!r} has {modality} content (all {modality}s empty or "
                            f"outside the {n_items} items): nothing to extract")
    out = source if out_dir is None else Path(out_dir) / name
    plan = ExtractionPlan(name, source, out, n_items, content, fill)
    if plan.in_place:
        output.check_in_place(source)
    else:
        output.check_out_folder(out)
    for modality in plan.modalities:
        path = out / f"{modality}_feat.npy"
        if os.path.lexists(path) and not overwrite:
            raise ConfigError(f"{path} already exists; pass --overwrite to replace it")
    plan.base_sidecar = _base_sidecar(plan)
    return plan


def _base_sidecar(plan: ExtractionPlan) -> dict[str, Any]:
    """Entries kept from existing sidecars: the source's (linked modalities), then the output's."""
    entries: dict[str, Any] = {}
    if not plan.in_place and sidecar_path(plan.source).exists():
        entries.update(read_sidecar(plan.source)["modalities"])
    if sidecar_path(plan.out).exists():
        entries.update(read_sidecar(plan.out)["modalities"])
    return {m: e for m, e in entries.items() if m not in plan.content}


class ExtractionCallback:
    """Progress hooks (the CLI draws bars and keeps the Ctrl-C note); all optional."""

    def on_modality_start(self, modality: str, total: int, done: int, partial: Path | None = None) -> None: ...

    def on_batch(self, modality: str, done: int, total: int, partial: Path) -> None: ...

    def on_modality_end(self, result: ModalityResult) -> None: ...


def _content_key(encoder: Any, batch_size: int, found: ModalityContent) -> dict[str, Any]:
    digest = hashlib.sha256(json.dumps(sorted(found.sources.items())).encode()).hexdigest()
    return {"encoder": encoder.encoder_id, "version": encoder.version, "dim": int(encoder.dim),
            "preprocessing": encoder.preprocessing, "batch_size": batch_size, "content_sha256": digest}


def _open_partial(folder: Path, key: dict[str, Any]) -> None:
    """Keep `folder`'s chunks if they were made with `key`; otherwise start it over."""
    key_file = folder / "key.json"
    try:
        same = json.loads(key_file.read_text()) == json.loads(json.dumps(key))
    except (OSError, ValueError):
        same = False
    if not same:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write_json_atomic(key_file, key)


def _load_batch(modality: str, batch: list[tuple[int, str]]) -> tuple[list[int], list[Any], list[tuple[int, str]]]:
    """(ids, inputs, skipped (id, reason)) of one batch: texts as they are, images loaded with Pillow."""
    if modality == "text":
        return [i for i, _ in batch], [t for _, t in batch], []
    from robustrec.features.image_loading import ImageSkipped, load_image

    ids, images, skipped = [], [], []
    for item_id, source in batch:
        try:
            images.append(load_image(source))
            ids.append(item_id)
        except ImageSkipped as exc:
            skipped.append((item_id, str(exc)))
    return ids, images, skipped


def _read_chunk(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as chunk:
            return {k: chunk[k] for k in ("ids", "rows", "bad_ids", "bad_reasons")}
    except (OSError, ValueError, KeyError, EOFError):
        return None


def _write_chunk(path: Path, ids: list[int], rows: np.ndarray, skipped: list[tuple[int, str]]) -> None:
    """One batch's chunk, written atomically; not fsynced (a chunk lost in an OS crash is
    unreadable, hence encoded again)."""
    arrays = {"ids": np.asarray(ids, dtype=np.int64), "rows": np.asarray(rows, dtype=np.float32),
              "bad_ids": np.asarray([i for i, _ in skipped], dtype=np.int64),
              "bad_reasons": np.asarray([r for _, r in skipped], dtype=str)}

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    write_atomic(path, write, fsync=False)


def encode_modality(plan: ExtractionPlan, modality: str, encoder: Any, batch_size: int,
                    callback: ExtractionCallback) -> tuple[list[np.ndarray], ModalityResult]:
    """Encode every item with content of `modality` into chunks (reusing finished ones)."""
    found = plan.content[modality]
    folder = plan.partial / modality
    _open_partial(folder, _content_key(encoder, batch_size, found))
    items = sorted(found.sources.items())
    batches = [items[s:s + batch_size] for s in range(0, len(items), batch_size)]
    paths = [folder / f"chunk-{b:06d}.npz" for b in range(len(batches))]
    chunks = [_read_chunk(p) if p.exists() else None for p in paths]
    done = sum(len(batch) for batch, chunk in zip(batches, chunks) if chunk is not None)
    callback.on_modality_start(modality, len(items), done, plan.partial)
    start, encoded_now = time.perf_counter(), 0
    todo = [b for b, chunk in enumerate(chunks) if chunk is None]
    with ThreadPoolExecutor(max_workers=1) as pool:  # read the next batch while this one encodes
        pending = pool.submit(_load_batch, modality, batches[todo[0]]) if todo else None
        for position, b in enumerate(todo):
            ids, inputs, skipped = pending.result()
            if position + 1 < len(todo):
                pending = pool.submit(_load_batch, modality, batches[todo[position + 1]])
            rows = encoder.encode(inputs) if inputs else np.zeros((0, encoder.dim), np.float32)
            _check_rows(rows, ids, encoder, modality)
            _write_chunk(paths[b], ids, rows, skipped)
            chunks[b] = _read_chunk(paths[b])
            done += len(batches[b])
            encoded_now += len(batches[b])
            callback.on_batch(modality, done, len(items), plan.partial)
    seconds = time.perf_counter() - start
    return chunks, _result(plan, modality, encoder, chunks, seconds, encoded_now)


def _check_rows(rows: np.ndarray, ids: list[int], encoder: Any, modality: str) -> None:
    if rows.shape != (len(ids), encoder.dim):
        raise DataError(f"{modality} encoder {encoder.encoder_id} returned shape {rows.shape}, "
                        f"expected ({len(ids)}, {encoder.dim})")
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise DataError(f"{modality} encoder {encoder.encoder_id} gave NaN/inf for item {ids[int(np.argmax(bad))]}")


def _skip_kind(reason: str) -> str:
    return "download_failed" if reason.startswith("download failed") else \
        "oversized" if reason.startswith("oversized") else "unreadable"


def _result(plan: ExtractionPlan, modality: str, encoder: Any, chunks: list[dict[str, np.ndarray]],
            seconds: float, encoded_now: int) -> ModalityResult:
    skipped: dict[str, int] = {"unreadable": 0}
    examples = []
    for chunk in chunks:
        for item_id, reason in zip(chunk["bad_ids"].tolist(), chunk["bad_reasons"].tolist()):
            kind = _skip_kind(reason)
            skipped[kind] = skipped.get(kind, 0) + 1
            examples.append((item_id, reason))
    if plan.content[modality].outside_items:
        skipped["outside_items"] = len(plan.content[modality].outside_items)
    covered = sum(len(chunk["ids"]) for chunk in chunks)
    return ModalityResult(modality, encoder.encoder_id, int(encoder.dim), plan.n_items, covered, plan.fill,
                          skipped, examples, seconds, encoded_now)


def assemble(n_items: int, dim: int, chunks: list[dict[str, np.ndarray]], fill: str) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 (n_items, dim), mask bool (n_items,)): encoded rows, the rest filled."""
    features = np.zeros((n_items, dim), dtype=np.float32)
    mask = np.zeros(n_items, dtype=bool)
    for chunk in chunks:
        features[chunk["ids"]] = chunk["rows"]
        mask[chunk["ids"]] = True
    if fill == "mean" and mask.any() and not mask.all():
        features[~mask] = features[mask].astype(np.float64).mean(axis=0).astype(np.float32)
    return features, mask


def extract_features(plan: ExtractionPlan, encoders: dict[str, Any], batch_size: int = DEFAULT_BATCH_SIZE,
                     callback: ExtractionCallback | None = None) -> list[ModalityResult]:
    """Encode, then write every modality of `plan` (see module doc); returns one result per modality."""
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    from robustrec.locks import hold

    callback = callback or ExtractionCallback()
    created = output.make_folder(plan.out)
    full = None
    # one extraction per output folder: its partial chunks and its sidecar are this process's
    with hold(plan.out / LOCK, f"features of {plan.out}", "wait for it (a rerun then keeps what it wrote)"):
        plan.base_sidecar = _base_sidecar(plan)  # as another extraction may have left it
        encoded = {}
        try:
            for modality in plan.modalities:
                encoded[modality] = encode_modality(plan, modality, encoders[modality], batch_size, callback)
        except DiskFullError as exc:
            full = exc
        empty = [r for _, r in encoded.values() if r.covered == 0] if full is None else []
        if full is None and not empty:
            results = [_write_modality(plan, encoders[m], chunks, result) for m, (chunks, result) in encoded.items()]
            sidecar = {"format": FORMAT, "modalities": dict(plan.base_sidecar)}
            for result, modality in zip(results, plan.modalities):
                sidecar["modalities"][modality] = result.entry
            write_json_atomic(sidecar_path(plan.out), sidecar)
            if not plan.in_place:
                output.link_source(plan.source, plan.out, plan.name, set(plan.modalities))
            shutil.rmtree(plan.partial, ignore_errors=True)
    # the lock file is gone now: the folders this run made can go too, if it must leave nothing
    if full is not None:
        if not any(plan.partial.glob("*/chunk-*.npz")):  # nothing to resume: leave no trace
            output.remove_created(created, plan.partial)
        raise full
    if empty:
        output.remove_created(created, plan.partial)
        raise DataError(_nothing_readable(plan.name, empty[0]))
    for result in results:
        callback.on_modality_end(result)
    return results


def _nothing_readable(name: str, result: ModalityResult) -> str:
    first = ", ".join(f"{i} ({reason})" for i, reason in result.skipped_examples[:3])
    return (f"no {result.modality} of dataset {name!r} could be read ({sum(result.skipped.values())} skipped, "
            f"e.g. items {first}): nothing written")


def _write_modality(plan: ExtractionPlan, encoder: Any, chunks: list[dict[str, np.ndarray]],
                    result: ModalityResult) -> ModalityResult:
    features, mask = assemble(plan.n_items, result.dim, chunks, plan.fill)
    path = plan.out / f"{result.modality}_feat.npy"
    output.save_npy_atomic(path, features)
    output.save_npy_atomic(plan.out / f"{result.modality}_mask.npy", mask)
    result.path = path
    result.entry = modality_entry(encoder, fill=plan.fill, items=plan.n_items, covered=int(mask.sum()),
                                  skipped=result.skipped, feat_sha256=file_sha256(path))
    return result
