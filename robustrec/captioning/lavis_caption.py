"""Caption item images with Salesforce LAVIS BLIP-2 and write a robustrec caption cache.

A standalone script, run by a Python interpreter that has `salesforce-lavis` installed (LAVIS pins
old transformers and torchvision, so it lives in its own environment). It imports only the standard
library, torch, PIL and lavis — never robustrec — and writes the same JSON cache format as
`robustrec.captioning.cache.CaptionCache` (see that module). Usually started by
`robustrec.captioning.lavis_adapter.LavisCaptioner`; by hand:

    /path/to/lavis-env/bin/python lavis_caption.py --items items.json --cache out.json \\
        --captioner-id lavis:blip2_opt/pretrain_opt2.7b --dataset baby --fingerprint sha256:...

`--items` is a JSON object {item id: image path or URL}. Items already in the cache are skipped.
Progress goes to stdout as JSON lines: {"event": "progress", "done": n, "total": m}, then
{"event": "done", "captioned": .., "skipped": .., "cached": ..}. Errors: one line on stderr, exit status != 0.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

CACHE_FORMAT = "robustrec-caption-cache"
CACHE_VERSION = 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Caption images with LAVIS BLIP-2 (blip2_opt).")
    parser.add_argument("--items", required=True, help="JSON file {item id: image path or URL}")
    parser.add_argument("--cache", required=True, help="caption cache file to create or resume")
    parser.add_argument("--captioner-id", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--fingerprint", required=True)
    parser.add_argument("--model-type", default="pretrain_opt2.7b")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--flush-every", type=int, default=32)
    parser.add_argument("--max-bytes", type=int, default=20 * 1024 * 1024)
    parser.add_argument("--max-pixels", type=int, default=40_000_000)
    return parser.parse_args(argv)


def read_cache(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The existing cache (header checked) or an empty one."""
    if not path.exists():
        return dict(header, captions={}, skipped={})
    payload = json.loads(path.read_text(encoding="utf-8"))
    for key, value in header.items():
        if payload.get(key) != value:
            raise SystemExit(f"error: caption cache {path} has {key}={payload.get(key)!r}, not {value!r}")
    return payload


def write_cache(path: Path, payload: dict[str, Any]) -> None:
    """Atomic write: temp file in the same folder, fsync, rename, fsync of the folder (the same
    steps as `robustrec.files.write_atomic`, which this script may not import). A full disk is
    one line on stderr naming the file and the free space, exit status 1."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, ensure_ascii=False, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        try:
            free = f"{shutil.disk_usage(path.parent).free / 1024:.1f} KiB free on {path.parent}"
        except OSError:
            free = "free space unknown"
        raise SystemExit(f"error: no space left on device writing {path} ({free}); "
                         "free some space and run again") from None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            raise
    finally:
        os.close(fd)


def load_image(source: str, max_bytes: int, max_pixels: int) -> tuple[Any, str | None]:
    """(RGB image, None) or (None, reason it was skipped)."""
    from PIL import Image

    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(source, timeout=20) as response:  # noqa: S310
                data = response.read(max_bytes + 1)
        else:
            if os.path.getsize(source) > max_bytes:
                return None, f"oversized: more than {max_bytes} bytes"
            data = Path(source).read_bytes()
        if len(data) > max_bytes:
            return None, f"oversized: more than {max_bytes} bytes"
        with Image.open(io.BytesIO(data)) as image:
            if image.size[0] * image.size[1] > max_pixels:
                return None, f"oversized: {image.size[0]}x{image.size[1]} pixels > {max_pixels}"
            return image.convert("RGB"), None
    except Exception as exc:  # noqa: BLE001 - any failure means "skip this image"
        return None, f"unreadable image: {type(exc).__name__}: {exc}"


def emit(event: str, **fields: Any) -> None:
    print(json.dumps(dict(fields, event=event)), flush=True)


def load_model(args: argparse.Namespace) -> tuple[Any, Any, str]:
    from lavis.models import load_model_and_preprocess  # first: fail fast without LAVIS
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, vis_processors, _ = load_model_and_preprocess(
        name="blip2_opt", model_type=args.model_type, is_eval=True, device=device
    )
    return model, vis_processors["eval"], device


def caption_batch(model: Any, processor: Any, device: str, images: list[Any],
                  args: argparse.Namespace) -> list[str]:
    import torch

    batch = torch.stack([processor(image) for image in images]).to(device)
    samples: dict[str, Any] = {"image": batch}
    if args.prompt:
        samples["prompt"] = [args.prompt] * len(images)
    with torch.no_grad():
        captions = model.generate(samples, max_length=args.max_length)
    return [str(c).strip() for c in captions]


def run(args: argparse.Namespace) -> None:
    items = {int(k): str(v) for k, v in json.loads(Path(args.items).read_text()).items()}
    header = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "captioner": args.captioner_id,
              "dataset": args.dataset, "fingerprint": args.fingerprint}
    cache_path = Path(args.cache)
    payload = read_cache(cache_path, header)
    done_ids = {int(k) for k in payload["captions"]} | {int(k) for k in payload["skipped"]}
    todo = [i for i in sorted(items) if i not in done_ids]
    counts = {"captioned": 0, "skipped": 0, "cached": len(items) - len(todo)}
    model = processor = device = None
    if todo:
        model, processor, device = load_model(args)
    unsaved = 0
    for start in range(0, len(todo), args.batch_size):
        ids, images = [], []
        for item_id in todo[start : start + args.batch_size]:
            image, reason = load_image(items[item_id], args.max_bytes, args.max_pixels)
            if image is None:
                payload["skipped"][str(item_id)] = reason
                counts["skipped"] += 1
            else:
                ids.append(item_id)
                images.append(image)
        if images:
            for item_id, caption in zip(ids, caption_batch(model, processor, device, images, args)):
                payload["captions"][str(item_id)] = caption
                payload["skipped"].pop(str(item_id), None)
                counts["captioned"] += 1
        unsaved += args.batch_size
        if unsaved >= args.flush_every:
            write_cache(cache_path, payload)
            unsaved = 0
        emit("progress", done=min(start + args.batch_size, len(todo)), total=len(todo))
    write_cache(cache_path, payload)
    emit("done", **counts)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except ImportError as exc:
        print(f"error: this Python cannot import LAVIS ({exc}); install salesforce-lavis", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
