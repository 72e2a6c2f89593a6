"""``robustrec train``: train one model, with or without Mirror Gradient, and save the run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.options import DEVICE, MAX_MEMORY
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
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a model and save weights, config, metrics and history under CHECKPOINT_DIR/NAME."""
    from contextlib import nullcontext

    from robustrec.locks import run_lock
    from robustrec.paths import check_folder_name, check_output_dir

    early = nullcontext()
    if name:  # the run folder is known before torch loads: a second train of it stops here, at once
        check_output_dir(checkpoint_dir, "--checkpoint-dir")
        early = run_lock(checkpoint_dir / check_folder_name(name, "--name"))
    with early:
        from robustrec.config import parse_assignments
        from robustrec.device import resolve_device
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
        target = resolve_device(device)
        check_output_dir(checkpoint_dir, "--checkpoint-dir")
        from robustrec.studies.training import default_run_name

        run_dir = checkpoint_dir / (check_folder_name(name, "--name") if name else default_run_name(config))
        if run_dir.exists() and not overwrite:
            from robustrec.errors import CheckpointError

            raise CheckpointError(f"{run_dir} already exists; pass --name NAME or --overwrite")
        run_training(config, run_dir, overwrite, threads, quiet, resume, device=target)


def parse_modalities(text: str) -> list[str] | None:
    """``--modalities a,b`` as a list (None when not given)."""
    if not text.strip():
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        from robustrec.errors import ConfigError

        raise ConfigError(f"--modalities must be comma-separated names like text,audio, got {text!r}")
    return names


def run_training(config, run_dir: Path, overwrite: bool, threads: int, quiet: bool,
                 resume: bool | None = None, device=None) -> None:
    """Train and save the run (robustrec.studies.training.train_run) with a progress bar and tables;
    ``device``: where to train (None: the CPU), recorded in meta.json, not in the config."""
    from robustrec.cli.progress import KeptOnInterrupt, train_callbacks
    from robustrec.studies.training import partial_dir, train_run

    def note(line: str) -> None:
        console.print(line, highlight=False, markup=False)

    with train_callbacks(console, config.valid_metric, quiet) as callbacks:
        outcome = train_run(config, run_dir, callbacks=[*callbacks, KeptOnInterrupt(partial_dir(run_dir))],
                            overwrite=overwrite, resume=resume, threads=threads, note=note, device=device)
    result = outcome.result
    stop = "early stop" if result.stopped_early else "max epochs"
    console.print(metrics_table(f"best epoch {result.best_epoch} of {len(result.history)} ({stop})",
                                {"valid": result.valid.summary(), "test": result.test.summary()}))
    console.print(f"saved [bold]{run_dir}[/]")
