"""``robustrec study``: run a study file (resumable), show its state, report it."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from robustrec.cli.options import DEVICE, MAX_MEMORY
from robustrec.cli.render import console

app = typer.Typer(help="Studies: models × strategies × grids × seeds × stress tests, as one resumable command.",
                  no_args_is_help=True)


@app.command("run")
def run(
    study_file: Path = typer.Argument(..., metavar="STUDY.toml", help="The study file (see `robustrec study examples` and docs/studies.md)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Study folder (default study-out/<name>)."),
    workers: int = typer.Option(0, min=0, help="Cells at once on this machine (0: cores ÷ --threads)."),
    threads: int = typer.Option(0, min=0, help="Torch threads per cell (0: cores ÷ --workers); workers × threads "
                                               "≤ cores."),
    ray: bool = typer.Option(False, "--ray", help="Run every cell as a Ray task (also when RAY_ADDRESS is set)."),
    ray_address: str = typer.Option("", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run failed cells again."),
    device: str = DEVICE,
    max_memory: Optional[str] = MAX_MEMORY,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run STUDY.toml in its study folder: a rerun skips finished cells and redoes unfinished ones.

    Exit code: 0 when every cell is done, else the number of failed cells (at most 100).
    """
    from contextlib import nullcontext

    from robustrec.locks import study_lock
    from robustrec.paths import check_output_dir
    from robustrec.studies.spec import load_study

    early = nullcontext()
    if out is not None and study_file.is_file():  # a second `study run` of the folder stops here, at once
        check_output_dir(out.parent if not out.exists() else out, "--out")
        early = study_lock(out)
    with early:
        study = load_study(study_file)
        folder = out or Path("study-out") / study.name
        check_output_dir(folder.parent if not folder.exists() else folder, "--out")
        with study_lock(folder):  # before any work (re-entrant when taken above)
            _run(study, folder, workers, threads, ray, ray_address, retry_failed, device, quiet)


def _run(study, folder: Path, workers: int, threads: int, ray: bool, ray_address: str, retry_failed: bool,
         device: str, quiet: bool) -> None:
    import os

    from robustrec.cli import interrupt
    from robustrec.device import resolve_device
    from robustrec.studies.execute import (InlineExecutor, PoolExecutor, RayExecutor, import_ray, run_study,
                                           worker_layout)

    use_ray = ray or bool(ray_address) or bool(os.environ.get("RAY_ADDRESS"))
    if use_ray:  # cells resolve "auto" where they run; a named device must exist there
        import_ray()
        executor = RayExecutor(threads or 1, device=device, address=ray_address or None)
    else:
        target = str(resolve_device(device))  # cuda without CUDA: one line, before any work
        workers, threads = worker_layout(workers, threads)
        executor = (InlineExecutor(threads, target) if workers == 1 else PoolExecutor(workers, threads, target))
    console.print(f"study [bold]{study.name}[/]: {len(study.datasets)} dataset(s) × {len(study.models)} model(s) × "
                  f"{len(study.strategies)} strateg{'y' if len(study.strategies) == 1 else 'ies'} × "
                  f"{len(study.seeds)} seed(s), {len(study.stresses)} stress test(s); {executor.name}"
                  + (f", {executor.capacity} at once" if executor.name != "inline" else ""), highlight=False)
    interrupt.kept(f"finished cells are recorded in {folder}; run the same command again to resume")
    with _progress(quiet) as callbacks:
        manifest = run_study(study, folder, executor, callbacks, retry_failed=retry_failed)
    counts = manifest.counts()
    _print_counts(counts, folder)
    for cell in manifest.cells.values():
        if cell.state in ("failed", "blocked"):
            console.print(f"[red]{cell.state}[/] {cell.id}: {cell.error}", highlight=False)
    if counts["failed"]:
        raise typer.Exit(min(counts["failed"], 100))


@app.command("examples")
def examples(
    copy: Optional[Path] = typer.Option(None, "--copy", metavar="DIR", help="Copy the example study files into DIR "
                                                                            "(existing files are kept)."),
) -> None:
    """The example study files shipped with robustrec (also in an installed package), one line each."""
    from robustrec.studies.spec import copy_examples, example_studies

    found = example_studies()
    if copy is not None:
        written = copy_examples(copy)
        for path in written:
            console.print(f"wrote [bold]{path}[/]")
        console.print(f"{len(written)} written, {len(found) - len(written)} already there; set data_dir in each to "
                      f"the folder holding your datasets, then `robustrec study check FILE`", highlight=False)
        return
    for path in found:
        first = next((line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        console.print(f"{path}  {first}", highlight=False, markup=False, soft_wrap=True)


@app.command("check")
def check(
    study_file: Path = typer.Argument(..., metavar="STUDY.toml", help="The study file to validate."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Study folder whose finished cells time the "
                                                                 "estimate (default study-out/<name>)."),
) -> None:
    """Validate STUDY.toml and print its plan (cells, grid points, stress tests, a time estimate)
    without running anything. Exit 0 when the study is valid, 2 with one line when not."""
    from robustrec.reports.tables import SplitTable
    from robustrec.studies.plan import describe_plan
    from robustrec.studies.spec import load_study

    study = load_study(study_file)
    folder = out or Path("study-out") / study.name
    plan = describe_plan(study, folder)
    console.print(f"study [bold]{study.name}[/] ({study_file}) is valid: data from {study.data_dir}", highlight=False)
    rows = [[g["dataset"], g["model"], g["strategy"],
             ("plain's point" if g["reuses_plain_point"] else
              str(g["points"]) + (" (" + "; ".join(f"{k}: {', '.join(v)}" for k, v in g["searched"].items()) + ")"
                                  if g["searched"] else "")),
             str(g["trainings"]), str(g["epochs"]), str(g["patience"])] for g in plan["groups"]]
    console.print(SplitTable(["dataset", "model", "strategy", "grid points (searched)", "trainings", "max epochs",
                              "patience"], rows, title="training cells", keys=3))  # never cuts a value
    for model, yaml in study.grid_sources.items():
        console.print(f"grid of {model}: {len(study.grids[model])} point(s) from its MMRec YAML {yaml} "
                      f"(a [grid] table of its own replaces it)", highlight=False, markup=False)
    if plan["stresses"]:
        console.print("stress tests (one cell per dataset × seed):", highlight=False)
    for s in plan["stresses"]:  # whole options, wrapped at the console's width: never cut
        console.print(f"  #{s['index']} {s['label']} on {', '.join(s['models'])}: {s['levels']} level(s) × "
                      f"{s['repeats']} repeat(s), {s['evaluations_per_cell']} evaluations per cell",
                      highlight=False, markup=False)
    console.print(f"{plan['training_cells']} training cells (at most {plan['max_epochs']:,} epochs), "
                  f"{plan['stress_cells']} stress cells ({plan['evaluations']:,} evaluations)", highlight=False)
    estimate = plan["estimate"]
    if estimate is None:
        console.print(f"time: no estimate yet (no finished cell in {folder}); `robustrec study run` times the first "
                      f"cells and a later `study check` estimates the rest", highlight=False)
    else:
        hours = estimate["seconds_left"] / 3600
        mean = ", ".join(f"{kind} {seconds:.0f} s" for kind, seconds in estimate["mean_seconds"].items()
                         if seconds is not None)
        console.print(f"time left: about {hours:.1f} h on one worker (mean per finished cell in {folder}: {mean})",
                      highlight=False)


@app.command("status")
def status(folder: Path = typer.Argument(..., metavar="STUDY_DIR", help="A study folder.")) -> None:
    """Done / running / failed / blocked / pending cells of a study folder; cells the manifest
    calls running while no process drives the study (it was killed) show as interrupted."""
    from robustrec.locks import holder, study_lock_path
    from robustrec.studies.plan import STATES, read_manifest

    body = read_manifest(folder)
    driver = holder(study_lock_path(folder))
    cells = [dict(c, state="interrupted" if c["state"] == "running" and driver is None else c["state"])
             for c in body["cells"].values()]
    counts = {state: sum(c["state"] == state for c in cells) for state in (*STATES, "interrupted")}
    _print_counts(counts, folder)
    if driver is not None:
        console.print(f"driven by robustrec process {driver or '(pid unknown)'}", highlight=False)
    for cell in cells:
        if cell["state"] != "done":  # whole ids and errors: one line each, never cut
            took = f" after {cell['seconds']:.1f} s" if cell.get("seconds") is not None else ""
            error = f": {cell['error']}" if cell.get("error") else ""
            console.print(f"{cell['state']:<8} {cell['id']}{took}{error}", highlight=False, markup=False,
                          soft_wrap=True)
    if counts["interrupted"]:
        console.print("interrupted: no process runs this study now (killed?); `robustrec study run STUDY.toml "
                      f"--out {folder}` resumes them", highlight=False, markup=False, soft_wrap=True)


def _print_counts(counts: dict, folder) -> None:
    total = sum(counts.values())
    parts = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    console.print(f"{folder}: {total} cells: {parts or 'none planned'}", highlight=False)


class _Bar:
    def __init__(self, progress) -> None:
        self.progress = progress
        self.task = progress.add_task("cells", total=None, info="")

    def on_cells_planned(self, total: int, done: int) -> None:
        self.progress.update(self.task, total=total, completed=done)

    def on_cell_start(self, cell) -> None:
        self.progress.update(self.task, info=f"started {cell.id}")

    def on_cell_end(self, cell) -> None:
        self.progress.update(self.task, advance=1 if cell.state == "done" else 0,
                             info=f"{cell.state} {cell.id}" + (f" ({cell.seconds:.0f} s)" if cell.seconds else ""))


class _Lines:
    def on_cells_planned(self, total: int, done: int) -> None: ...

    def on_cell_start(self, cell) -> None: ...

    def on_cell_end(self, cell) -> None:
        took = f" in {cell.seconds:.1f} s" if cell.seconds is not None else ""
        console.print(f"{cell.state} {cell.id}{took}" + (f": {cell.error}" if cell.error else ""), highlight=False)


def _progress(quiet: bool):
    from contextlib import contextmanager

    @contextmanager
    def context():
        if quiet:
            yield []
        elif not console.is_interactive:
            yield [_Lines()]
        else:
            from robustrec.cli.progress import study_progress

            with study_progress(console) as progress:
                yield [_Bar(progress)]

    return context()


def _write_html(folder: Path, result: dict, html: Path, landscape: list[Path], metric: str, k: int,
                correction: str) -> None:
    import shlex

    from robustrec.reports.html import write_html
    from robustrec.studies.report import study_html

    command = shlex.join(["robustrec", "study", "report", str(folder), "--metric", metric, "--k", str(k),
                          "--correction", correction, "--html", str(html),
                          *[a for p in landscape for a in ("--landscape", str(p))]])
    text = study_html(folder, metric, k, correction, study_report=result, landscapes=landscape, command=command)
    path = write_html(text, html, "--html")
    console.print(f"wrote [bold]{path}[/] ({len(text.encode()) / 1e6:.1f} MB)", highlight=False, soft_wrap=True)


@app.command("report")
def report(
    folder: Path = typer.Argument(..., metavar="STUDY_DIR", help="A study folder."),
    markdown: Optional[Path] = typer.Option(None, help="Also write the tables as Markdown to this file."),
    metric: str = typer.Option("recall", help="Metric compared: recall, precision, map, ndcg."),
    k: int = typer.Option(5, help="Cut-off K of that metric."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write one self-contained HTML report to this file."),
    landscape: list[Path] = typer.Option([], "--landscape", help="With --html: a landscape-*.json of `robustrec "
                                                                 "landscape` or a folder of them (repeatable; "
                                                                 "STUDY_DIR/landscapes is read anyway)."),
    correction: str = typer.Option("holm", help="Multiple-comparison correction: holm or bh (Benjamini–Hochberg)."),
) -> None:
    """Tables of a study: clean metrics over seeds and drops under each stress, paired tests over
    seeds with Holm/BH correction; writes study-report.json, clean.csv, stress.csv and drops.png under
    STUDY_DIR/report (another --metric/--k or --correction adds itself to the names: study-report-ndcg@5.json)."""
    from robustrec.reports.tables import study_clean_table, study_stress_table
    from robustrec.studies.report import build_report, counts_text, write_outputs

    if markdown is not None and markdown.is_dir():
        from robustrec.errors import ConfigError

        raise ConfigError(f"--markdown {markdown} is a folder; give a file name")
    if html is not None:
        from robustrec.reports.html import check_html_path

        check_html_path(html, "--html")  # before any work
    result = build_report(folder, metric, k, correction)
    if html is not None:  # one self-contained file (reports.html); printed before the tables
        _write_html(folder, result, html, landscape, metric, k, correction)
    if not result["complete"]:
        console.print(f"[yellow]note:[/] not every cell is done ({counts_text(result['cells'])}); tables cover "
                      f"finished cells", highlight=False)
    console.print(study_clean_table(result, f"study {result['study']}: clean {result['key']} over seeds "
                                            f"(p: paired over seeds, {result['correction']}-adjusted)"))
    if result.get("baseline_legend"):
        console.print(f"vs baselines: {result['baseline_legend']}", highlight=False)
    if result["stress"]:
        console.print(study_stress_table(result, f"drops under stress ({result['correction']}-adjusted p; "
                                                  f"* < {result['alpha']}; drop reduction = plain's drop − the "
                                                  f"strategy's drop, pts; > 0: drops less than plain)"))
    _print_audit(result)
    for path in write_outputs(result, Path(folder) / "report", markdown):
        console.print(f"wrote [bold]{path}[/]", soft_wrap=True)  # one line per path, whatever the width


def _print_audit(result: dict) -> None:
    """The protocol audit of a study with selection = "test"/"test-epoch", labelled optimistic."""
    if not result.get("audit"):
        return
    from robustrec.reports.tables import SplitTable
    from robustrec.studies.audit import LABEL, audit_table

    headers, rows = audit_table(result["audit"], result["key"])
    # narrow consoles: several tables, each with dataset, model and strategy, instead of cut values
    console.print(SplitTable(headers, rows, keys=3, title=f"protocol audit of {result['key']}: {LABEL}; optimism = "
                                                           f"gain under the test protocol − gain under validation "
                                                           f"(pts)"))
