"""Test REC@5 of models on real data (Baby for ID models; lfm2k's real text/audio features for
multimodal ones), with and without Mirror Gradient.

Protocol (DESIGN §3; hyper-parameters chosen on validation only):

1. For each model and each training mode (plain, MG), train every point of the model's grid
   with the **first** seed; each run early-stops on validation Recall@20 (``--patience``,
   at most ``--max-epochs``) and keeps its best-validation weights.
2. The grid point with the highest best-validation Recall@20 is selected — test numbers are
   never looked at for the choice.
3. The selected point is trained with the remaining seeds; the report gives test REC@5
   (and valid Recall@20) mean ± std over all seeds, each at its best-validation epoch.

Default grids (override with ``--grid model.param=v1,v2``, repeatable; a model's first
``--grid`` flag replaces its whole default grid):

- layergcn: reg_weight ∈ {1e-2, 1e-3, 1e-4, 1e-5} × dropout ∈ {0.0, 0.1, 0.2}
  (MMRec's ``LayerGCN.yaml`` grid; 4 layers, embedding 64);
- selfcf:   dropout ∈ {0.3, 0.5, 0.7} (MMRec's ``SELFCFED_LGN.yaml`` fixes 0.5; 2 layers,
  reg_weight 0);
- lightgcn: reg_weight ∈ {1e-4, 1e-3} (2 layers); vbpr: reg_weight ∈ {1e-4, 1e-3};
  freedom: dropout ∈ {0.8, 0.9}; bm3: dropout ∈ {0.3, 0.5} (points of MMRec's grids).

``--modalities text,audio`` restricts multimodal models to those feature files (default: all).

With ``--mg-params from-plain`` MG runs skip the grid and reuse the point chosen for plain
(a cheaper protocol: MG is a training strategy on top of the model's own hyper-parameters).
``--runs-log F`` appends each finished training to F as a JSON line.

MG uses α1 = 1.0, β = 3 and α2 from ``--mg-alpha2`` (a list makes α2 one more grid axis for
MG runs; default 0.1). Training: Adam lr 1e-3, batch 2048 (MMRec's defaults).

Cost: a full run is (grid + seeds − 1) trainings per model and mode. ``--estimate`` trains
only the first grid point for ``--max-epochs`` epochs per model and mode, measures seconds
per epoch (training + validation), and projects the cost of the configuration given by
``--full-max-epochs``/``--full-seeds``/``--assumed-epochs`` and the grids.

    PYTHONPATH=. python benchmarks/quality_general.py --seeds 0,1,2 --max-epochs 1000 --patience 20
    PYTHONPATH=. python benchmarks/quality_general.py --estimate --max-epochs 5
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("layergcn", "selfcf")
DEFAULT_GRIDS = {
    "layergcn": {"reg_weight": ["1e-2", "1e-3", "1e-4", "1e-5"], "dropout": ["0.0", "0.1", "0.2"]},
    "selfcf": {"dropout": ["0.3", "0.5", "0.7"]},
    "lightgcn": {"reg_weight": ["1e-4", "1e-3"]},
    "vbpr": {"reg_weight": ["1e-4", "1e-3"]},
    "freedom": {"dropout": ["0.8", "0.9"]},
    "bm3": {"dropout": ["0.3", "0.5"]},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--data-dir", default="/work/shared/datasets")
    parser.add_argument("--dataset", default="baby")
    parser.add_argument("--modalities", default="", help="comma-separated modalities for multimodal models")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated; the first one tunes the grid")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--modes", default="plain,mg", help="plain, mg or both")
    parser.add_argument("--grid", action="append", default=[], metavar="MODEL.PARAM=V1,V2")
    parser.add_argument("--mg-alpha2", default="0.1", help="comma-separated α2 values for MG runs")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--runs-log", default=None,
                        help="append every finished training as one JSON line (survives an interrupted run)")
    parser.add_argument("--mg-params", choices=("tune", "from-plain"), default="tune",
                        help="'from-plain': MG runs reuse the grid point chosen for plain (tuning only α2); "
                             "needs --modes plain,mg")
    parser.add_argument("--estimate", action="store_true", help="time a short run and project the full cost")
    parser.add_argument("--summarize", metavar="RUNS_LOG", default=None,
                        help="train nothing: print the table from a --runs-log file (first of --seeds tunes)")
    parser.add_argument("--full-max-epochs", type=int, default=1000, help="for --estimate")
    parser.add_argument("--full-seeds", type=int, default=3, help="for --estimate")
    parser.add_argument("--assumed-epochs", type=int, default=150,
                        help="for --estimate: typical epochs until early stopping (best epoch + patience)")
    args = parser.parse_args(argv)
    args.model_list = [m.strip() for m in args.models.split(",") if m.strip()]
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.mode_list = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.alpha2_list = [float(a) for a in args.mg_alpha2.split(",") if a.strip()]
    if not args.seed_list or not args.model_list or not args.alpha2_list:
        parser.error("--models, --seeds and --mg-alpha2 need at least one value")
    if set(args.mode_list) - {"plain", "mg"} or not args.mode_list:
        parser.error("--modes takes plain, mg or plain,mg")
    if args.max_epochs < 1 or args.patience < 1:
        parser.error("--max-epochs and --patience must be >= 1")
    if args.mg_params == "from-plain" and args.mode_list != ["plain", "mg"]:
        parser.error("--mg-params from-plain needs --modes plain,mg")
    args.grids = build_grids(args.model_list, args.grid, parser)
    return args


def build_grids(models: list[str], flags: list[str], parser) -> dict[str, dict[str, list[str]]]:
    grids = {m: dict(DEFAULT_GRIDS.get(m, {})) for m in models}
    replaced: set[str] = set()
    for flag in flags:
        key, sep, values = flag.partition("=")
        model, dot, param = key.partition(".")
        if not sep or not dot or model not in grids or not values:
            parser.error(f"--grid expects MODEL.PARAM=V1,V2 with MODEL in {models}, got {flag!r}")
        if model not in replaced:
            grids[model], replaced = {}, replaced | {model}
        grids[model][param.replace("-", "_")] = [v.strip() for v in values.split(",")]
    return grids


def grid_points(grid: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = sorted(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]


def mode_points(args, model: str, mode: str, fixed: dict[str, str] | None = None
                ) -> list[tuple[dict[str, str], float | None]]:
    alphas = args.alpha2_list if mode == "mg" else [None]
    points = [fixed] if fixed is not None else grid_points(args.grids[model])
    return [(point, alpha) for point in points for alpha in alphas]


def train_once(data, model: str, params: dict[str, str], alpha2: float | None, seed: int, args) -> dict:
    from robustrec.models import build_model, get_model_class
    from robustrec.training import Trainer, TrainConfig

    modalities = [m for m in args.modalities.split(",") if m] or None
    if not get_model_class(model).multimodal:
        modalities = None
    config = TrainConfig(model=model, dataset=args.dataset, model_params=params, epochs=args.max_epochs,
                         patience=args.patience, seed=seed, mg=alpha2 is not None,
                         alpha2=alpha2 if alpha2 is not None else 0.1)
    start = time.perf_counter()
    result = Trainer(config).fit(build_model(model, data, params, seed=seed, modalities=modalities), data)
    seconds = time.perf_counter() - start
    epochs = len(result.history)
    return {"model": model, "params": params, "alpha2": alpha2, "seed": seed, "best_epoch": result.best_epoch,
            "epochs": epochs, "seconds": seconds, "seconds_per_epoch": seconds / epochs,
            "valid_recall@20": result.valid["recall@20"], "test": result.test.summary()}


def log(run: dict, args) -> None:
    if args.runs_log:
        with open(args.runs_log, "a") as handle:
            handle.write(json.dumps(run) + "\n")
    mode = "plain" if run["alpha2"] is None else f"mg α2={run['alpha2']}"
    print(f"{run['model']} {mode} {run['params']} seed {run['seed']}: best epoch {run['best_epoch']}/"
          f"{run['epochs']}, valid R@20 {run['valid_recall@20']:.4f}, test R@5 {run['test']['recall@5']:.4f} "
          f"({run['seconds']:.0f} s)", file=sys.stderr, flush=True)


def tune_and_repeat(data, model: str, mode: str, args, fixed: dict[str, str] | None = None) -> dict:
    tuning = []
    for params, alpha2 in mode_points(args, model, mode, fixed):
        tuning.append(train_once(data, model, params, alpha2, args.seed_list[0], args))
        log(tuning[-1], args)
    best = max(tuning, key=lambda run: run["valid_recall@20"])
    repeats = []
    for seed in args.seed_list[1:]:
        repeats.append(train_once(data, model, best["params"], best["alpha2"], seed, args))
        log(repeats[-1], args)
    return summarise(model, mode, tuning, repeats)


def summarise(model: str, mode: str, tuning: list[dict], repeats: list[dict]) -> dict:
    """The grid point with the best validation Recall@20 among ``tuning`` (first seed), with its
    ``repeats`` (other seeds): test metrics mean ± std over all its seeds."""
    best = max(tuning, key=lambda run: run["valid_recall@20"])
    runs = [best] + repeats
    out = {"model": model, "mode": mode, "params": best["params"], "alpha2": best["alpha2"],
           "seeds": [run["seed"] for run in runs], "best_epochs": [run["best_epoch"] for run in runs],
           "epochs": [run["epochs"] for run in runs], "tuning": tuning, "repeats": repeats}
    valid = [run["valid_recall@20"] for run in runs]
    out.update({"valid_recall@20": valid, "valid_recall@20_mean": statistics.fmean(valid)})
    for metric in ("recall@5", "ndcg@5", "recall@20"):
        values = [run["test"][metric] for run in runs]
        out.update({f"test_{metric}": values, f"test_{metric}_mean": statistics.fmean(values),
                    f"test_{metric}_std": _std(values)})
    return out


def summaries_from_log(path: str, seeds: list[int]) -> list[dict]:
    """Rebuild the summaries from a ``--runs-log`` file (e.g. of an interrupted run): per model
    and mode, the first seed's runs are the grid, the chosen point's runs on the other seeds the
    repeats."""
    runs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    summaries = []
    for model in dict.fromkeys(run["model"] for run in runs):
        for mode, is_mode in (("plain", lambda r: r["alpha2"] is None), ("mg", lambda r: r["alpha2"] is not None)):
            mine = [r for r in runs if r["model"] == model and is_mode(r)]
            tuning = [r for r in mine if r["seed"] == seeds[0]]
            if not tuning:
                continue
            best = max(tuning, key=lambda run: run["valid_recall@20"])
            repeats = [r for seed in seeds[1:] for r in mine
                       if r["seed"] == seed and (r["params"], r["alpha2"]) == (best["params"], best["alpha2"])]
            summaries.append(summarise(model, mode, tuning, repeats))
    return summaries


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def render(summaries: list[dict]) -> str:
    lines = ["| model | mode | chosen (on valid) | best / run epochs | valid R@20 | test REC@5 | test NDCG@5 "
             "| test REC@20 | seeds |", "|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        chosen = ", ".join(f"{k}={v}" for k, v in s["params"].items()) or "defaults"
        if s["alpha2"] is not None:
            chosen += f", α2={s['alpha2']}"
        epochs = ", ".join(f"{b}/{e}" for b, e in zip(s["best_epochs"], s["epochs"]))
        cells = [f"{s[f'test_{m}_mean']:.4f} ± {s[f'test_{m}_std']:.4f}" for m in ("recall@5", "ndcg@5", "recall@20")]
        lines.append(f"| {s['model']} | {s['mode']} | {chosen} | {epochs} | {s['valid_recall@20_mean']:.4f} | "
                     + " | ".join(cells) + f" | {', '.join(map(str, s['seeds']))} |")
    lines.append("\nmean ± sample std over seeds; each run's test metrics at its best-validation epoch.")
    return "\n".join(lines)


def estimate(data, args) -> tuple[list[dict], str]:
    """Time the first grid point per model and mode; project the full cost."""
    rows, total = [], 0.0
    lines = ["| model | mode | s/epoch (train+valid) | trainings | projected h (assumed epochs) | upper bound h |",
             "|---|---|---|---|---|---|"]
    for model in args.model_list:
        for mode in args.mode_list:
            params, alpha2 = mode_points(args, model, mode)[0]
            run = train_once(data, model, params, alpha2, args.seed_list[0], args)
            log(run, args)
            trainings = len(mode_points(args, model, mode)) + args.full_seeds - 1
            epochs = min(args.assumed_epochs, args.full_max_epochs)
            hours = trainings * epochs * run["seconds_per_epoch"] / 3600
            bound = trainings * args.full_max_epochs * run["seconds_per_epoch"] / 3600
            total += hours
            rows.append({**run, "mode": mode, "trainings": trainings, "projected_hours": hours, "bound_hours": bound})
            lines.append(f"| {model} | {mode} | {run['seconds_per_epoch']:.2f} | {trainings} | {hours:.1f} "
                         f"({epochs}) | {bound:.1f} |")
    lines.append(f"\nprojected total: {total:.1f} h with {args.full_seeds} seeds, grids "
                 f"{ {m: len(mode_points(args, m, 'mg')) for m in args.model_list} } points (MG), "
                 f"assuming {args.assumed_epochs} epochs per training; upper bound uses {args.full_max_epochs}.")
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize:
        summaries = summaries_from_log(args.summarize, args.seed_list)
        print(render(summaries))
        if args.json_path:
            Path(args.json_path).write_text(json.dumps({"summaries": summaries}, indent=2, default=str))
        return 0
    sys.path.insert(0, str(REPO))
    import torch

    from robustrec.data import load_dataset
    from robustrec.errors import RobustRecError
    from robustrec.models import get_model_class

    torch.set_num_threads(args.threads)
    try:
        for model in args.model_list:
            get_model_class(model)
        data = load_dataset(args.dataset, args.data_dir)
        if args.estimate:
            rows, table = estimate(data, args)
            output = {"estimate": rows}
        else:
            summaries = []
            for m in args.model_list:
                for mode in args.mode_list:
                    fixed = summaries[-1]["params"] if mode == "mg" and args.mg_params == "from-plain" else None
                    summaries.append(tune_and_repeat(data, m, mode, args, fixed))
            table, output = render(summaries), {"summaries": summaries}
    except RobustRecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table)
    if args.json_path:
        output["args"] = {k: v for k, v in vars(args).items()}
        Path(args.json_path).write_text(json.dumps(output, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
