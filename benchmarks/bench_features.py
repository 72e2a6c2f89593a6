"""Feature-extraction throughput on this machine (CPU, offline), on the real shared datasets.

1. MiniLM (all-MiniLM-L6-v2, the offline gt copy) texts/s on lfm2k item texts (long tag lists,
   most hit the 256-token limit) and on hm item texts (title, categories, description).
2. EfficientNet-Lite0 images/s on hm photos (Pillow decode + resize/crop + forward).
3. Total wall time of a full hm extraction (1,994 photos + 819 texts) into a temp folder, through
   the same library call the CLI makes.

Run: python benchmarks/bench_features.py [--data-dir ../shared/datasets] [--sample 256] [--threads 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parents[1]))


def texts_per_second(encoder, texts: list[str], batch_size: int) -> float:
    encoder.encode(texts[:2])  # warm up
    start = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        encoder.encode(texts[i:i + batch_size])
    return len(texts) / (time.perf_counter() - start)


def images_per_second(encoder, paths: list[str], batch_size: int) -> float:
    from robustrec.features.image_loading import load_image

    encoder.encode([load_image(paths[0])])  # warm up
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        encoder.encode([load_image(p) for p in paths[i:i + batch_size]])
    return len(paths) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(Path(__file__).parents[1].parent / "shared" / "datasets"))
    parser.add_argument("--sample", type=int, default=256, help="items per throughput measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--skip-full", action="store_true", help="skip the full hm extraction")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from robustrec.data.mmrec import load_interactions
    from robustrec.features.content import load_content
    from robustrec.features.registry import make_encoder
    from robustrec.features.extract import extract_features, plan_extraction

    if args.threads:
        torch.set_num_threads(args.threads)
    data_dir = Path(args.data_dir)
    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch_size}")
    rng = np.random.default_rng(0)
    text = make_encoder("text", batch_size=args.batch_size)
    for name in ("lfm2k", "hm"):
        n_items = load_interactions(data_dir, name).n_items
        texts = load_content(data_dir / name, name, n_items, "text").sources
        ids = sorted(rng.choice(sorted(texts), size=min(args.sample, len(texts)), replace=False).tolist())
        rate = texts_per_second(text, [texts[i] for i in ids], args.batch_size)
        print(f"MiniLM on {name} texts: {len(ids)} texts, {rate:.1f} texts/s")
    image = make_encoder("image")
    photos = load_content(data_dir / "hm", "hm", load_interactions(data_dir, "hm").n_items, "image").sources
    ids = sorted(rng.choice(sorted(photos), size=min(args.sample, len(photos)), replace=False).tolist())
    rate = images_per_second(image, [photos[i] for i in ids], args.batch_size)
    print(f"EfficientNet-Lite0 on hm photos: {len(ids)} photos, {rate:.1f} images/s")
    if args.skip_full:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        plan = plan_extraction(data_dir, "hm", None, tmp)
        encoders = {"image": make_encoder("image"), "text": make_encoder("text", batch_size=args.batch_size)}
        results = extract_features(plan, encoders, args.batch_size)
        total = time.perf_counter() - start
    parts = ", ".join(f"{r.modality} {r.covered}/{r.items} in {r.seconds:.1f}s ({r.items_per_second:.1f}/s)"
                      for r in results)
    print(f"full hm extraction (encoders loaded, all photos and texts, files written): {total:.1f}s; {parts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
