"""``robustrec perturb <kind>``: inference-time stress tests of trained checkpoints.

One command per registered stress kind (``robustrec.studies.stresses``), generated from its spec:
the kind's fields become its options (help text from the field metadata, the command's help from
the spec's docstring), and the options every stress test takes are declared once, below.
``--plugins FILE.py`` imports a user's file first, so ``robustrec perturb myedit RUN --plugins
my_stress.py`` finds the kind the file registers.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import typer
from typer.core import TyperGroup

from robustrec.cli.options import DEVICE_HELP, MAX_MEMORY
from robustrec.cli.render import console

# arguments and options every stress test takes, declared once: (name, annotation, typer parameter)
CHECKPOINTS_HELP = ("Run folders written by `robustrec train` (same data). None: the newest run under "
                    "--checkpoint-dir and its plain/MG twin.")
PLUGINS_HELP = "Python files registering stress kinds of your own, loaded first (a comma list for several)."


def shared_options() -> list[tuple[str, object, object]]:
    """(name, annotation, typer parameter) of what every ``perturb`` command takes, in help order
    (``repeats`` goes between the kind's options and these)."""
    return [
        ("seed", int, typer.Option(0, help="Root seed; repeat seeds are derived from it.")),
        ("metric", str, typer.Option("recall", help="Metric shown in the tables: recall, precision, map, ndcg.")),
        ("k", int, typer.Option(5, help="Cut-off shown in the tables (all K are stored in the report).")),
        ("split", str, typer.Option("test", help="Split to evaluate: test or valid.")),
        ("report_dir", Path, typer.Option(Path("reports"), help="Where the JSON report (and CSV/PNG) go.")),
        ("csv", bool, typer.Option(False, "--csv", help="Also write a CSV next to the report.")),
        ("plot", bool, typer.Option(False, "--plot", help="Also write a PNG severity curve next to the report.")),
        ("data_dir", str, typer.Option("", help="Where the checkpoints' dataset lives, if it moved.")),
        ("threads", int, typer.Option(0, min=0, help="Torch CPU threads (0 = torch default).")),
        ("device", str, typer.Option("auto", "--device", help=DEVICE_HELP)),
        ("max_memory", typing.Optional[str], MAX_MEMORY),
        ("quiet", bool, typer.Option(False, "--quiet", "-q", help="No progress bar.")),
        ("plugins", str, typer.Option("", metavar="FILE.py", help=PLUGINS_HELP)),
    ]


def leading_options() -> list[tuple[str, object, object]]:
    return [
        ("checkpoints", typing.Optional[list[Path]],
         typer.Argument(None, metavar="[CHECKPOINT]...", show_default=False, help=CHECKPOINTS_HELP)),
        ("checkpoint_dir", Path, typer.Option(Path("checkpoints"),
                                              help="Where to look for runs when no CHECKPOINT is given.")),
    ]


def kind_options(cls) -> list[tuple[str, object, object]]:
    """The options of a kind's spec: one per field (``robustrec.studies.stresses.base.option``)."""
    from robustrec.studies.stresses import spec_options

    hints = typing.get_type_hints(cls)
    out = []
    for f in spec_options(cls):
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        inner = [k for k in typing.get_args(kind) if k is not type(None)]
        base = inner[0] if inner else kind
        default = ... if meta.get("required") else f.default
        if base is bool:
            param = typer.Option(default, f"{flag}/--no-{flag[2:]}", help=meta.get("help", ""))
        elif meta.get("path"):
            base, param = typing.Optional[Path], typer.Option(None if default == "" else default, flag,
                                                              help=meta.get("help", ""))
        else:
            param = typer.Option(default, flag, help=meta.get("help", ""), metavar=meta.get("metavar"))
        out.append((f.name, base if base is bool or meta.get("path") else typing.Optional[base]
                    if f.default is None else base, param))
    return out


def make_command(cls):
    """The ``perturb <kind>`` command function of spec class ``cls``."""
    from robustrec.studies.stresses import spec_options

    names = [f.name for f in spec_options(cls)]
    paths = {f.name for f in spec_options(cls) if f.metadata.get("path")}
    repeats = ("repeats", int, typer.Option(cls.repeats.default, help=cls.repeats.help))
    params = [*leading_options(), *kind_options(cls), repeats, *shared_options()]
    taken = [name for name, _, _ in params]
    if len(set(taken)) != len(taken):
        clash = sorted({n for n in taken if taken.count(n) > 1})
        raise RuntimeError(f"stress kind {cls.kind!r}: option(s) {', '.join(clash)} clash with the shared options")

    def command(**values) -> None:
        options = {name: (str(values[name] or "") if name in paths else values[name]) for name in names}
        spec = cls(**options).check()
        run_stress(spec, values["checkpoints"], values["checkpoint_dir"], values["repeats"], values["seed"],
                   values["split"], values["metric"], values["k"], values["report_dir"], values["csv"],
                   values["plot"], values["data_dir"], values["threads"], values["quiet"], values["device"])

    command.__signature__ = inspect.Signature([
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=param, annotation=annotation)
        for name, annotation, param in params])
    command.__annotations__ = {name: annotation for name, annotation, _ in params}
    command.__doc__ = inspect.cleandoc(cls.__doc__ or cls.kind)
    command.__name__ = command.__qualname__ = cls.kind.replace("-", "_")
    return command


class StressGroup(TyperGroup):
    """``perturb``: its commands are the registered kinds, plug-in files (``--plugins``) loaded first."""

    def parse_args(self, ctx, args):
        from robustrec.studies.stresses.registry import load_plugins, plugin_args

        load_plugins(plugin_args(args))  # one-line ConfigError for a missing, broken or clashing file
        return super().parse_args(ctx, args)

    def _sync(self) -> None:
        from robustrec.studies.stresses import available_stresses

        for kind, cls in available_stresses().items():
            if kind not in self.commands:
                holder = typer.Typer(add_completion=False)
                holder.command(kind)(make_command(cls))
                holder.callback()(lambda: None)
                self.add_command(typer.main.get_group(holder).commands[kind], kind)

    def list_commands(self, ctx):
        self._sync()
        return list(self.commands)

    def get_command(self, ctx, name):
        self._sync()
        return super().get_command(ctx, name)


app = typer.Typer(help="Stress trained checkpoints with inference-time perturbations.", no_args_is_help=True,
                  cls=StressGroup)


@app.callback()
def _perturb() -> None:
    """Stress trained checkpoints with inference-time perturbations."""


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


STRESSES_PREAMBLE = """# Stress kinds and their options

<!-- generated by `robustrec stresses --markdown` from the registered kinds' specs; do not edit by
hand: tests/test_stress_plugins.py checks this page against the registry -->

Every kind is a `robustrec perturb <kind>` command and a study `[[stress]]` table. Besides its own
options below, every command takes the shared ones: {shared}. A study's `[[stress]]` table takes
`repeats`, `seed`, `split`, `metric`, `k` and `models`. Add a kind of your own: see
[Contributing](../contributing.md#add-a-stress-kind).
"""


def list_stresses(
    markdown: bool = typer.Option(False, "--markdown", help="Print the options page of every kind (docs)."),
    plugins: str = typer.Option("", metavar="FILE.py", help=PLUGINS_HELP),
) -> None:
    """List the stress kinds (built in, installed entry points, --plugins files)."""
    from robustrec.studies.stresses import available_stresses, load_plugins
    from robustrec.studies.stresses.base import options_markdown
    from robustrec.studies.stresses.registry import plugin_args

    load_plugins(plugin_args(["--plugins", plugins]) if plugins else [])
    kinds = available_stresses()
    if markdown:
        names = [f"`--{name.replace('_', '-')}`" for name, _, _ in [*leading_options()[1:], *shared_options()]]
        typer.echo(STRESSES_PREAMBLE.format(shared=", ".join(names)))
        typer.echo("\n".join(options_markdown(cls) for cls in kinds.values()), nl=False)
        return
    from rich.table import Table

    table = Table(box=None, show_header=True, header_style="bold")
    for column in ("kind", "from", "what it does"):
        table.add_column(column, overflow="fold")
    for kind, cls in kinds.items():
        table.add_row(kind, cls.source, cls.summary())
    console.print(table)
