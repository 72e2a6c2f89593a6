"""Training seconds per epoch of each step strategy (and AMR) relative to plain steps.

Side by side in one process: ``--rounds`` rounds, each training a fresh model (same seed) for
``--epochs`` epochs in every mode in turn (plain, mg, sam, asam, sgbd, amr, amr+mg by default),
so drifts of a shared machine hit every mode alike. Every epoch's training seconds are kept (the
validation ranking after each epoch is not counted); a mode's figures are the minimum (the least
disturbed epoch, the usual estimate on a shared machine) and the median over all its epochs,
and the ratios divide them by plain's. SAM and ASAM take two forward/backward passes per batch by
construction (about 2x); MG adds a second pass on every β-th batch; AMR one more forward and
one more backward of the model per batch.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_steps.py --model vbpr \\
        --data-dir /work/shared/datasets --dataset lfm2k --epochs 3 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

#: mode -> TrainConfig fields
MODES = {
    "plain": {},
    "mg": {"mg": True},
    "sam": {"step": "sam", "sam_rho": 0.05},
    "asam": {"step": "asam", "sam_rho": 0.5},
    "sgbd": {"step": "sgbd", "mg": True, "sam_rho": 0.05},
    "amr": {"adversarial": "amr"},
    "amr+mg": {"adversarial": "amr", "mg": True},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vbpr")
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--dataset", default="lfm2k")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median taken)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown or not args.modes:
        parser.error(f"unknown mode(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODES)}")
    if "plain" not in args.modes:
        args.modes.insert(0, "plain")
    if args.epochs < 1 or args.rounds < 1 or args.threads < 1:
        parser.error("--epochs, --rounds and --threads must be >= 1")
    return args


def epoch_seconds(args, data, mode: str) -> list[float]:
    """Training seconds of each epoch of one fresh fit in ``mode``."""
    from robustrec.models import build_model
    from robustrec.training import TrainConfig, Trainer

    config = TrainConfig(model=args.model, dataset=args.dataset, epochs=args.epochs, patience=args.epochs + 1,
                         batch_size=args.batch_size, seed=0, **MODES[mode])
    model = build_model(args.model, data, {}, seed=0)
    result = Trainer(config).fit(model, data)
    return [r.seconds for r in result.history]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from robustrec.data import load_dataset

    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir)
    times: dict[str, list[float]] = {mode: [] for mode in args.modes}
    for round_index in range(args.rounds):
        for mode in args.modes:
            seconds = epoch_seconds(args, data, mode)
            times[mode].extend(seconds)
            print(f"round {round_index + 1}/{args.rounds} {mode:>7}: " + " ".join(f"{v:.3f}" for v in seconds),
                  file=sys.stderr, flush=True)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    minima = {mode: min(values) for mode, values in times.items()}
    print(f"{args.model} on {args.dataset} ({data.n_users} users, {data.n_items} items, {data.n_train} train), "
          f"{args.threads} thread(s), {args.epochs} epochs x {args.rounds} interleaved rounds")
    print(f"{'mode':>8} {'min s/ep':>9} {'x plain':>8} {'median':>9} {'x plain':>8}")
    for mode in args.modes:
        print(f"{mode:>8} {minima[mode]:9.3f} {minima[mode] / minima['plain']:8.2f} {medians[mode]:9.3f} "
              f"{medians[mode] / medians['plain']:8.2f}")
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"model": args.model, "dataset": args.dataset, "threads": args.threads,
                       "epochs": args.epochs, "rounds": args.rounds, "seconds": times, "median": medians,
                       "min": minima, "ratio_min": {m: minima[m] / minima["plain"] for m in args.modes},
                       "ratio_median": {m: medians[m] / medians["plain"] for m in args.modes}}, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
