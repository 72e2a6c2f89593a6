"""Seconds per training epoch (plain and Mirror Gradient) and one-off setup time per model.

Runs on the real Baby interactions; multimodal models get *generated random* features of
Baby's shapes (7050×4096 image, 7050×384 text) — for timing only, never real features.

    PYTHONPATH=. python benchmarks/bench_epoch.py --models vbpr,freedom,mmgcn,grcn
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from robustrec.data import load_dataset
from robustrec.data.sampler import BPRSampler
from robustrec.models import build_model
from robustrec.training import TrainConfig
from robustrec.training.optim import build_optimizer


def random_baby_features(n_items: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"image": rng.random((n_items, 4096), dtype=np.float32),
            "text": rng.standard_normal((n_items, 384), dtype=np.float32)}


def time_epochs(model, data, config: TrainConfig, epochs: int) -> list[float]:
    torch.manual_seed(config.seed)
    sampler = BPRSampler(data, config.batch_size, seed=config.seed)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay)
    strategy = config.strategy()
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        model.pre_epoch()
        for index, batch in enumerate(sampler.epoch()):
            strategy.step(model, optimizer, batch, index)
        seconds.append(time.perf_counter() - start)
    return seconds


def bench(name: str, data, epochs: int, seed: int, params: dict) -> dict:
    start = time.perf_counter()
    model = build_model(name, data, params, seed=seed)
    setup = time.perf_counter() - start
    plain = time_epochs(model, data, TrainConfig(model=name, seed=seed), epochs)
    model = build_model(name, data, params, seed=seed)
    mirror = time_epochs(model, data, TrainConfig(model=name, seed=seed, mg=True, beta=3), epochs)
    p, m = float(np.mean(plain)), float(np.mean(mirror))
    return {"model": name, "params": params, "setup_s": round(setup, 2), "plain_s": [round(s, 2) for s in plain],
            "mg_s": [round(s, 2) for s in mirror], "plain_mean": round(p, 2), "mg_mean": round(m, 2),
            "mg_ratio": round(m / p, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="vbpr,freedom,mmgcn,grcn")
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--param", action="append", default=[], help="model=key=value, repeatable")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    baby = load_dataset("baby", args.data_dir)
    data = baby.with_features(random_baby_features(baby.n_items, args.seed))
    extra: dict[str, dict] = {}
    for item in args.param:
        model, key, value = item.split("=", 2)
        extra.setdefault(model, {})[key] = value
    for name in args.models.split(","):
        print(json.dumps(bench(name, data, args.epochs, args.seed, extra.get(name, {}))), flush=True)


if __name__ == "__main__":
    main()
