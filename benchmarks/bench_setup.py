"""Time the fixed costs around training on a real dataset (PERF.md targets).

- dataset load (``load_dataset``) + BPR sampler construction + one epoch of negative sampling
  (target: load + sampler + evaluator setup <= 1 s; MMRec: ~6 s to build its eval loaders);
- full-ranking evaluation of valid + test with a LightGCN model (target <= 1.5 s; MMRec 7.2 s).

Run: python benchmarks/bench_setup.py --data-dir ../shared/datasets --dataset baby --threads 2
Each figure is the median of --repeats runs in this process (after one warm-up for evaluation).
"""

from __future__ import annotations

import argparse
import statistics
import time


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/datasets")
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    import torch

    from robustrec.data import load_dataset
    from robustrec.data.sampler import BPRSampler
    from robustrec.evaluation import evaluate_splits
    from robustrec.models import build_model

    imports = time.perf_counter() - start
    torch.set_num_threads(args.threads)
    load = _median_seconds(lambda: load_dataset(args.dataset, args.data_dir), args.repeats)
    data = load_dataset(args.dataset, args.data_dir)
    sampler = _median_seconds(lambda: BPRSampler(data, 2048, seed=0), args.repeats)
    one = BPRSampler(data, 2048, seed=0)
    sampling = _median_seconds(lambda: sum(1 for _ in one.epoch()), args.repeats)
    model = build_model("lightgcn", data).eval()
    evaluate_splits(model, data)  # warm-up
    evaluation = _median_seconds(lambda: evaluate_splits(model, data), args.repeats)
    print(f"{data.name}: {data.n_users} users, {data.n_items} items, {data.n_train} train; "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"  imports (torch + robustrec)       {imports:6.2f} s  (one-off per process)")
    print(f"  load dataset                      {load:6.3f} s")
    print(f"  build BPR sampler                 {sampler:6.3f} s")
    print(f"  setup total (load + sampler)      {load + sampler:6.3f} s  target <= 1 s")
    print(f"  one epoch of negative sampling    {sampling:6.3f} s  (MMRec 0.26 s)")
    print(f"  evaluate valid + test (LightGCN)  {evaluation:6.3f} s  target <= 1.5 s (MMRec 7.2 s)")


if __name__ == "__main__":
    main()
