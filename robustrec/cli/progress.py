"""Rich progress for training and studies, driven by the library's callbacks.

The bar line (description, bar, M/N counter, elapsed time) never gives up its counter: when the
info text does not fit beside it, the info goes on a line of its own below. On a console that is
not interactive (CI logs, files) training prints one compact line per epoch instead of a bar.
"""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Group
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from robustrec.training import TrainerCallback


class InfoProgress(Progress):
    """A Progress whose last column (free info text) moves below the bar when one line is too wide."""

    def get_renderables(self):
        from robustrec.reports.tables import Fitted

        *bar_columns, info = self.columns
        lines = []
        for task in (t for t in self.tasks if t.visible):
            line = Table.grid(*(column.get_table_column().copy() for column in bar_columns), padding=(0, 1))
            line.add_row(*(column(task) for column in bar_columns))
            lines += [line, Padding(info(task), (0, 0, 0, 2))]
        yield Fitted(self.make_tasks_table(self.tasks), Group(*lines))


def _best(history, best: tuple[int, float]) -> tuple[int, float]:
    """(epoch, value) of the last record marked best in ``history``, else ``best``."""
    for record in history:
        if record.best:
            best = (record.epoch, record.valid)
    return best


def _epoch_info(metric: str, record, best: tuple[int, float]) -> str:
    return (f"loss {record.loss:.4f}  valid {metric} {record.valid:.4f}  "
            f"best {best[1]:.4f} @ {best[0]}")


class RichTrainProgress(TrainerCallback):
    """An epoch bar with the last loss, validation metric and best epoch."""

    def __init__(self, progress: Progress, metric: str) -> None:
        self.progress = progress
        self.metric = metric
        self.task = None
        self.best = (0, float("nan"))

    def on_train_start(self, max_epochs, batches_per_epoch):
        self.task = self.progress.add_task("training", total=max_epochs, info="")

    def on_resume(self, history):
        self.best = _best(history, self.best)
        if history:
            self.progress.update(self.task, completed=history[-1].epoch, info=self._info(history[-1]))

    def on_epoch_end(self, record):
        if record.best:
            self.best = (record.epoch, record.valid)
        self.progress.update(self.task, advance=1, info=self._info(record))

    def _info(self, record) -> str:
        return f"{_epoch_info(self.metric, record, self.best)}  {record.seconds:.1f}s/epoch"


class EpochLines(TrainerCallback):
    """One line per epoch, for logs: ``epoch   3/1000  loss ...  valid ...  best ... @ 2  12.3s``."""

    def __init__(self, console, metric: str) -> None:
        self.console = console
        self.metric = metric
        self.total = 0
        self.best = (0, float("nan"))

    def on_train_start(self, max_epochs, batches_per_epoch):
        self.total = max_epochs

    def on_resume(self, history):
        self.best = _best(history, self.best)

    def on_epoch_end(self, record):
        if record.best:
            self.best = (record.epoch, record.valid)
        width = len(str(self.total))
        self.console.print(f"epoch {record.epoch:>{width}}/{self.total}  {_epoch_info(self.metric, record, self.best)}"
                           f"  {record.seconds:.1f}s", markup=False, highlight=False)


def train_progress(console) -> Progress:
    return InfoProgress(TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True)),
                        BarColumn(), MofNCompleteColumn(table_column=Column(no_wrap=True)),
                        TimeElapsedColumn(table_column=Column(no_wrap=True)),
                        TextColumn("{task.fields[info]}", table_column=Column(overflow="fold")),
                        console=console, transient=False)


@contextmanager
def train_callbacks(console, metric: str, quiet: bool):
    """The trainer callbacks that show progress on ``console``: none, per-epoch lines, or a live bar."""
    if quiet:
        yield []
    elif not console.is_interactive:
        yield [EpochLines(console, metric)]
    else:
        with train_progress(console) as progress:
            yield [RichTrainProgress(progress, metric)]


class RichStudyProgress:
    """One bar over every evaluation of a robustness study (clean + perturbed trials)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = None

    def on_study_start(self, total_evaluations: int) -> None:
        self.task = self.progress.add_task("evaluating", total=total_evaluations, info="")

    def on_evaluation_end(self, checkpoint: str, strength, trial) -> None:
        info = f"{checkpoint} clean" if strength is None else f"{checkpoint} {strength:g} #{trial + 1}"
        self.progress.update(self.task, advance=1, info=info)


def study_progress(console) -> Progress:
    return train_progress(console)


class KeptOnInterrupt(TrainerCallback):
    """Keeps the Ctrl-C note up to date: the trainer saves the state before callbacks run."""

    def __init__(self, state_dir) -> None:
        self.state_dir = state_dir

    def on_resume(self, history) -> None:
        if history:
            self._kept(history[-1].epoch)

    def on_epoch_end(self, record) -> None:
        self._kept(record.epoch)

    def _kept(self, epoch: int) -> None:
        from robustrec.cli.interrupt import kept

        kept(f"training state of epoch {epoch} kept in {self.state_dir}; rerun the same command to resume")
