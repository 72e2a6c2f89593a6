"""Rich progress for training, driven by the trainer's callbacks."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from robustrec.training import TrainerCallback


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
        for record in history:
            if record.best:
                self.best = (record.epoch, record.valid)
        if history:
            self.progress.update(self.task, completed=history[-1].epoch, info=self._info(history[-1]))

    def on_epoch_end(self, record):
        if record.best:
            self.best = (record.epoch, record.valid)
        self.progress.update(self.task, advance=1, info=self._info(record))

    def _info(self, record) -> str:
        return (f"loss {record.loss:.4f}  valid {self.metric} {record.valid:.4f}  "
                f"best {self.best[1]:.4f} @ {self.best[0]}  {record.seconds:.1f}s/epoch")


def train_progress(console) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=console,
                    transient=False)


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
