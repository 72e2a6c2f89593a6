"""``robustrec train``: train one model, with or without Mirror Gradient, and save the run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.render import console, metrics_table

DEFAULT_CHECKPOINTS = "checkpoints"


def train(
    model: str = typer.Option("lightgcn", help="Model name (see `robustrec models`)."),
    dataset: str = typer.Option("synthetic", help="Dataset name: 'synthetic' (built in) or a folder under --data-dir."),
    data_dir: str = typer.Option("data", help="Folder holding <dataset>/<dataset>.inter (MMRec layout)."),
    modalities: str = typer.Option(
        "", help="Item modalities a multimodal model uses, comma-separated (e.g. text,audio: the "
                 "<modality>_feat.npy files of the dataset); default: all the dataset has."),
    mg: bool = typer.Option(False, "--mg/--no-mg", help="Train with Mirror Gradient."),
    mg_form: str = typer.Option("optimizer", help="MG form: 'optimizer' (authors' code) or 'literal' (Algorithm 1)."),
    alpha1: float = typer.Option(1.0, help="MG α1 (first step scale)."),
    alpha2: float = typer.Option(0.1, help="MG α2 (mirror step scale), 0 < α2 < α1."),
    beta: int = typer.Option(3, help="MG interval β: batches 0, β, 2β, ... of each epoch are mirror steps."),
    optimizer: str = typer.Option("adam", help="adam, sgd, rmsprop or adagrad."),
    lr: float = typer.Option(1e-3, help="Learning rate."),
    weight_decay: float = typer.Option(0.0, help="Optimizer weight decay."),
    batch_size: int = typer.Option(2048, help="Training batch size."),
    epochs: int = typer.Option(1000, help="Maximum number of epochs."),
    patience: int = typer.Option(20, help="Stop after this many epochs without a better validation metric."),
    seed: int = typer.Option(0, help="Seed for weights and negative sampling."),
    step: str = typer.Option("plain", help="Step strategy: plain, mg (= --mg), sam, asam (adaptive SAM) or sgbd "
                                            "(sharpness-aware MG); --mg composes with plain/sam/asam."),
    sam_rho: Optional[float] = typer.Option(
        None, "--rho", "--sam-rho", help="ρ of sam/asam/sgbd (defaults 0.05 / 0.5 / 0.05); with --step plain, "
                                         "ρ > 0 means SAM steps (the older --sam-rho)."),
    adversarial: str = typer.Option("none", help="Adversarial training: none or amr (AMR, Tang et al. TKDE 2019: "
                                    "adds the BPR loss at FGSM-perturbed item features; composes with --mg/--step)."),
    adv_eps: float = typer.Option(0.1, help="AMR budget ε: each item feature row moves by ε × its modality's mean "
                                  "row norm (L2)."),
    adv_reg: float = typer.Option(1.0, help="AMR weight λ of the adversarial loss."),
    valid_metric: str = typer.Option("recall@20", help="Early-stopping metric on validation."),
    param: list[str] = typer.Option([], "--param", "-p", help="Model hyper-parameter key=value (repeatable)."),
    checkpoint_dir: Path = typer.Option(Path(DEFAULT_CHECKPOINTS), help="Root folder for run folders."),
    name: str = typer.Option("", help="Run folder name (default <model>-<dataset>[-mg])."),
    overwrite: bool = typer.Option(False, help="Replace an existing run folder of the same name."),
    resume: Optional[bool] = typer.Option(
        None, "--resume/--no-resume",
        help="Continue the unfinished run of this name from its last finished epoch (the default "
             "when one exists with the same settings); --no-resume discards it and starts over."),
    threads: int = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a model and save weights, config, metrics and history under CHECKPOINT_DIR/NAME."""
    from robustrec.config import parse_assignments
    from robustrec.paths import check_folder_name, check_output_dir
    from robustrec.training import TrainConfig

    from robustrec.training.config import DEFAULT_RHO

    if sam_rho is None:
        sam_rho = DEFAULT_RHO.get(step, 0.0)
    if step in ("mg", "sgbd"):
        mg = True
    config = TrainConfig(model=model, dataset=dataset, data_dir=str(Path(data_dir).resolve()),
                         model_params=parse_assignments(param), modalities=parse_modalities(modalities), optimizer=optimizer, lr=lr,
                         weight_decay=weight_decay, batch_size=batch_size, epochs=epochs, patience=patience,
                         seed=seed, mg=mg, mg_form=mg_form, alpha1=alpha1, alpha2=alpha2, beta=beta,
                         sam_rho=sam_rho, step="plain" if step == "mg" else step, adversarial=adversarial,
                         adv_eps=adv_eps, adv_reg=adv_reg, valid_metric=valid_metric).validate()
    check_output_dir(checkpoint_dir, "--checkpoint-dir")
    run_dir = checkpoint_dir / (check_folder_name(name, "--name") if name else default_run_name(config))
    if run_dir.exists() and not overwrite:
        from robustrec.errors import CheckpointError

        raise CheckpointError(f"{run_dir} already exists; pass --name NAME or --overwrite")
    run_training(config, run_dir, overwrite, threads, quiet, resume)


def parse_modalities(text: str) -> list[str] | None:
    """``--modalities a,b`` as a list (None when not given)."""
    if not text.strip():
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        from robustrec.errors import ConfigError

        raise ConfigError(f"--modalities must be comma-separated names like text,audio, got {text!r}")
    return names


def default_run_name(config) -> str:
    """<model>-<dataset>, then -sam/-asam/-sgbd for those steps, -amr with AMR adversarial
    training, then -mg with Mirror Gradient."""
    step = f"-{config.step}" if config.step in ("sam", "asam", "sgbd") else ""
    amr = "-amr" if config.adversarial == "amr" else ""
    return f"{config.model}-{config.dataset}{step}{amr}" + ("-mg" if config.mg and config.step != "sgbd" else "")


def partial_dir(run_dir: Path) -> Path:
    """Where the unfinished run of ``run_dir`` keeps its resumable state."""
    return run_dir.parent / f".{run_dir.name}.partial"


def run_training(config, run_dir: Path, overwrite: bool, threads: int, quiet: bool,
                 resume: bool | None = None) -> None:
    """Train and save the run; ``resume``: True/None continue an unfinished run of the same
    name (None: only if its settings match, True: also say so when there is none), False
    discards it."""
    import dataclasses

    import torch

    from robustrec.checkpoints import save_run
    from robustrec.cli.progress import KeptOnInterrupt, train_callbacks
    from robustrec.data import load_dataset
    from robustrec.models import build_model, get_model_class
    from robustrec.models.base import resolve_modalities
    from robustrec.training import Trainer
    from robustrec.training.state import clear_state, differences, has_state, mismatch_error, read_state_info

    if threads > 0:
        torch.set_num_threads(threads)
    cls = get_model_class(config.model)
    data = load_dataset(config.dataset, config.data_dir, config.modalities if cls.multimodal else ())
    chosen = resolve_modalities(cls, data, config.modalities)
    data = data.select_modalities(chosen)
    config = dataclasses.replace(config, modalities=list(chosen))  # recorded: reloading uses exactly these
    state_dir = partial_dir(run_dir)
    if resume is False and state_dir.exists():
        clear_state(state_dir)
        console.print(f"discarded the unfinished run in {state_dir}")
    elif has_state(state_dir):
        info = read_state_info(state_dir)
        diffs = differences(info["config"], dataclasses.asdict(config))
        if diffs:
            raise mismatch_error(state_dir, diffs)
        console.print(f"resuming [bold]{run_dir.name}[/] after epoch {info['epoch']} of at most {config.epochs} "
                      f"(state in {state_dir}; --no-resume starts over)")
    elif resume:
        console.print(f"nothing to resume in {state_dir}; starting from epoch 1")
    model = build_model(config.model, data, config.model_params, seed=config.seed, modalities=chosen)
    strategy = config.strategy_name()
    console.print(f"[bold]{config.model}[/] on [bold]{data.name}[/] ({data.n_users} users, {data.n_items} items, "
                  f"{data.n_train} train interactions), {strategy} steps, {config.optimizer} lr {config.lr}")
    if chosen:
        console.print("modalities: " + ", ".join(_modality_note(data, m) for m in chosen))
    with train_callbacks(console, config.valid_metric, quiet) as callbacks:
        result = Trainer(config, [*callbacks, KeptOnInterrupt(state_dir)]).fit(model, data, state_dir)
    save_run(run_dir, model, config, data, result, overwrite=overwrite)
    clear_state(state_dir)
    stop = "early stop" if result.stopped_early else "max epochs"
    console.print(metrics_table(f"best epoch {result.best_epoch} of {len(result.history)} ({stop})",
                                {"valid": result.valid.summary(), "test": result.test.summary()}))
    console.print(f"saved [bold]{run_dir}[/]")


def _modality_note(data, modality: str) -> str:
    """``text (384-d, 819/1,994 items with content)``: what the model reads of one modality."""
    dim, covered = data.features[modality].shape[1], int(data.coverage(modality).sum())
    content = "" if covered == data.n_items else f", {covered:,}/{data.n_items:,} items with content"
    return f"{modality} ({dim}-d{content})"
