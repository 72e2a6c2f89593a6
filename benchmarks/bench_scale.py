"""Scaling curve: time and peak memory of train / eval / noise stress from Baby-sized to Elec-sized data.

For every preset of ``robustrec data synth`` (baby → sports → clothing → elec: MMRec's Amazon sizes,
image 4096-d + text 384-d features) the script writes the dataset once, then runs every model in a
fresh subprocess, so each peak RSS belongs to one run. A run times five phases and records the peak
RSS of each (the kernel's high-water mark, reset between phases through /proc/self/clear_refs):

- load: the dataset with the modalities the model reads;
- build: the model (graphs, item kNN: an empty kNN cache per run, so every run builds its own);
- epoch: one training epoch (sampling + steps, no evaluation);
- eval: one valid + one test full ranking;
- noise: the noise report of ``robustrec perturb noise`` (σ = 1e-3, 3 repeats, flatness on): a clean
  evaluation, 3 noisy ones and the flatness figures, and the report written as JSON (its size is
  recorded).

Each time is then fitted against interactions on log–log axes (slope 1 = linear); the JSON and a
plot (``--plot``, SVG or PNG) are written. ``--quick`` scales every preset down 20× (a smoke run).

    PYTHONPATH=. python benchmarks/bench_scale.py --presets baby,sports,clothing,elec \\
        --models lightgcn,vbpr,freedom,bm3 --work-dir /tmp/scale --json scale.json --plot docs/img/scale.svg
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHASES = ("load", "build", "epoch", "eval", "noise")
#: the fitted and plotted times (load and build are reported, not fitted)
FITTED = ("epoch", "eval", "noise")
QUICK_SHRINK = 20


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="baby,sports,clothing,elec", help="comma-separated presets")
    parser.add_argument("--models", default="lightgcn,vbpr,freedom,bm3", help="comma-separated model names")
    parser.add_argument("--work-dir", default="", help="where datasets, runs and caches go (default: a temp dir, "
                        "removed at the end)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="noise trials (default 3)")
    parser.add_argument("--max-memory", default="", help="memory budget passed to the runs (default: automatic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"every preset {QUICK_SHRINK}× smaller (smoke run)")
    parser.add_argument("--json", dest="json_path", default=None, help="write the results here")
    parser.add_argument("--plot", default=None, help="write the log–log plot here (.svg or .png)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="which seconds the slopes and the plot use: process CPU (default; steadier on a "
                             "shared machine) or wall")
    parser.add_argument("--from-rows", nargs="+", default=None, metavar="FILE",
                        help="run nothing: read rows from earlier outputs (this script's stderr 'done' lines, "
                             "--json files or a worker's JSON line) and write the table, --json and --plot")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="a model hyper-parameter for every run, as `train --param` (repeatable)")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "DATA_DIR", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be >= 1")
    if any("=" not in p or not p.split("=", 1)[0] for p in args.param):
        parser.error("--param takes KEY=VALUE")
    return args


# --- worker: one model on one dataset, in its own process ----------------------------------------
def _peak_rss_mib() -> float:
    """The process's peak RSS since the last reset (VmHWM), in MiB; ru_maxrss where /proc has none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Phases:
    """Times phases and the peak RSS of each."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        self.peak_mib: dict[str, float] = {}
        self.resettable = _reset_peak()

    def run(self, name: str, work):
        _reset_peak()
        start, cpu = time.perf_counter(), time.process_time()
        out = work()
        self.seconds[name] = time.perf_counter() - start
        self.cpu_seconds[name] = time.process_time() - cpu
        self.peak_mib[name] = _peak_rss_mib()
        return out


def run_worker(args: argparse.Namespace, name: str, data_dir: str, dataset: str) -> dict:
    import gc

    import torch

    from robustrec.checkpoints import LoadedCheckpoint, Run
    from robustrec.data.sampler import BPRSampler
    from robustrec.evaluation import evaluate_splits
    from robustrec.reports import save_report
    from robustrec.runtime import tune_allocator
    from robustrec.studies.noise_study import run_noise_study
    from robustrec.studies.runner import StudySettings
    from robustrec.studies.training import prepare_data
    from robustrec.training import TrainConfig
    from robustrec.training.optim import build_optimizer

    tune_allocator()
    torch.set_num_threads(args.threads)
    phases = Phases()
    params = dict(p.split("=", 1) for p in args.param)
    config = TrainConfig(model=name, dataset=dataset, data_dir=data_dir, epochs=1, seed=args.seed,
                         model_params=params).validate()
    data, config = phases.run("load", lambda: prepare_data(config))
    model = phases.run("build", lambda: config.model_spec.build(data, config.seed))

    def epoch():
        torch.manual_seed(config.seed)
        sampler = BPRSampler(data, config.batch_size, seed=config.seed)
        optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay)
        strategy = config.strategy()
        model.train()
        model.pre_epoch()
        for index, batch in enumerate(sampler.epoch()):
            strategy.step(model, optimizer, batch, index)
        model.eval()
        return len(sampler)

    batches = phases.run("epoch", epoch)
    gc.collect()
    phases.run("eval", lambda: evaluate_splits(model, data, ("valid", "test")))
    work = Path(tempfile.mkdtemp(dir=os.environ.get("ROBUSTREC_CACHE")))
    run = Run(path=work / f"{name}-{dataset}", config=config.__dict__ | {"modalities": config.modalities},
              metrics={}, history=[], data={}, meta={}, weights_sha256="-")
    report_path = work / "noise.json"

    def noise():
        settings = StudySettings(repeats=args.repeats, seed=args.seed)
        report = run_noise_study([LoadedCheckpoint(model, run)], data, [1e-3], "all", settings)
        save_report(report, report_path)

    phases.run("noise", noise)
    return {"model": name, "dataset": dataset, "params": params, "users": data.n_users, "items": data.n_items,
            "interactions": int(data.train.nnz + data.valid.nnz + data.test.nnz), "train": data.n_train,
            "batches": batches, "seconds": phases.seconds, "cpu_seconds": phases.cpu_seconds, "peak_mib": phases.peak_mib,
            "peak_resettable": phases.resettable, "report_mib": report_path.stat().st_size / 2**20}


# --- parent ---------------------------------------------------------------------------------------
def synth(preset: str, data_dir: Path, quick: bool, seed: int) -> tuple[str, float]:
    """Write ``preset`` under ``data_dir`` (once); (dataset name, seconds)."""
    from robustrec.data.sized import PRESETS

    users, items, interactions = PRESETS[preset]
    name = f"synth-{preset}" + ("-quick" if quick else "")
    if (data_dir / name).exists():
        return name, 0.0
    command = [sys.executable, "-m", "robustrec", "data", "synth", "--preset", preset, "--name", name,
               "--data-dir", str(data_dir), "--seed", str(seed)]
    if quick:
        command += ["--users", str(users // QUICK_SHRINK), "--items", str(items // QUICK_SHRINK),
                    "--interactions", str(interactions // QUICK_SHRINK)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, env=_env(1))
    return name, time.perf_counter() - start


def _env(threads: int, **extra) -> dict:
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), **extra,
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def spawn(args: argparse.Namespace, name: str, data_dir: Path, dataset: str, work: Path) -> dict:
    cache = work / f"cache-{dataset}-{name}"  # an empty kNN cache: every run builds its own graphs
    cache.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, str(data_dir), dataset,
               "--threads", str(args.threads), "--repeats", str(args.repeats), "--seed", str(args.seed),
               *[f"--param={p}" for p in args.param]]
    extra = {"ROBUSTREC_MAX_MEMORY": args.max_memory} if args.max_memory else {}
    done = subprocess.run(command, capture_output=True, text=True,
                          env=_env(args.threads, ROBUSTREC_CACHE=str(cache), **extra))
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        return {"model": name, "dataset": dataset, "error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x); None with fewer than two distinct x."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


def series(row: dict) -> str:
    """The curve a row belongs to: its model, and "1/20" for --quick datasets (fitted apart)."""
    return row["model"] + (f" 1/{QUICK_SHRINK}" if row["dataset"].endswith("-quick") else "")


def slopes(rows: list[dict], clock: str = "cpu") -> dict[str, dict[str, float | None]]:
    """Per model, the log–log slope of each phase's time (``clock``: CPU or wall seconds) and of the
    peak RSS against interactions."""
    key = "cpu_seconds" if clock == "cpu" else "seconds"
    out = {}
    for model in dict.fromkeys(series(row) for row in rows):
        done = [row for row in rows if series(row) == model and "error" not in row]
        xs = [row["interactions"] for row in done]
        fitted = {phase: fit_slope(xs, [row[key][phase] for row in done]) for phase in PHASES}
        fitted["peak_rss"] = fit_slope(xs, [max(row["peak_mib"].values()) for row in done])
        out[model] = fitted
    return out


def render(rows: list[dict], fitted: dict, clock: str = "cpu") -> str:
    header = ("dataset", "model", "interactions", *(f"{p} s wall/CPU" for p in PHASES), "peak RSS MiB", "peak in",
              "report MiB")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['dataset']} | {row['model']} | error: {row['error']} |")
            continue
        peak_phase = max(row["peak_mib"], key=row["peak_mib"].get)
        cells = (row["dataset"], row["model"], f"{row['interactions']:,}",
                 *(f"{row['seconds'][p]:.1f}/{row['cpu_seconds'][p]:.1f}" for p in PHASES), f"{row['peak_mib'][peak_phase]:.0f}", peak_phase,
                 f"{row['report_mib']:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"log–log slopes against interactions ({clock} seconds; 1 = linear):", "",
              "| series | " + " | ".join(f"{p}" for p in (*PHASES, "peak RSS")) + " |",
              "|---|" + "---|" * (len(PHASES) + 1)]
    for model, values in fitted.items():
        lines.append(f"| {model} | " + " | ".join("—" if v is None else f"{v:.2f}"
                                                  for v in values.values()) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], fitted: dict, path: Path, clock: str = "cpu") -> None:
    """Log–log panels of epoch, eval and noise-report time and peak RSS against interactions."""
    key_of = "cpu_seconds" if clock == "cpu" else "seconds"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    panels = [*((p, f"{p} ({clock} s)") for p in FITTED), ("peak_rss", "peak RSS (MiB)")]
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8))
    done = [row for row in rows if "error" not in row]
    for axis, (key, label) in zip(axes, panels):
        for model in dict.fromkeys(series(row) for row in done):
            own = [row for row in done if series(row) == model]
            xs = [row["interactions"] for row in own]
            ys = [max(row["peak_mib"].values()) if key == "peak_rss" else row[key_of][key] for row in own]
            slope = fitted[model].get(key)
            axis.plot(xs, ys, marker="o", label=f"{model} ({'—' if slope is None else f'{slope:.2f}'})")
        if done:  # a slope-1 guide through the smallest run's points: linear growth
            xs = sorted({row["interactions"] for row in done})
            low = [ln.get_ydata()[0] for ln in axis.get_lines()]
            if low and len(xs) > 1:
                base = min(low)
                axis.plot([xs[0], xs[-1]], [base, base * xs[-1] / xs[0]], "k--", lw=0.8, alpha=0.5, label="linear")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel("interactions")
        axis.set_title(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7, title="model (slope)", title_fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def resolve(spec: str, known, what: str) -> list[str]:
    names = [n.strip().lower() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise ValueError(f"--{what} must name some of {', '.join(known)}, got {spec!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.worker:
        print(json.dumps(run_worker(args, *args.worker)))
        return 0
    if args.from_rows:
        rows = [row for path in args.from_rows for row in read_rows(Path(path))]
        return finish(rows, args, {})
    from robustrec.data.sized import PRESETS
    from robustrec.models.registry import available_models

    try:
        presets = resolve(args.presets, PRESETS, "presets")
        models = resolve(args.models, available_models(), "models")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    own = not args.work_dir
    work = Path(tempfile.mkdtemp(prefix="bench-scale-") if own else args.work_dir)
    rows, synth_s = [], {}
    try:
        for preset in presets:
            dataset, synth_s[preset] = synth(preset, work / "data", args.quick, args.seed)
            for model in models:
                row = spawn(args, model, work / "data", dataset, work)
                rows.append(row)
                print(f"done {dataset} {model}: {json.dumps(row)}", file=sys.stderr, flush=True)
    finally:
        if own:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    return finish(rows, args, synth_s)


def read_rows(path: Path) -> list[dict]:
    """Rows from a --json file, 'done <dataset> <model>: {...}' lines or bare JSON rows (one per line)."""
    text = path.read_text()
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, dict) and "rows" in document:
        return document["rows"]
    if isinstance(document, dict):
        return [document]
    rows = []
    for line in text.splitlines():
        start = line.find("{")
        if start >= 0 and (line.startswith("done ") or start == 0):
            rows.append(json.loads(line[start:]))
    return rows


def finish(rows: list[dict], args: argparse.Namespace, synth_s: dict) -> int:
    """Print the table; write --json and --plot; exit 1 when a run failed."""
    rows = sorted(rows, key=lambda row: (row.get("interactions", 0), row["model"]))
    fitted = slopes(rows, args.clock)
    print(render(rows, fitted, args.clock))
    meta = {"args": {k: v for k, v in vars(args).items() if k != "worker"}, "synth_s": synth_s,
            "python": platform.python_version(), "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"meta": meta, "rows": rows, "slopes": fitted}, indent=2))
    if args.plot:
        plot(rows, fitted, Path(args.plot), args.clock)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
