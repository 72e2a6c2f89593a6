"""``robustrec perturb``: inference-time stress tests of trained checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.options import DEVICE, MAX_MEMORY
from robustrec.cli.render import console

app = typer.Typer(help="Stress trained checkpoints with inference-time perturbations.", no_args_is_help=True)

# arguments and options both stress tests take
CHECKPOINTS = typer.Argument(
    None, metavar="[CHECKPOINT]...", show_default=False,
    help="Run folders written by `robustrec train` (same data). None: the newest run under "
         "--checkpoint-dir and its plain/MG twin.")
CHECKPOINT_DIR = typer.Option(Path("checkpoints"), help="Where to look for runs when no CHECKPOINT is given.")
SEED = typer.Option(0, help="Root seed; repeat seeds are derived from it.")
METRIC = typer.Option("recall", help="Metric shown in the tables: recall, precision, map, ndcg.")
CUTOFF = typer.Option(5, help="Cut-off shown in the tables (all K are stored in the report).")
SPLIT = typer.Option("test", help="Split to evaluate: test or valid.")
REPORT_DIR = typer.Option(Path("reports"), help="Where the JSON report (and CSV/PNG) go.")
CSV = typer.Option(False, "--csv", help="Also write a CSV next to the report.")
PLOT = typer.Option(False, "--plot", help="Also write a PNG severity curve next to the report.")
DATA_DIR = typer.Option("", help="Where the checkpoints' dataset lives, if it moved.")
THREADS = typer.Option(0, min=0, help="Torch CPU threads (0 = torch default).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
CACHE_DIR = typer.Option(None, help="Root of the cache of encoded texts (default $ROBUSTREC_CACHE, else "
                         "~/.cache/robustrec); the data folder is never written.")
TEXT_CACHE = typer.Option(True, "--text-cache/--no-text-cache", help="Reuse texts encoded by earlier runs "
                          "(keyed by the encoder's files and versions) and keep the new ones.")


def pick_checkpoints(checkpoints: list[Path] | None, checkpoint_dir: Path) -> list[Path]:
    """The named run folders, or the newest run under ``checkpoint_dir`` and its twin (said)."""
    if checkpoints:
        return checkpoints
    from robustrec.checkpoints import newest_runs

    chosen = newest_runs(checkpoint_dir)
    console.print(f"no CHECKPOINT given: using the newest run{'s' if len(chosen) > 1 else ''} under "
                  f"{checkpoint_dir}: {', '.join(path.name for path in chosen)}"
                  + ("" if len(chosen) > 1 else " (no plain/MG twin of it found)"))
    return chosen


@app.command("noise")
def noise(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    sigma: str = typer.Option("1e-3", help="Noise std σ, or a comma list for a severity sweep (paper: 1e-3)."),
    repeats: int = typer.Option(10, help="Noise draws per σ (paper: 10)."),
    target: str = typer.Option("all", help="Embedding tables to perturb: all, user or item."),
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    flatness: bool = typer.Option(True, "--flatness/--no-flatness", help="Measure training-loss flatness."),
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = QUIET,
) -> None:
    """Add Gaussian noise N(0, σ²) to the checkpoints' embedding tables, re-evaluate R times, report."""
    from robustrec.studies.stress import NoiseStress

    spec = NoiseStress(sigma=sigma, target=target, flatness=flatness).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


@app.command("adversarial")
def adversarial(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    target: str = typer.Option("features", help="What the attack moves: features (item feature rows) or "
                               "embeddings (ID embedding table rows)."),
    eps: str = typer.Option("0.1", help="Budget ε per row, relative (L2 radius = ε × the mean row norm of the "
                            "feature matrix / table), or a comma list for a severity sweep."),
    steps: int = typer.Option(1, help="1 = FGSM; more = PGD with that many steps of 2.5·ε/steps, projected."),
    repeats: int = typer.Option(1, help="Attacks per ε, each on a fresh seeded sample of training triplets."),
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    quiet: bool = QUIET,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
) -> None:
    """Worst-case stress: FGSM/PGD on features or embeddings maximising each model's training loss; re-evaluate.

    Not a random draw: the direction increases the model's own training loss on a seeded sample
    of 4,096 training triplets. Models the target cannot reach (features on an ID-only model) are
    reported as unaffected by construction.
    """
    from robustrec.studies.stress import AdversarialStress

    spec = AdversarialStress(target=target, eps=eps, steps=steps).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


@app.command("caption")
def caption(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    rate: str = typer.Option("0.01", help="Share of items whose text gets a caption, or a comma list (paper: 0.01)."),
    repeats: int = typer.Option(5, help="Item draws per rate."),
    position: str = typer.Option("random-sentence", help="Where the caption goes: random-sentence "
                                 "(a random sentence boundary, i.e. inserted into the text), append or prepend."),
    captioner: str = typer.Option("", help="Captioner id of the cache (default: synthetic-reference on the "
                                  "synthetic data, else blip2:Salesforce/blip2-opt-2.7b)."),
    captions: Path = typer.Option(None, help="Caption cache file (default <data>/<name>/captions/<captioner>.json)."),
    text_encoder: str = typer.Option("all-MiniLM-L6-v2", help="Sentence encoder that made text_feat.npy."),
    cache_dir: Path = CACHE_DIR,
    text_cache: bool = TEXT_CACHE,
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = QUIET,
) -> None:
    """Insert image captions into item texts at RATE, re-encode them, re-evaluate R times, report."""
    from robustrec.studies.stress import CaptionStress

    spec = CaptionStress(rate=rate, position=position, captioner=captioner, captions=str(captions or ''),
                         text_encoder=text_encoder, cache_dir=str(cache_dir or ""), text_cache=text_cache).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


@app.command("modality")
def modality(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    missing: str = typer.Option(None, metavar="MODALITY", help="Treat this modality's feature row as missing "
                                "for a seeded share --rate of items and replace it by --fill."),
    swap: str = typer.Option(None, metavar="MODALITY", help="Give a seeded share --rate of items the row of "
                             "another chosen item (random derangement)."),
    noise: str = typer.Option(None, metavar="MODALITY", help="Add N(0, (σ·scale)²) to every item's row; scale = "
                              "mean row L2 norm / √dim (the RMS entry)."),
    rate: str = typer.Option(None, help="Share of items hit by --missing/--swap, or a comma list (default 0.1)."),
    sigma: str = typer.Option(None, help="Noise std in units of the modality's RMS entry, or a comma list "
                              "(--noise; default 0.1)."),
    fill: str = typer.Option(None, help="--missing fill: zeros; mean (mean row of the items not missing; "
                             "default); neighbours (mean row of the --neighbour-k items nearest by cosine in "
                             "--neighbour-modality, among items not missing)."),
    neighbour_k: int = typer.Option(None, help="Neighbours averaged by --fill neighbours (default 10)."),
    neighbour_modality: str = typer.Option(None, help="Modality whose rows define neighbours for --fill "
                                           "neighbours (default: the model's first other modality)."),
    repeats: int = typer.Option(5, help="Draws per level."),
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = QUIET,
) -> None:
    """Modality faults: a modality missing (with a fill), swapped between items, or noisy; re-evaluate R times.

    Exactly one of --missing, --swap, --noise. Missing fills (Malitesta et al. CIKM 2024, DGMRec
    SIGIR 2025): zeros; mean = mean row of the items not missing; neighbours = mean row of the k
    items not missing that are most cosine-similar in another modality (ties to the lower id).
    Items: the first ⌊rate·n + ½⌋ of a seeded permutation. Models that do not use the modality,
    or whose scores ignore features at inference, are reported as unaffected by construction.
    """
    from robustrec.studies.stress import ModalityStress

    spec = ModalityStress(missing=missing, swap=swap, noise=noise, rate=rate, sigma=sigma, fill=fill,
                          neighbour_k=neighbour_k, neighbour_modality=neighbour_modality).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


@app.command("image")
def image(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    edit: str = typer.Option("blur", help="Photo edits, comma list, one report each: blur, jpeg, crop, color, "
                             "occlude, swap."),
    rate: str = typer.Option(None, help="Share of the items with a photo whose photo is edited, or a comma list "
                             "(default 0.1)."),
    radius: float = typer.Option(None, help="blur: Gaussian blur radius in pixels, 0..100 (default 4; 0 = none)."),
    quality: int = typer.Option(None, help="jpeg: JPEG quality 1..95 (default 10)."),
    crop_fraction: float = typer.Option(None, help="crop: share of the photo's area kept by a random window, "
                                        "resized back; (0, 1] (default 0.5; 1 = none)."),
    brightness: float = typer.Option(None, help="color: factor of ImageEnhance Brightness and Color, 0..4 "
                                     "(default 0.5; 1 = none)."),
    occlusion: float = typer.Option(None, help="occlude: share of the area under a grey patch at a random "
                                    "position, 0..1 (default 0.25; 0 = none)."),
    repeats: int = typer.Option(5, help="Draws per rate."),
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = QUIET,
) -> None:
    """Edit item photos (Pillow) at RATE, re-encode only those with the recorded encoder, re-evaluate R times.

    Needs image features made by `robustrec features extract` (features.json names the encoder).
    Items: the first ⌊rate·n + ½⌋ of a seeded permutation of the items with a readable photo; crop
    window and patch position are seeded per item; swap is a seeded derangement among the chosen
    items. Edited rows are encoded once per trial and reused for every checkpoint. Models that do
    not use image features at inference are reported as unaffected by construction.
    """
    from robustrec.studies.stress import ImageStress

    spec = ImageStress(edit=edit, rate=rate, radius=radius, quality=quality, crop_fraction=crop_fraction,
                       brightness=brightness, occlusion=occlusion).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


@app.command("text")
def text(
    checkpoints: list[Path] = CHECKPOINTS,
    checkpoint_dir: Path = CHECKPOINT_DIR,
    edit: str = typer.Option(..., help="keywords (stuff the catalogue's most frequent tags into the item's "
                             "categories), drop-description, drop-categories (remove that field) or swap (chosen "
                             "items exchange texts by a random derangement)."),
    rate: str = typer.Option("0.05", help="Share of the eligible items (items with a text; with the field, for "
                             "drop-*) that are edited, or a comma list."),
    keywords: int = typer.Option(None, help="--edit keywords: tags stuffed into each chosen item (default 3)."),
    keyword_pool: int = typer.Option(None, help="--edit keywords: draw the tags (seeded) from the top N of the "
                                     "ranking instead of taking the k most frequent the item lacks."),
    text_encoder: str = typer.Option(None, help="Encoder that made text_feat.npy when features.json records none "
                                     "(default all-MiniLM-L6-v2); checked on untouched items."),
    cache_dir: Path = CACHE_DIR,
    text_cache: bool = TEXT_CACHE,
    repeats: int = typer.Option(5, help="Draws per rate."),
    seed: int = SEED,
    metric: str = METRIC,
    k: int = CUTOFF,
    split: str = SPLIT,
    report_dir: Path = REPORT_DIR,
    csv: bool = CSV,
    plot: bool = PLOT,
    data_dir: str = DATA_DIR,
    threads: int = THREADS,
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = QUIET,
) -> None:
    """Edit real item texts (keyword stuffing, field removal, swap) at RATE, re-encode them, re-evaluate R times.

    The Mirror Gradient paper's information-adjustment risk on the dataset's own records: edited
    records are rebuilt into text by build_item_text and only edited texts are re-encoded, with the
    encoder recorded in features.json (else --text-encoder, checked against the stored rows).
    Items: the first ⌊rate·n + ½⌋ eligible ids of a seeded permutation. Models that do not read
    text features at inference are reported as unaffected by construction.
    """
    from robustrec.studies.stress import TextStress

    spec = TextStress(edit=edit, rate=rate, keywords=keywords, keyword_pool=keyword_pool,
                      text_encoder=text_encoder, cache_dir=str(cache_dir or ""), text_cache=text_cache).check()
    run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot, data_dir,
               threads, quiet, device)


def run_stress(spec, checkpoints, checkpoint_dir, repeats, seed, split, metric, k, report_dir, csv, plot,
               data_dir, threads, quiet, device) -> None:
    """Every ``perturb`` command: settings checked, checkpoints loaded, the spec run with a progress
    bar, its notes shown, then each report's tables and files."""
    import torch

    from robustrec.checkpoints import load_checkpoints
    from robustrec.device import resolve_device
    from robustrec.paths import check_output_dir
    from robustrec.studies.runner import StudySettings

    settings = StudySettings(repeats=repeats, seed=seed, split=split, metric=metric, k=k).validate()
    check_output_dir(report_dir, "--report-dir")
    chosen_device = resolve_device(device)
    if threads > 0:
        torch.set_num_threads(threads)
    loaded, data = load_checkpoints(pick_checkpoints(checkpoints, checkpoint_dir), data_dir=data_dir or None,
                                    device=chosen_device)
    outcome = _with_progress(lambda cbs: spec.run(loaded, data, settings, cbs, device=str(chosen_device)), quiet)
    for line in outcome.notes:
        console.print(line, highlight=False, markup=False)
    for report in outcome.reports:
        finish_report(report, report_dir, csv, plot)


def _with_progress(run, quiet: bool):
    from robustrec.cli.progress import RichStudyProgress, study_progress

    if quiet:
        return run([])
    with study_progress(console) as progress:
        return run([RichStudyProgress(progress)])


def finish_report(report: dict, report_dir: Path, csv: bool, plot: bool) -> None:
    """Print the tables, then write the report (and exports) atomically, last."""
    import time

    from robustrec.cli.compare import print_tables
    from robustrec.reports import report_path, save_report
    from robustrec.reports.export import write_csv, write_severity_plot

    settings = report["settings"]
    extra = f"{settings['repeats']} repeats, seed {settings['seed']}, " + _setting_summary(settings)
    print_tables(report["dataset"], settings.get("title") or report["kind"], settings["strength_name"],
                 report["checkpoints"], settings["metric"], settings["k"], extra=extra)
    _print_changed_items(report)
    _print_fill_fallback(report)
    tag = settings.get("file_tag")  # e.g. the edit or fault, so reports of one kind tell apart by name
    kind = f"{report['kind']}-{tag}" if tag else report["kind"]
    path = report_path(report_dir, kind, report["dataset"]["name"], time.strftime("%Y%m%d-%H%M%S"))
    save_report(report, path)
    written = [path]
    if csv:
        written.append(write_csv(report, path.with_suffix(".csv")))
    if plot:
        written.append(write_severity_plot(report, path.with_suffix(".png"), settings["metric"], settings["k"]))
    for item in written:
        console.print(f"wrote [bold]{item}[/]")


def _setting_summary(settings: dict) -> str:
    return settings.get("description") or settings.get("perturbation", "")


def _print_changed_items(report: dict) -> None:
    """Reports whose trials count changed items: how many each trial changed (the same draws for
    every checkpoint)."""
    entry = next((e for e in report["checkpoints"] if e["levels"]), None)
    if entry is None or any("changed_items" not in t for lv in entry["levels"] for t in lv["trials"]):
        return
    settings = report["settings"]
    of = (f" (of {settings['eligible_items']} eligible items)" if "eligible_items" in settings
          else f" (of {report['dataset']['items']} items)")
    for level in entry["levels"]:
        counts = [trial["changed_items"] for trial in level["trials"]]
        console.print(f"{settings['strength_name']} {level['strength']:g}: items changed per trial {counts}{of}",
                      highlight=False)


def _print_fill_fallback(report: dict) -> None:
    """One note line when a mean or neighbours fill found no present item at some level (every item
    missing, e.g. rate 1) and filled with zeros instead (the trials' ``zero_filled`` counts)."""
    entry = next((e for e in report["checkpoints"] if e["levels"]), None)
    if entry is None:
        return
    levels = [level["strength"] for level in entry["levels"] if any(t.get("zero_filled") for t in level["trials"])]
    if levels:
        settings = report["settings"]
        console.print(f"note: at {settings['strength_name']} {', '.join(f'{v:g}' for v in levels)} every item's "
                      f"{settings.get('modality', '')} row is missing: --fill {settings.get('fill')} had no present "
                      f"item, so those rows were filled with zeros (as --fill zeros)", highlight=False)
