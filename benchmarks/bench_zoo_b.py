"""Seconds per epoch (plain and Mirror Gradient) and one-off setup for DualGNN, SLMRec, BM3, DRAGON.

Real Baby interactions; the item features are *random* arrays of Baby's shapes (7050×4096 image,
7050×384 text) — timing only, never a quality result. ``torch.set_num_threads(2)`` by default.

    PYTHONPATH=$PWD python benchmarks/bench_zoo_b.py --data-dir /work/shared/datasets [--models bm3,dragon]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch


def random_features(data, seed: int = 0):
    rng = np.random.default_rng(seed)
    return data.with_features({"image": rng.random((data.n_items, 4096), dtype=np.float32),
                               "text": rng.normal(size=(data.n_items, 384)).astype(np.float32)})


def time_setup(name, data, params):
    """(cold, cached) seconds to build the model: empty cache dir, then memory cleared / disk hit."""
    from robustrec.models import build_model, cache

    cache.clear_memory()
    start = time.perf_counter()
    build_model(name, data, params)
    cold = time.perf_counter() - start
    cache.clear_memory()
    start = time.perf_counter()
    build_model(name, data, params)
    return cold, time.perf_counter() - start


def time_epochs(name, data, params, mg: bool, epochs: int, seed: int):
    from robustrec.models import build_model
    from robustrec.training import Trainer, TrainConfig

    model = build_model(name, data, params, seed=seed)
    config = TrainConfig(model=name, epochs=epochs, patience=1000, seed=seed, mg=mg,
                         alpha1=1.0, alpha2=0.1, beta=3)
    result = Trainer(config).fit(model, data)
    return [round(r.seconds, 2) for r in result.history], [round(r.eval_seconds, 2) for r in result.history]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--models", default="dualgnn,slmrec,bm3,dragon")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--params", default="{}", help="JSON {model: {param: value}}")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (2 is the PERF.md reference; on an oversubscribed machine "
                             "OpenMP barriers make 2 threads far slower than 1)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["ROBUSTREC_CACHE"] = tempfile.mkdtemp(prefix="robustrec-bench-")

    from robustrec.data import load_dataset

    start = time.perf_counter()
    data = random_features(load_dataset("baby", args.data_dir))
    print(f"load + random features: {time.perf_counter() - start:.2f}s", flush=True)
    overrides = json.loads(args.params)
    rows = []
    for name in args.models.split(","):
        params = overrides.get(name, {})
        cold, cached = time_setup(name, data, params)
        plain, plain_eval = time_epochs(name, data, params, False, args.epochs, args.seed)
        mirror, _ = time_epochs(name, data, params, True, args.epochs, args.seed)
        row = dict(model=name, params=params, setup_cold_s=round(cold, 2), setup_cached_s=round(cached, 2),
                   plain_epoch_s=plain, mg_epoch_s=mirror, valid_eval_s=plain_eval,
                   plain_mean=round(float(np.mean(plain)), 2), mg_mean=round(float(np.mean(mirror)), 2))
        row["mg_ratio"] = round(row["mg_mean"] / row["plain_mean"], 2)
        row["threads"] = args.threads
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
