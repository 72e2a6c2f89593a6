"""Study runner costs, measured side by side in one run (issue 12):

1. runner overhead: the cells of a small study run by hand (one `robustrec train` / `robustrec
   perturb noise` process per cell, the way a shell loop runs them) versus `robustrec study run
   --workers 1` with the same threads;
2. speed-up of 2 workers × 1 thread versus 1 worker × 2 threads, with the local process pool and
   with a local Ray instance;
3. a study killed (SIGINT) part way and run again gives the same report as an uninterrupted one.

The study: lfm2k (real interactions and features), BPR-MF and VBPR, plain and MG, 2 seeds, a
fixed number of epochs (no early stop, so every cell does the same work), then Gaussian noise
(3 repeats) on each seed's pair. Run from the repository root on a quiet machine:

    python benchmarks/bench_study.py --data-dir ../shared/datasets --epochs 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = [sys.executable, "-m", "robustrec"]

STUDY = """
name = "bench"
data_dir = "{data_dir}"
datasets = ["lfm2k"]
models = ["bprmf", "vbpr"]
strategies = ["plain", "mg"]
seeds = [0, 1]

[train]
epochs = {epochs}
patience = {epochs}
modalities = ["text", "audio"]

[[stress]]
kind = "noise"
sigma = [1e-3]
repeats = 3
flatness = false
"""


def run(args: list[str], cwd: Path, **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(BIN + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def by_hand(work: Path, data_dir: str, epochs: int, threads: int) -> float:
    """The study's cells as separate commands."""
    start = time.perf_counter()
    for seed in (0, 1):
        for model in ("bprmf", "vbpr"):
            names = []
            for mg in (False, True):
                name = f"{model}-{'mg' if mg else 'plain'}-s{seed}"
                names.append(name)
                run(["train", "--model", model, "--dataset", "lfm2k", "--data-dir", data_dir, "--epochs", str(epochs),
                     "--patience", str(epochs), "--seed", str(seed),
                     *(["--modalities", "text,audio"] if model == "vbpr" else []), "--name", name, "--checkpoint-dir", "runs", "--threads", str(threads), "-q",
                     *(["--mg"] if mg else [])], work)
            run(["perturb", "noise", *[f"runs/{n}" for n in names], "--sigma", "1e-3", "--repeats", "3",
                 "--no-flatness", "--report-dir", "reports", "--threads", str(threads), "-q"], work)
    return time.perf_counter() - start


IN_PROCESS = """
import sys, torch
from pathlib import Path
from robustrec.checkpoints import load_checkpoints
from robustrec.reports import save_report
from robustrec.studies.runner import StudySettings
from robustrec.studies.stress import NoiseStress
from robustrec.studies.training import train_run
from robustrec.training import TrainConfig
data_dir, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
for seed in (0, 1):
    for model in ("bprmf", "vbpr"):
        runs = []
        for mg in (False, True):
            config = TrainConfig(model=model, dataset="lfm2k", data_dir=data_dir, epochs=epochs, patience=epochs,
                                 seed=seed, mg=mg, modalities=["text", "audio"] if model == "vbpr" else None)
            runs.append(train_run(config.validate(), Path("runs") / f"{model}-{mg}-{seed}").run_dir)
        loaded, data = load_checkpoints(runs)
        spec = NoiseStress(sigma="1e-3", flatness=False).check()
        report = spec.run(loaded, data, StudySettings(repeats=3).validate()).reports[0]
        Path("reports").mkdir(exist_ok=True)
        save_report(report, Path("reports") / f"{model}-{seed}.json")
"""


def in_process(work: Path, data_dir: str, epochs: int, threads: int) -> float:
    """The same cells by hand in one Python process: library calls, no runner, no manifest."""
    work.mkdir()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IN_PROCESS, str(Path(data_dir).resolve()), str(epochs), str(threads)],
                   cwd=work, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def report_without_paths(folder: Path, work: Path) -> dict:
    subprocess.run(BIN + ["study", "report", str(folder)], cwd=work, check=True, stdout=subprocess.DEVNULL)
    report = json.loads((folder / "report" / "study-report.json").read_text())
    report.pop("folder")
    for row in report["clean"] + report["stress"]:
        row.pop("runs", None)
        row.pop("reports", None)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--kill-after", type=float, default=0.4, help="SIGINT after this share of the inline time")
    args = parser.parse_args(argv)
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        work = Path(tmp)
        study = work / "bench.toml"
        study.write_text(STUDY.format(data_dir=Path(args.data_dir).resolve(), epochs=args.epochs))
        times = {}
        (work / "hand").mkdir()
        times["by hand, 1 process per cell, 2 threads"] = by_hand(work / "hand", args.data_dir, args.epochs, 2)
        times["by hand, one process, library calls, 2 threads"] = in_process(work / "lib", args.data_dir,
                                                                             args.epochs, 2)
        times["study, 1 worker × 2 threads"] = run(["study", "run", str(study), "--out", "inline", "--workers", "1",
                                                    "--threads", "2", "-q"], work)
        times["study, local pool 2 workers × 1 thread"] = run(["study", "run", str(study), "--out", "pool",
                                                               "--workers", "2", "--threads", "1", "-q"], work)
        if not args.skip_ray:
            times["study, local Ray 2 tasks × 1 CPU"] = run(["study", "run", str(study), "--out", "ray", "--ray",
                                                             "--threads", "1", "-q"], work,
                                                            env={**os.environ, "RAY_TMPDIR": str(work)})
        # kill part way, then resume
        inline = times["study, 1 worker × 2 threads"]
        process = subprocess.Popen(BIN + ["study", "run", str(study), "--out", "killed", "--workers", "1",
                                          "--threads", "2", "-q"], cwd=work, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        time.sleep(inline * args.kill_after)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate()
        done = sum(c["state"] == "done" for c in json.loads((work / "killed" / "study.json").read_text())["cells"].values())
        resume = run(["study", "run", str(study), "--out", "killed", "--workers", "1", "--threads", "2", "-q"], work)
        same = report_without_paths(work / "killed", work) == report_without_paths(work / "inline", work)
        pooled_same = report_without_paths(work / "pool", work) == report_without_paths(work / "inline", work)

    base = times["by hand, 1 process per cell, 2 threads"]
    print(f"{cores} cores; lfm2k, bprmf + vbpr × plain/MG × 2 seeds, {args.epochs} epochs each, noise 3 repeats")
    for name, seconds in times.items():
        print(f"  {name:<44} {seconds:7.1f} s   {seconds / base:5.2f} × by hand")
    library = times["by hand, one process, library calls, 2 threads"]
    print(f"  runner overhead vs the same cells by hand in one process: {(inline / library - 1) * 100:+.1f}%; "
          f"vs one CLI process per cell: {(inline / base - 1) * 100:+.1f}%")
    serial = times["study, 1 worker × 2 threads"]
    for name, seconds in times.items():
        if "2 workers" in name or "Ray" in name:
            print(f"  speed-up of {name.split(', ', 1)[1]} over 1 worker × 2 threads: {serial / seconds:.2f}×")
    print(f"  killed by SIGINT after {inline * args.kill_after:.0f} s with {done} cells done "
          f"(exit message: {err.strip().splitlines()[-1] if err.strip() else 'none'}); resumed in {resume:.1f} s; "
          f"same report as uninterrupted: {same}; local pool same report as inline: {pooled_same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
