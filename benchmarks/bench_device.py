"""Time one model's training epochs and full ranking on the CPU and, when torch sees one, on CUDA.

Both runs use the library's Trainer (``Trainer(config, device=...)``) with the same seed and
settings: every epoch's training time (sampler → batches on the device → steps; the loss is
read back every batch, so the clock includes the GPU's work) and its validation full ranking,
then one timed test full ranking. The first epoch on CUDA pays for kernel and cuSPARSE start-up,
so "steady" figures are the mean over the epochs after the first (all epochs when only one).
The ratio column is CPU time / CUDA time. Validation Recall@20 of both devices is printed to
show they agree closely (CUDA sums in another order and draws dropout from its own generator:
the numbers are close, not equal).

Multimodal models on a dataset without feature files (Baby) get random Baby-shaped features
(image 4096-d, text 384-d), labelled "random (timing only)".

Without CUDA the script times the CPU only, says that CUDA is absent and exits 0.

    PYTHONPATH=. python benchmarks/bench_device.py --model lightgcn --dataset baby \\
        --data-dir /work/shared/datasets --epochs 3 --threads 2 --json device.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

#: feature widths of the Baby files MMRec ships (image: CNN 4096-d, text: MiniLM 384-d)
BABY_FEATURE_DIMS = {"image": 4096, "text": 384}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lightgcn", help="a registered model name")
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per device (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cuda", default="cuda", help="the CUDA device to time (default cuda = the current GPU)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.threads < 1 or args.batch_size < 1:
        parser.error("--epochs, --threads and --batch-size must be >= 1")
    return args


def time_device(args: argparse.Namespace, data, device) -> dict:
    """Train ``args.epochs`` epochs on ``device`` and time them and one test full ranking."""
    import torch

    from robustrec.evaluation import full_ranking
    from robustrec.models import build_model
    from robustrec.training import Trainer, TrainConfig

    start = time.perf_counter()
    model = build_model(args.model, data, seed=args.seed)
    setup_s = time.perf_counter() - start
    config = TrainConfig(model=args.model, dataset=args.dataset, epochs=args.epochs, patience=args.epochs + 1,
                         batch_size=args.batch_size, seed=args.seed)
    start = time.perf_counter()
    result = Trainer(config, device=device).fit(model, data)  # moves the model first
    fit_s = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    test = full_ranking(model, data, "test")
    ranking_s = time.perf_counter() - start
    epochs = [r.seconds for r in result.history]
    rankings = [r.eval_seconds for r in result.history]
    steady = slice(1, None) if len(epochs) > 1 else slice(None)
    return {"device": str(device), "setup_s": setup_s, "fit_s": fit_s, "epoch_s": epochs,
            "steady_epoch_s": _mean(epochs[steady]), "valid_ranking_s": rankings,
            "steady_valid_ranking_s": _mean(rankings[steady]), "test_ranking_s": ranking_s,
            "valid_recall@20": result.history[-1].valid, "test_recall@20": test["recall@20"]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def with_timing_features(data, model: str, seed: int):
    """The data a multimodal model needs: its own features, or random Baby-shaped ones."""
    import numpy as np

    from robustrec.models import get_model_class

    if not get_model_class(model).multimodal or data.features:
        return data, ("real " + ",".join(data.modalities)) if data.features else "none"
    rng = np.random.default_rng(seed)
    features = {m: rng.standard_normal((data.n_items, d), dtype=np.float32) for m, d in BABY_FEATURE_DIMS.items()}
    return data.with_features(features), "random (timing only)"


def cuda_note(torch) -> str | None:
    """Why CUDA is not timed here, or None when it is available."""
    if torch.cuda.is_available():
        return None
    build = f"CUDA {torch.version.cuda} build, no GPU visible" if torch.version.cuda else "CPU build"
    return f"CUDA is absent on this machine (torch {torch.__version__}, {build}): only the CPU was timed"


def render(rows: list[dict], note: str | None) -> list[str]:
    lines = [f"{'device':<10} {'setup s':>8} {'epoch s':>8} {'valid rank s':>12} {'test rank s':>11} "
             f"{'valid R@20':>10}"]
    for row in rows:
        lines.append(f"{row['device']:<10} {row['setup_s']:>8.2f} {row['steady_epoch_s']:>8.3f} "
                     f"{row['steady_valid_ranking_s']:>12.3f} {row['test_ranking_s']:>11.3f} "
                     f"{row['valid_recall@20']:>10.4f}")
    if len(rows) == 2:
        cpu, gpu = rows
        lines.append(f"CPU / CUDA: epoch ×{cpu['steady_epoch_s'] / gpu['steady_epoch_s']:.1f}, "
                     f"full ranking ×{cpu['test_ranking_s'] / gpu['test_ranking_s']:.1f}")
    if note:
        lines.append(note)
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from robustrec.data import load_dataset
    from robustrec.device import describe_device, resolve_device
    from robustrec.errors import RobustRecError
    from robustrec.models import get_model_class

    torch.set_num_threads(args.threads)
    try:
        multimodal = get_model_class(args.model).multimodal
        data = load_dataset(args.dataset, args.data_dir, None if multimodal else ())
        note = cuda_note(torch)
        devices = [torch.device("cpu")] + ([] if note else [resolve_device(args.cuda, "--cuda")])
    except RobustRecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data, features = with_timing_features(data, args.model, args.seed)
    rows = [time_device(args, data, device) for device in devices]
    print(f"{args.model} on {data.name} ({data.n_users} users, {data.n_items} items, {data.n_train} train "
          f"interactions; features: {features}), {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, "
          f"{args.threads} CPU thread(s), {platform.processor() or platform.machine()}"
          + "".join(f"; {describe_device(d)}" for d in devices if d.type == "cuda"))
    for line in render(rows, note):
        print(line)
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"args": vars(args), "features": features, "cuda": note or "timed", "runs": rows,
                       "torch": torch.__version__}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
