"""Time training of registered models on a real dataset, plain and with Mirror Gradient.

For every model (``--models a,b,c``; any registered name) the script runs two fresh
subprocesses — plain training and Mirror Gradient (β=3, α1=1.0, α2=0.1 unless overridden) —
so each peak RSS belongs to one model and one mode. Each subprocess loads the dataset, builds
the model (the one-off setup time: graphs, kNN, caches), trains ``--epochs`` epochs with the
library's Trainer, and then times one valid + one test full-ranking evaluation.

Multimodal models run on the dataset's own feature files (any modalities; ``--modalities``
picks some), or, on a dataset without any (Baby), on generated random features of Baby's
shapes (image 4096-d, text 384-d, one row per item), labelled "random (timing only)": their
quality numbers mean nothing.

The table compares with the MMRec figures of ``shared/PERF.md`` (same kind of machine,
2 threads); expect ±10% noise between runs, and more when other jobs share the cores.

    PYTHONPATH=. python benchmarks/bench_training.py --models lightgcn,layergcn \\
        --data-dir /work/shared/datasets --dataset baby --epochs 2 --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: feature widths of the Baby files MMRec ships (image: CNN 4096-d, text: MiniLM 384-d)
BABY_FEATURE_DIMS = {"image": 4096, "text": 384}


@dataclass(frozen=True)
class Reference:
    """MMRec timings from PERF.md: s/epoch plain and MG, valid+test eval s, peak RSS plain (MiB)."""

    plain: float
    mg: float
    eval_s: float
    rss_mib: float


MMREC = {
    "lightgcn": Reference(4.20, 5.49, 7.2, 850),
    "vbpr": Reference(5.00, 7.21, 7.5, 1000),
    "freedom": Reference(20.2, 26.2, 7.5, 1350),
    "bm3": Reference(21.6, 28.5, 7.2, 1315),
    "layergcn": Reference(11.7, 15.7, 7.6, 1160),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="lightgcn", help="comma-separated registered model names")
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--modalities", default="",
                        help="comma-separated modalities multimodal models use (default: all the dataset has)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per mode (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per subprocess (default 2)")
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha1", type=float, default=1.0)
    parser.add_argument("--alpha2", type=float, default=0.1)
    parser.add_argument("--beta", type=int, default=3)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="run workers without robustrec.runtime.tune_allocator (the CLI applies it)")
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.threads < 1:
        parser.error("--epochs and --threads must be >= 1")
    return args


# --- worker: one model, one mode, in its own process ---------------------------------------
def run_worker(args: argparse.Namespace, name: str, mode: str) -> dict:
    import resource

    import numpy as np
    import torch

    from robustrec.data import load_dataset
    from robustrec.evaluation import full_ranking
    from robustrec.models import build_model, get_model_class
    from robustrec.runtime import tune_allocator
    from robustrec.training import Trainer, TrainConfig

    malloc_tuned = tune_allocator()  # as the command line does; off with --no-malloc-tuning
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    wanted = [m for m in args.modalities.split(",") if m] or None
    multimodal = get_model_class(name).multimodal
    data = load_dataset(args.dataset, args.data_dir, wanted if multimodal else ())
    load_s = time.perf_counter() - start
    data, features = _with_timing_features(data, tuple(BABY_FEATURE_DIMS) if multimodal else (), args.seed, np)
    start = time.perf_counter()
    model = build_model(name, data, seed=args.seed)
    setup_s = time.perf_counter() - start
    config = TrainConfig(model=name, dataset=args.dataset, epochs=args.epochs, patience=args.epochs + 1,
                         batch_size=args.batch_size, seed=args.seed, mg=mode == "mg",
                         alpha1=args.alpha1, alpha2=args.alpha2, beta=args.beta)
    cpu_clock = EpochCpuClock()
    result = Trainer(config, callbacks=[cpu_clock]).fit(model, data)
    start = time.perf_counter()
    full_ranking(model, data, "valid")
    full_ranking(model, data, "test")
    eval_s = time.perf_counter() - start
    epoch_s = [record.seconds for record in result.history]
    return {"model": name, "mode": mode, "features": features, "malloc_tuned": malloc_tuned,
            "load_s": load_s, "setup_s": setup_s, "epoch_s": epoch_s, "mean_epoch_s": sum(epoch_s) / len(epoch_s), "eval_s": eval_s,
            "epoch_cpu_s": cpu_clock.seconds, "mean_epoch_cpu_s": sum(cpu_clock.seconds) / len(cpu_clock.seconds),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "batches_per_epoch": -(-data.n_train // args.batch_size)}


class EpochCpuClock:
    """Trainer callback: process CPU seconds of each epoch's training part (pre_epoch + batches).

    CPU time is less sensitive than wall time to other jobs sharing the cores; divide by the
    thread count for a rough idle-machine wall-time equivalent.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0
        self._batches = 0

    def on_train_start(self, max_epochs: int, batches_per_epoch: int) -> None:
        self._batches, self._start = batches_per_epoch, time.process_time()

    def on_batch_end(self, index: int, loss: float) -> None:
        if index == self._batches - 1:
            self.seconds.append(time.process_time() - self._start)

    def on_epoch_end(self, record) -> None:
        self._start = time.process_time()


def _with_timing_features(data, modalities, seed, np):
    """A dataset's own features when it has any; else random Baby-shaped ones for ``modalities``."""
    if not modalities:
        return data, "none"
    if data.features:  # a dataset with real features (any modalities): time on those
        return data, "real " + ",".join(data.modalities)
    rng = np.random.default_rng(seed)
    features = {m: rng.standard_normal((data.n_items, BABY_FEATURE_DIMS[m]), dtype=np.float32) for m in modalities}
    return data.with_features(features), "random (timing only)"


# --- parent: spawn workers, collect, render -------------------------------------------------
def resolve_models(spec: str) -> list[str]:
    from robustrec.models import get_model_class

    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    if not names:
        raise ValueError("--models is empty")
    for name in names:
        get_model_class(name)  # raises ConfigError with the available names
    return names


def spawn(args: argparse.Namespace, name: str, mode: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, mode,
               "--data-dir", args.data_dir, "--dataset", args.dataset, "--epochs", str(args.epochs),
               "--modalities", args.modalities,
               "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--seed", str(args.seed),
               "--alpha1", str(args.alpha1), "--alpha2", str(args.alpha2), "--beta", str(args.beta)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if args.no_malloc_tuning:
        env["ROBUSTREC_MALLOC_TUNING"] = "0"
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": name, "mode": mode, "error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a and b else "—"


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def reference(name: str, dataset: str):
    """MMRec's PERF.md figure for ``name``: measured on Baby only, so none for other datasets."""
    return MMREC.get(name) if dataset == "baby" else None


def summarise(name: str, plain: dict, mirror: dict, dataset: str = "baby") -> dict:
    ref = reference(name, dataset)
    row = {"model": name, "plain": plain, "mg": mirror,
           "mmrec": None if ref is None else ref.__dict__}
    p, m = plain.get("mean_epoch_s"), mirror.get("mean_epoch_s")
    row["ratios"] = {"plain_vs_mmrec": p / ref.plain if p and ref else None,
                     "mg_vs_mmrec": m / ref.mg if m and ref else None,
                     "mg_over_plain": m / p if p and m else None,
                     "mmrec_mg_over_plain": ref.mg / ref.plain if ref else None}
    return row


def render(rows: list[dict], args: argparse.Namespace) -> str:
    header = ("model", "features", "setup s", "plain s/ep", "MMRec", "×MMRec", "MG s/ep", "MMRec", "×MMRec", "CPU s/ep plain/MG",
              "MG/plain", "MMRec MG/plain", "eval s", "MMRec eval", "RSS plain/MG MiB", "MMRec RSS")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        p, m, ref = row["plain"], row["mg"], reference(row["model"], args.dataset)
        if "error" in p or "error" in m:
            lines.append(f"| {row['model']} | error: {p.get('error') or m.get('error')} |")
            continue
        cells = (row["model"], p["features"], fmt(p["setup_s"]), fmt(p["mean_epoch_s"]),
                 fmt(ref and ref.plain), ratio(p["mean_epoch_s"], ref and ref.plain), fmt(m["mean_epoch_s"]),
                 fmt(ref and ref.mg), ratio(m["mean_epoch_s"], ref and ref.mg),
                 f"{p['mean_epoch_cpu_s']:.2f}/{m['mean_epoch_cpu_s']:.2f}",
                 ratio(m["mean_epoch_s"], p["mean_epoch_s"]), ratio(ref and ref.mg, ref and ref.plain),
                 fmt(p["eval_s"]), fmt(ref and ref.eval_s, 1),
                 f"{p['peak_rss_mib']:.0f}/{m['peak_rss_mib']:.0f}", fmt(ref and ref.rss_mib, 0))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\n{args.dataset}: {args.epochs} epochs per mode, batch {args.batch_size}, {args.threads} threads, "
                 f"seed {args.seed}; MG α1={args.alpha1} α2={args.alpha2} β={args.beta}. "
                 "s/ep = mean wall seconds of training per epoch (sampling + steps, no evaluation); "
                 "CPU s/ep = process CPU seconds of the same (all threads); "
                 "eval s = one valid + one test full ranking; MMRec figures from PERF.md. "
                 f"Allocator tuning (robustrec.runtime): {'off' if args.no_malloc_tuning else 'on, as in the CLI'}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.worker:
        print(json.dumps(run_worker(args, *args.worker)))
        return 0
    from robustrec.errors import RobustRecError

    try:
        names = resolve_models(args.models)
    except (RobustRecError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        plain, mirror = spawn(args, name, "plain"), spawn(args, name, "mg")
        rows.append(summarise(name, plain, mirror, args.dataset))
        print(f"done {name}: " + json.dumps({"plain": plain, "mg": mirror}), file=sys.stderr, flush=True)
    print(render(rows, args))
    if args.json_path:
        meta = {"args": {k: v for k, v in vars(args).items() if k != "worker"},
                "python": platform.python_version(), "machine": platform.machine(),
                "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}
        Path(args.json_path).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    failed = any("error" in row["plain"] or "error" in row["mg"] for row in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
