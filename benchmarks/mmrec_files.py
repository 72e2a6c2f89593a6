"""Survey of real MMRec model files run unchanged through robustrec.models.mmrec, and (``--compare``) the
MMRec file against robustrec's own model on the same data, epochs and seeds.

Survey: for each MMRec model file of ``--mmrec-src`` (read in place, never copied), whether it
loads, builds, trains ``--epochs`` epochs plainly and with Mirror Gradient, whether Gaussian
embedding noise and a content stress (half the items lose the ``--stress-modality`` features,
zero rows) change its scores, and whether its run folder reloads to the same scores; the first
stage that fails is printed with its one-line reason.

Compare: ``--compare 'FREEDOM=freedom' --compare 'BM3=bm3;dropout=0.3'`` trains each pair for ``--epochs`` epochs
(patience ``--patience``, early stopping on validation Recall@20, the best-validation epoch's
weights) on ``--seeds`` seeds and prints test Recall@20 / NDCG@20 as mean ± sd.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/mmrec_files.py --mmrec-src /work/mmrec/src \\
        --data-dir /work/shared/datasets --dataset lfm2k --param v_feat=audio --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

#: MMRec model files at commit e775373: file → class
MODELS = {
    "lattice.py": "LATTICE", "mgcn.py": "MGCN", "lgmrec.py": "LGMRec", "smore.py": "SMORE", "damrs.py": "DAMRS",
    "freedom.py": "FREEDOM", "bm3.py": "BM3", "vbpr.py": "VBPR", "lightgcn.py": "LightGCN",
    "layergcn.py": "LayerGCN", "selfcfed_lgn.py": "SELFCFED_LGN", "slmrec.py": "SLMRec", "pgl.py": "PGL",
    "mmgcf.py": "MMGCF", "bpr.py": "BPR", "itemknncbf.py": "ItemKNNCBF", "mmgcn.py": "MMGCN", "grcn.py": "GRCN",
    "dualgnn.py": "DualGNN", "dragon.py": "DRAGON", "mvgae.py": "MVGAE",
}


def survey_one(path: Path, class_name: str, data, args, params: dict) -> tuple[str, str]:
    """(stage reached or 'ok', detail) for one model file."""
    import torch

    from robustrec.checkpoints import load_model, save_run
    from robustrec.models import build_model
    from robustrec.perturbations import GaussianEmbeddingNoise
    from robustrec.perturbations.modality import MissingModality
    from robustrec.training import TrainConfig, Trainer

    reference = f"mmrec:{path}:{class_name}"
    stage = "load"
    try:
        from robustrec.models.sources import load_model_class

        cls = load_model_class(reference)
        mine = {k: v for k, v in params.items() if k in {f.name for f in __import__("dataclasses").fields(cls.Params)}}
        stage = "build"
        build_model(reference, data, mine, seed=0)
        users = torch.arange(min(200, data.n_users))
        detail = []
        for mg in (False, True):
            stage = "train (MG)" if mg else "train"
            config = TrainConfig(model=reference, dataset=args.dataset, data_dir=args.data_dir, model_params=mine,
                                 epochs=args.epochs, mg=mg, seed=0).validate()
            model = build_model(reference, data, mine, seed=0)
            start = time.perf_counter()
            result = Trainer(config).fit(model, data)
            seconds = (time.perf_counter() - start) / len(result.history)
            detail.append(f"{'MG' if mg else 'plain'} R@20 {result.test.summary()['recall@20']:.4f} "
                          f"({seconds:.1f} s/epoch)")
        clean = model.full_scores(users)
        stage = "noise"
        noise = GaussianEmbeddingNoise(sigma=args.sigma)
        if noise.unaffected_reason(model):
            detail.append("noise: unaffected by construction (no ID embedding table)")
        elif torch.equal(noise.apply(model, seed=1).full_scores(users), clean):
            return stage, f"no embedding table changes the scores"
        stage = "content"
        fault = MissingModality(args.stress_modality, data.n_items, rate=0.5, fill="zeros")
        if model.multimodal and fault.unaffected_reason(model):
            detail.append(f"content stress: unaffected by construction ({fault.unaffected_reason(model)})")
        elif model.multimodal:
            if torch.equal(fault.apply(model, seed=1).full_scores(users), clean):
                return stage, f"missing {args.stress_modality} leaves the scores unchanged"
            detail.append(f"content stress changes scores")
        else:
            detail.append("ID-only (no content stress)")
        stage = "reload"
        with tempfile.TemporaryDirectory() as folder:
            run = save_run(Path(folder) / "run", model, config, data, result)
            again, _, _ = load_model(run, data=data)
            if not torch.allclose(again.full_scores(users), clean, atol=1e-5):
                return stage, "reloaded run scores differ"
        return "ok", "; ".join(detail)
    except Exception as exc:  # noqa: BLE001  (a survey records every failure and goes on)
        if args.verbose:
            traceback.print_exc()
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return stage, f"{type(exc).__name__}: {text}"


def compare(pairs: list[str], data, args) -> None:
    """Each pair ``CLASS=own[;key=value;...]``: the MMRec file and robustrec's model ``own``, both
    with those parameters (where they have the key), robustrec's on ``--modalities``."""
    from robustrec.models import build_model
    from robustrec.models.sources import load_model_class
    from robustrec.training import TrainConfig, Trainer

    modalities = args.modalities.split(",") if args.modalities else None
    for pair in pairs:
        head, *assignments = pair.split(";")
        class_name, own = head.split("=")
        params = dict(a.split("=", 1) for a in assignments)
        path = Path(args.mmrec_src) / "models" / next(f for f, c in MODELS.items() if c == class_name)
        for label, reference, chosen in ((f"MMRec {class_name}", f"mmrec:{path}:{class_name}", None),
                                         (f"robustrec {own}", own, modalities)):
            cls = load_model_class(reference)
            names = {f.name for f in __import__("dataclasses").fields(cls.Params)}
            mine = {k: v for k, v in params.items() if k in names}
            recalls, ndcgs, epochs = [], [], []
            for seed in range(args.seeds):
                config = TrainConfig(model=reference, dataset=args.dataset, data_dir=args.data_dir,
                                     model_params=mine, epochs=args.epochs, patience=args.patience, seed=seed).validate()
                model = build_model(reference, data, mine, seed=seed, modalities=chosen)
                result = Trainer(config).fit(model, data)
                summary = result.test.summary()
                recalls.append(summary["recall@20"])
                ndcgs.append(summary["ndcg@20"])
                epochs.append(result.best_epoch)
            print(f"{label:<22} {mine} R@20 {statistics.mean(recalls):.4f} ± {statistics.stdev(recalls):.4f}  "
                  f"N@20 {statistics.mean(ndcgs):.4f} ± {statistics.stdev(ndcgs):.4f}  best epochs {epochs}",
                  flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmrec-src", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="lfm2k")
    parser.add_argument("--models", default="", help="comma-separated classes (default: every file)")
    parser.add_argument("--param", action="append", default=[], help="key=value for every model that has key")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=1e-3)
    parser.add_argument("--stress-modality", default="text")
    parser.add_argument("--compare", action="append", default=[],
                        help="CLASS=own[;key=value...], e.g. 'BM3=bm3;dropout=0.3' (repeatable)")
    parser.add_argument("--modalities", default="", help="robustrec's own model's modalities in --compare")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from robustrec.data import load_dataset

    torch.set_num_threads(args.threads)
    params = dict(p.split("=", 1) for p in args.param)
    data = load_dataset(args.dataset, args.data_dir)
    print(f"{args.dataset}: {data.n_users} users, {data.n_items} items, modalities {', '.join(data.modalities)}; "
          f"torch threads {args.threads}", flush=True)
    if args.compare:
        compare(args.compare, data, args)
        return 0
    wanted = set(filter(None, args.models.split(",")))
    for file, class_name in MODELS.items():
        if wanted and class_name not in wanted:
            continue
        start = time.perf_counter()
        stage, detail = survey_one(Path(args.mmrec_src) / "models" / file, class_name, data, args, params)
        status = "ok" if stage == "ok" else f"fails at {stage}"
        print(f"{class_name:<13} {status:<18} {detail}  [{time.perf_counter() - start:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
