"""Time one training epoch of MMRec's and of robustrec's implementation of each model, side by side.

For every model in ``--models`` and every thread count in ``--threads`` the script runs, in fresh
subprocesses one after the other (alternating frameworks): MMRec plain, robustrec plain and
robustrec with Mirror Gradient (β=3, α1=1, α2=0.1). Each worker builds its model on Baby-shaped
data — the real ``baby`` interactions, and for multimodal models random features of Baby's shapes
(image 4096-d, text 384-d; timing only, the same files for both frameworks) — with batch 2048,
embedding 64, Adam lr 1e-3 and the hyper-parameters of the ``MODELS`` table on both sides, then
trains a warm-up of ``--warmup-batches`` batches and ``--epochs`` timed epochs.

Reported per epoch: process CPU seconds (the steadier figure on a shared machine) and wall
seconds of the training part (pre-epoch work + negative sampling + every batch's step), the
ratio robustrec / MMRec (plain) and robustrec's MG / plain, twice: across processes (MG epoch /
plain epoch) and in-run (the MG process's own plain batches standing for the plain epoch, which
drops the ±15% speed differences between processes). ``--max-batches N`` times only the
first N batches of each timed epoch and scales to the full epoch (mirror and plain batches
scaled separately, the first batch's fetch — a whole epoch's sampling in robustrec — counted
once): every batch of these models does the same full-graph work, and it keeps a run of all
models at 1 and 2 threads near 15 minutes; ``--max-batches 0`` times whole epochs.

MMRec (commit e775373) is never part of robustrec: pass its ``src`` folder with
``--mmrec-src``. Its models need pandas/scipy/pyyaml (in the project venv) and, for MMGCN and
GRCN, ``torch_geometric`` (pure Python; ``pip install --target DIR --no-deps torch_geometric
xxhash psutil lmdb`` and pass ``--mmrec-path DIR``); ``--mmrec-python`` runs MMRec with another
interpreter. Shims in MMRec's worker only (none changes its arithmetic): its image-loading helpers
(torchvision) are stubbed, no model here uses them; ``torch_scatter.scatter_add``, where it is not installed, is
``index_add`` (MGCN's and SMORE's graph set-up only); ``dok_matrix._update`` (gone from SciPy
1.11) is restored for its graph builders; on a machine without CUDA, ``Tensor.cuda`` returns
the tensor (GRCN's loss puts one zero on the GPU).

    PYTHONPATH=. python benchmarks/bench_vs_mmrec.py --mmrec-src /work/mmrec/src \\
        --mmrec-path /tmp/mmrec-pyg --models vbpr,lightgcn --threads 1,2 --json out.json

Adding a model: one ``Pair`` row in ``MODELS`` (robustrec name → MMRec module.Class and the
hyper-parameters given to both sides, robustrec param name ↔ MMRec config key).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BABY_FEATURE_DIMS = {"image": 4096, "text": 384}
MMREC_FEATURE_FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}


@dataclass(frozen=True)
class Pair:
    """One model in both frameworks: MMRec's ``module.Class`` (under ``models/``), whether it
    reads item features, and the shared hyper-parameters as (robustrec param, MMRec key, value);
    ``mmrec_only``: MMRec config keys with no robustrec counterpart (fixed here, printed)."""

    mmrec: str
    multimodal: bool
    shared: tuple[tuple[str, str, object], ...] = ()
    mmrec_only: dict = field(default_factory=dict)


MODELS: dict[str, Pair] = {
    "vbpr": Pair("vbpr.VBPR", True, (("reg_weight", "reg_weight", 1e-4),)),
    "lightgcn": Pair("lightgcn.LightGCN", False, (("n_layers", "n_layers", 2), ("reg_weight", "reg_weight", 1e-4))),
    "layergcn": Pair("layergcn.LayerGCN", False, (("n_layers", "n_layers", 4), ("reg_weight", "reg_weight", 1e-4),
                                                  ("dropout", "dropout", 0.1))),
    "freedom": Pair("freedom.FREEDOM", True, (("feat_embed_dim", "feat_embed_dim", 64), ("knn_k", "knn_k", 10),
                                              ("mm_image_weight", "mm_image_weight", 0.1),
                                              ("n_ui_layers", "n_ui_layers", 2), ("n_mm_layers", "n_mm_layers", 1),
                                              ("dropout", "dropout", 0.8), ("reg_weight", "reg_weight", 0.0)),
                    {"lambda_coeff": 0.9}),
    "bm3": Pair("bm3.BM3", True, (("n_layers", "n_layers", 1), ("dropout", "dropout", 0.5),
                                  ("reg_weight", "reg_weight", 0.1), ("cl_weight", "cl_weight", 2.0)),
                {"use_neg_sampling": False}),  # MMRec's BM3 draws no negatives (its yaml)
    "mmgcn": Pair("mmgcn.MMGCN", True, (("n_layers", "n_layers", 2), ("reg_weight", "reg_weight", 1e-4))),
    "grcn": Pair("grcn.GRCN", True, (("latent_dim", "latent_embedding", 64), ("n_routing", "n_layers", 3),
                                     ("reg_weight", "reg_weight", 1e-4))),
    "lattice": Pair("lattice.LATTICE", True, (("feat_embed_dim", "feat_embed_dim", 64), ("knn_k", "knn_k", 10),
                                              ("lambda_coeff", "lambda_coeff", 0.9), ("n_layers", "n_layers", 1),
                                              ("reg_weight", "reg_weight", 1e-4)),
                    {"cf_model": "lightgcn", "weight_size": [64, 64]}),
    "mgcn": Pair("mgcn.MGCN", True, (("knn_k", "knn_k", 10), ("n_ui_layers", "n_ui_layers", 2),
                                     ("n_layers", "n_layers", 1), ("reg_weight", "reg_weight", 1e-4),
                                     ("cl_weight", "cl_loss", 0.01))),
    "lgmrec": Pair("lgmrec.LGMRec", True, (("n_ui_layers", "n_ui_layers", 2), ("n_mm_layers", "n_mm_layers", 2),
                                           ("n_hyper_layers", "n_hyper_layer", 1), ("hyper_num", "hyper_num", 4),
                                           ("keep_rate", "keep_rate", 0.5), ("alpha", "alpha", 0.3),
                                           ("cl_weight", "cl_weight", 1e-4), ("reg_weight", "reg_weight", 1e-6))),
    "smore": Pair("smore.SMORE", True, (("n_ui_layers", "n_ui_layers", 3), ("n_layers", "n_layers", 1),
                                        ("knn_k", "image_knn_k", 10), ("reg_weight", "reg_weight", 1e-5),
                                        ("cl_weight", "cl_loss", 0.01), ("dropout", "dropout_rate", 0.0)),
                  {"text_knn_k": 10}),  # one knn_k in robustrec: both of MMRec's are 10
}
COMMON = {"embedding_dim": 64, "batch_size": 2048, "lr": 1e-3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mmrec-src", required=True, help="MMRec's src folder (commit e775373)")
    parser.add_argument("--mmrec-path", default="", help="extra folder on MMRec's sys.path (torch_geometric)")
    parser.add_argument("--mmrec-python", default=sys.executable, help="interpreter for MMRec's workers")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated, from: " + ",".join(MODELS))
    parser.add_argument("--threads", default="1,2", help="comma-separated torch thread counts (default 1,2)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per worker (default 1)")
    parser.add_argument("--max-batches", type=int, default=15,
                        help="time this many batches per epoch and scale to the epoch; 0: whole epochs")
    parser.add_argument("--warmup-batches", type=int, default=3, help="untimed batches first (default 3)")
    parser.add_argument("--data-dir", default="/work/shared/datasets", help="folder holding baby/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha1", type=float, default=1.0)
    parser.add_argument("--alpha2", type=float, default=0.1)
    parser.add_argument("--beta", type=int, default=3)
    parser.add_argument("--no-mg", action="store_true", help="skip robustrec's Mirror Gradient worker")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    parser.add_argument("--worker", nargs=3, metavar=("SIDE", "MODEL", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.max_batches < 0 or args.warmup_batches < 0:
        parser.error("--epochs must be >= 1, --max-batches and --warmup-batches >= 0")
    if args.max_batches and args.max_batches % args.beta:
        parser.error("--max-batches must be 0 or a multiple of --beta (so mirror batches are sampled evenly)")
    return args


# --- timing shared by both workers ----------------------------------------------------------
class EpochTimer:
    """CPU and wall seconds of one epoch: the start (pre-epoch + first fetch) and every batch."""

    def __init__(self, n_batches: int, max_batches: int, is_mirror) -> None:
        self.n_batches, self.max_batches, self.is_mirror = n_batches, max_batches, is_mirror
        self.start = (0.0, 0.0)
        self.batches: list[tuple[int, float, float]] = []  # (index, cpu, wall)

    @staticmethod
    def now() -> tuple[float, float]:
        return time.process_time(), time.perf_counter()

    def estimate(self) -> dict:
        """Seconds per whole epoch: measured if every batch ran, else scaled per batch kind."""
        out = {"batches_timed": len(self.batches), "batches_per_epoch": self.n_batches}
        for k, key in ((0, "cpu_s"), (1, "wall_s")):
            total = self.start[k]
            for mirror in (True, False):
                timed = [b[k + 1] for b in self.batches if self.is_mirror(b[0]) == mirror]
                n_all = sum(1 for i in range(self.n_batches) if self.is_mirror(i) == mirror)
                if timed:
                    total += sum(timed) * (n_all / len(timed) if len(self.batches) < self.n_batches else 1.0)
            out[key] = total
        # MG / plain inside this one process: its own plain batches stand for the plain epoch, so
        # the speed differences between processes (±15% run to run) drop out. A mirror batch is a
        # plain one plus an extra step of mean cost m - p, measured on batches after the first
        # (LATTICE rebuilds its item graph in an epoch's first batch, which is a mirror batch)
        later = [b for b in self.batches if b[0] > 0]
        mirror = [b[1] for b in later if self.is_mirror(b[0])]
        plain = [b[1] for b in later if not self.is_mirror(b[0])]
        if mirror and plain and self.batches[0][0] == 0:
            extra = sum(mirror) / len(mirror) - sum(plain) / len(plain)
            n_mirror = sum(1 for i in range(self.n_batches) if self.is_mirror(i))
            first = self.batches[0][1] - (extra if self.is_mirror(0) else 0.0)
            plain_epoch = self.start[0] + first + (self.n_batches - 1) * sum(plain) / len(plain)
            out["in_run_mg_over_plain"] = (plain_epoch + n_mirror * extra) / plain_epoch
        return out


def timed_epoch(start_epoch, step, n_batches: int, max_batches: int, is_mirror) -> dict:
    """Run ``start_epoch()`` (returns the batch iterator) and ``step(index, batch)`` per batch;
    a batch's time includes its fetch, except the first fetch, which counts with the start."""
    timer = EpochTimer(n_batches, max_batches, is_mirror)
    c0, w0 = EpochTimer.now()
    iterator = start_epoch()
    for index in range(min(max_batches, n_batches) if max_batches else n_batches):
        batch = next(iterator)
        if index == 0:
            c1, w1 = EpochTimer.now()
            timer.start, c0, w0 = (c1 - c0, w1 - w0), c1, w1
        step(index, batch)
        c2, w2 = EpochTimer.now()
        timer.batches.append((index, c2 - c0, w2 - w0))
        c0, w0 = c2, w2
    getattr(iterator, "close", lambda: None)()
    return timer.estimate()


def run_epochs(args, start_epoch, step, n_batches, is_mirror) -> dict:
    if args.warmup_batches:
        iterator = start_epoch()
        for index in range(min(args.warmup_batches, n_batches)):
            step(index, next(iterator))
        getattr(iterator, "close", lambda: None)()
    epochs = [timed_epoch(start_epoch, step, n_batches, args.max_batches, is_mirror)
              for _ in range(args.epochs)]
    out = {"epochs": epochs, "cpu_s": sum(e["cpu_s"] for e in epochs) / len(epochs),
           "wall_s": sum(e["wall_s"] for e in epochs) / len(epochs)}
    within = [e["in_run_mg_over_plain"] for e in epochs if "in_run_mg_over_plain" in e]
    if within:
        out["in_run_mg_over_plain"] = sum(within) / len(within)
    return out


# --- robustrec worker -----------------------------------------------------------------------
def robustrec_worker(args, name: str, mode: str) -> dict:
    import torch

    from robustrec.data import load_dataset
    from robustrec.data.sampler import BPRSampler
    from robustrec.models import build_model
    from robustrec.runtime import tune_allocator
    from robustrec.training import TrainConfig
    from robustrec.training.optim import build_optimizer
    from robustrec.training.trainer import deterministic

    tune_allocator()  # as the command line does
    pair = MODELS[name]
    data = load_dataset("baby", args.work_dir, None if pair.multimodal else ())
    params = {"embedding_dim": COMMON["embedding_dim"], **{r: v for r, _, v in pair.shared}}
    model = build_model(name, data, params=params, seed=args.seed)
    config = TrainConfig(model=name, dataset="baby", epochs=1, batch_size=COMMON["batch_size"], lr=COMMON["lr"],
                         seed=args.seed, mg=mode == "mg", alpha1=args.alpha1, alpha2=args.alpha2, beta=args.beta)
    strategy = config.strategy()
    torch.manual_seed(args.seed)
    sampler = BPRSampler(data, config.batch_size, seed=args.seed)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config.lr, config.weight_decay)
    deterministic().__enter__()  # as Trainer.fit

    def start_epoch():  # Trainer._epoch
        model.train()
        model.pre_epoch()
        return iter(sampler.epoch())

    def step(index, batch):
        loss = strategy.step(model, optimizer, batch, index)
        if loss != loss:
            raise FloatingPointError("NaN loss")

    mirror = (lambda i: i % args.beta == 0) if mode == "mg" else (lambda i: False)
    return {"params": params, **run_epochs(args, start_epoch, step, len(sampler), mirror)}


# --- MMRec worker ---------------------------------------------------------------------------
class _Config(dict):
    """MMRec's Config answers None for a key it lacks."""

    def __getitem__(self, key):
        return dict.get(self, key)


def mmrec_config(args, name: str) -> _Config:
    import yaml

    import torch

    src = Path(args.mmrec_src)
    pair = MODELS[name]
    cls_name = pair.mmrec.split(".")[1]
    config = _Config()
    for path in (src / "configs" / "overall.yaml", src / "configs" / "dataset" / "baby.yaml",
                 src / "configs" / "model" / f"{cls_name}.yaml"):
        config.update(yaml.safe_load(path.read_text()) or {})
    config.update({"model": cls_name, "dataset": "baby", "data_path": str(args.work_dir) + os.sep,
                   "device": torch.device("cpu"), "use_gpu": False, "seed": args.seed,
                   "embedding_size": COMMON["embedding_dim"], "train_batch_size": COMMON["batch_size"],
                   "learning_rate": COMMON["lr"], "learner": "adam", "weight_decay": 0.0,
                   "is_multimodal_model": pair.multimodal, "end2end": False})
    config.update({key: value for _, key, value in pair.shared})
    config.update(pair.mmrec_only)
    for key, value in list(config.items()):  # a grid-search list left in a yaml: its first value
        if isinstance(value, list) and key not in ("metrics", "topk", "hyper_parameters", "weight_size",
                                                   "learning_rate_scheduler"):
            config[key] = value[0]
    return config


def mmrec_worker(args, name: str, mode: str) -> dict:
    import importlib
    import random
    import types

    import numpy as np
    import torch

    sys.path[:0] = [str(Path(args.mmrec_src))] + ([args.mmrec_path] if args.mmrec_path else [])
    stub = types.ModuleType("utils.data_utils")  # torchvision image helpers: unused by these models
    for attr in ("ImageResize", "ImagePad", "image_to_tensor", "load_decompress_img_from_lmdb_value"):
        setattr(stub, attr, None)
    sys.modules["utils.data_utils"] = stub
    try:
        import torch_scatter  # noqa: F401
    except ImportError:  # MMRec's utils.get_sparse_laplacian (MGCN, SMORE: graph set-up, not the epoch)
        scatter = types.ModuleType("torch_scatter")

        def scatter_add(src, index, dim=0, dim_size=None):
            assert dim == 0, "the stand-in covers dim 0 only"
            size = int(index.max()) + 1 if dim_size is None else dim_size
            return torch.zeros(size, *src.shape[1:], dtype=src.dtype).index_add_(0, index, src)

        scatter.scatter_add = scatter_add
        sys.modules["torch_scatter"] = scatter
    import common  # noqa: F401  (MMRec's LayerGCN imports models.common.*)
    sys.modules.setdefault("models.common", common)
    for sub in ("abstract_recommender", "loss", "init"):
        sys.modules.setdefault(f"models.common.{sub}", importlib.import_module(f"common.{sub}"))

    import scipy.sparse as sp

    if not hasattr(sp.dok_matrix, "_update"):  # removed in SciPy 1.11; MMRec builds its graphs with it
        sp.dok_matrix._update = lambda self, entries: self._dict.update(entries)
    if not torch.cuda.is_available():  # MMRec's GRCN puts a zero on the GPU: keep it on the CPU here
        torch.Tensor.cuda = lambda self, *a, **k: self
    from utils.dataloader import TrainDataLoader
    from utils.dataset import RecDataset

    config = mmrec_config(args, name)
    random.seed(args.seed), np.random.seed(args.seed), torch.manual_seed(args.seed)  # MMRec's init_seed
    dataset = RecDataset(config)
    str(dataset)  # as quick_start, which logs it: sets inter_num, which the loader reads
    train_dataset = dataset.split()[0]
    str(train_dataset)
    train_data = TrainDataLoader(config, train_dataset, batch_size=config["train_batch_size"], shuffle=True)
    train_data.pretrain_setup()
    module, cls_name = MODELS[name].mmrec.split(".")
    model = getattr(importlib.import_module(f"models.{module}"), cls_name)(config, train_data)
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"], weight_decay=0.0)

    def start_epoch():  # Trainer.fit + Trainer._train_epoch
        train_data.pr = train_data.inter_pr = 0  # a capped epoch left the pointer mid-way
        model.pre_epoch_processing()
        model.train()
        return iter(train_data)

    def step(index, interaction):  # the body of Trainer._train_epoch (plain)
        optimizer.zero_grad()
        interaction.clone()  # MMRec keeps a copy for its mirror step on every batch
        losses = model.calculate_loss(interaction)
        loss = sum(losses) if isinstance(losses, tuple) else losses
        loss.item()
        if torch.isnan(loss):
            raise FloatingPointError("NaN loss")
        loss.backward()
        optimizer.step()
        loss.detach()

    shown = {k: config[k] for k in sorted({key for _, key, _ in MODELS[name].shared} | set(MODELS[name].mmrec_only)
                                          | {"embedding_size", "train_batch_size", "learning_rate"})}
    return {"params": {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in shown.items()},
            **run_epochs(args, start_epoch, step, len(train_data), lambda i: False)}


# --- parent ---------------------------------------------------------------------------------
def prepare_work_dir(args, work: Path) -> None:
    """``work/baby``: links to the real interactions and random Baby-shaped feature files."""
    import numpy as np

    baby = work / "baby"
    baby.mkdir()
    for source in Path(args.data_dir, "baby").iterdir():
        (baby / source.name).symlink_to(source.resolve())
    n_items = sum(1 for _ in open(Path(args.data_dir, "baby", "i_id_mapping.csv"))) - 1
    rng = np.random.default_rng(args.seed)
    for modality, dim in BABY_FEATURE_DIMS.items():
        np.save(baby / MMREC_FEATURE_FILES[modality], rng.standard_normal((n_items, dim), dtype=np.float32))


def spawn(args, side: str, name: str, mode: str, threads: int, work: Path) -> dict:
    python = args.mmrec_python if side == "mmrec" else sys.executable
    command = [python, str(Path(__file__).resolve()), "--worker", side, name, mode, "--work-dir", str(work),
               "--mmrec-src", args.mmrec_src, "--mmrec-path", args.mmrec_path, "--epochs", str(args.epochs),
               "--max-batches", str(args.max_batches), "--warmup-batches", str(args.warmup_batches),
               "--seed", str(args.seed), "--alpha1", str(args.alpha1), "--alpha2", str(args.alpha2),
               "--beta", str(args.beta), "--threads", str(threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=work)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    try:
        return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load ?"


def fmt(value, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        import torch

        side, name, mode = args.worker
        torch.set_num_threads(int(args.threads))
        result = (mmrec_worker if side == "mmrec" else robustrec_worker)(args, name, mode)
        print(json.dumps({"side": side, "model": name, "mode": mode, **result}))
        return 0
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        print(f"error: unknown model(s) {unknown}; known: {', '.join(MODELS)}", file=sys.stderr)
        return 2
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    import textwrap

    head = (f"MMRec ({args.mmrec_src}) vs robustrec ({REPO}); Baby interactions, random features "
            f"(timing only); batch {COMMON['batch_size']}, embedding {COMMON['embedding_dim']}, Adam lr "
            f"{COMMON['lr']:g}; MG beta={args.beta} alpha1={args.alpha1:g} alpha2={args.alpha2:g}; "
            f"{args.epochs} timed epoch(s), " + (f"{args.max_batches} batches each scaled to the epoch"
                                                if args.max_batches else "whole epochs")
            + f", after {args.warmup_batches} warm-up batches.")
    print(textwrap.fill(head, 79))
    for name in models:
        pair = MODELS[name]
        shared = ", ".join(f"{r}={v:g}<->{k}" if isinstance(v, float) else f"{r}={v}<->{k}" for r, k, v in pair.shared)
        extra = ("; MMRec only: " + ", ".join(f"{k}={v}" for k, v in pair.mmrec_only.items())) if pair.mmrec_only else ""
        print(textwrap.fill(f"{name}: MMRec models/{pair.mmrec}; {shared}{extra}", 79,
                            initial_indent="  ", subsequent_indent="    "))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-vs-mmrec-") as tmp:
        work = Path(tmp)
        prepare_work_dir(args, work)
        for n_threads in threads:
            print(f"\n{n_threads} thread(s): CPU seconds per epoch; wall ratio; load after")
            print(f"{'model':<9}{'MMRec':>8}{'robust':>8}{'ratio':>7}{'MG':>8}{'MG/pl':>7}{'in-run':>7}{'wall r':>8}"
                  "  load")
            for name in models:
                before = load()
                row = {"model": name, "threads": n_threads, "load_before": before}
                modes = [("mmrec", "plain"), ("robustrec", "plain")] + ([] if args.no_mg else [("robustrec", "mg")])
                for side, mode in modes:
                    row[f"{side}_{mode}"] = spawn(args, side, name, mode, n_threads, work)
                row["load_after"] = load()
                mm, rr, mg = (row.get(k, {}) for k in ("mmrec_plain", "robustrec_plain", "robustrec_mg"))
                row["ratio_cpu"] = rr.get("cpu_s") / mm["cpu_s"] if mm.get("cpu_s") and rr.get("cpu_s") else None
                row["ratio_wall"] = rr.get("wall_s") / mm["wall_s"] if mm.get("wall_s") and rr.get("wall_s") else None
                row["mg_over_plain_cpu"] = mg.get("cpu_s") / rr["cpu_s"] if mg.get("cpu_s") and rr.get("cpu_s") else None
                row["mg_over_plain_in_run"] = mg.get("in_run_mg_over_plain")
                rows.append(row)

                def cell(r):
                    return fmt(r.get("cpu_s")) if "cpu_s" in r else ("error" if r else "—")

                print(f"{name:<9}{cell(mm):>8}{cell(rr):>8}{fmt(row['ratio_cpu']):>7}{cell(mg):>8}"
                      f"{fmt(row['mg_over_plain_cpu']):>7}{fmt(row['mg_over_plain_in_run']):>7}"
                      f"{fmt(row['ratio_wall']):>8}  "
                      f"{row['load_after'].split()[1]}", flush=True)
                for key in ("mmrec_plain", "robustrec_plain", "robustrec_mg"):
                    if "error" in row.get(key, {}):
                        print(textwrap.shorten(f"  {key}: {row[key]['error']}", 79), flush=True)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
