"""The training and study bars at 80 columns keep their M/N counter; logs get one line per epoch."""

import io

from render_helpers import assert_readable
from rich.cells import cell_len
from rich.console import Console

from robustrec.cli.progress import (RichStudyProgress, RichTrainProgress, study_progress, train_callbacks,
                                    train_progress)
from robustrec.training.trainer import EpochRecord


def _records():
    return [EpochRecord(epoch=e, loss=0.6873 - 0.01 * e, valid=0.4 + 0.001 * e, seconds=12.3, eval_seconds=1.0,
                        best=e != 3) for e in (1, 2, 3)]


def _training_bar(width: int, max_epochs: int) -> str:
    """What the training bar prints on a ``width``-column console after three epochs."""
    console = Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)
    with train_progress(console) as progress:
        callback = RichTrainProgress(progress, "recall@20")
        callback.on_train_start(max_epochs, 9)
        for record in _records():
            callback.on_epoch_end(record)
    return console.file.getvalue()


def test_training_bar_keeps_the_epoch_counter_at_80():
    text = _training_bar(80, 1000)
    assert_readable(text, 80, ["3/1000", "loss 0.6573", "valid recall@20 0.4030", "best 0.4020 @ 2",
                                "12.3s/epoch"])


def test_training_bar_stays_on_one_line_when_wide():
    (line,) = [line for line in _training_bar(160, 30).splitlines() if line.strip()]
    assert "training" in line and "3/30" in line and "best 0.4020 @ 2" in line


def test_study_bar_keeps_the_counter_and_the_checkpoint_name_at_80():
    console = Console(width=80, file=io.StringIO(), force_terminal=False, color_system=None)
    with study_progress(console) as progress:
        callback = RichStudyProgress(progress)
        callback.on_study_start(28)
        for trial in range(28):
            callback.on_evaluation_end("layergcn-baby-mg-seed2-with-a-long-suffix", 0.001, trial)
    assert_readable(console.file.getvalue(), 80, ["28/28", "layergcn-baby-mg-seed2-with-a-long-suffix 0.001 #28"])


def test_non_interactive_training_logs_one_line_per_epoch():
    console = Console(width=80, file=io.StringIO(), force_terminal=False, color_system=None)
    with train_callbacks(console, "precision@20", quiet=False) as callbacks:
        callbacks[0].on_train_start(1000, 9)
        for record in _records():
            for callback in callbacks:
                callback.on_epoch_end(record)
    lines = console.file.getvalue().splitlines()
    assert len(lines) == 3 and all(cell_len(line) <= 80 for line in lines)
    assert "epoch    3/1000" in lines[2] and "precision@20 0.4030" in lines[2] and "best 0.4020 @ 2" in lines[2]
    with train_callbacks(console, "recall@20", quiet=True) as callbacks:
        assert callbacks == []
