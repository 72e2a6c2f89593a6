"""A full disk is one line everywhere: ``train``, ``perturb`` (report, CSV, PNG), ``study run``
(manifest) and ``features extract`` exit non-zero with one line naming the file and the free
space, leave no half-written file, no temporary and no empty ``.partial`` folder. Also: the
write floor fsyncs, training state files follow the umask, and a study.json of the wrong shape
is one line from every ``study`` command.

The full disk is simulated (every ``open`` for writing under a folder returns a file whose
``write`` fails with ENOSPC, and safetensors' ``save_file`` raises the error it gives on a full
disk), and, when running as root where tmpfs can be mounted, real: a training into a tiny tmpfs.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli

SAFETENSORS_FULL = "Error while serializing: I/O error: No space left on device (os error 28)"


class _FullFile:
    """An open file on a full disk: it exists, but nothing can be written into it."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def writelines(self, lines):
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._handle.close()
        return False


class FullDisk:
    """Make every write to a file whose path satisfies ``hit`` fail as on a full disk."""

    def __init__(self, monkeypatch, hit) -> None:
        import safetensors.torch
        from safetensors import SafetensorError

        self.hit, self.paths = hit, []
        real_open, real_save = io.open, safetensors.torch.save_file

        def fake_open(file, mode="r", *args, **kwargs):
            handle = real_open(file, mode, *args, **kwargs)
            if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and self._hits(file):
                return _FullFile(handle)
            return handle

        def fake_save(tensors, filename, metadata=None):
            if self._hits(filename):
                raise SafetensorError(SAFETENSORS_FULL)
            return real_save(tensors, filename, metadata)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(safetensors.torch, "save_file", fake_save)

    def _hits(self, file) -> bool:
        path = Path(os.fsdecode(file)).absolute()
        if self.hit(path):
            self.paths.append(path)
            return True
        return False


def under(folder: Path):
    folder = Path(folder).absolute()
    return lambda path: folder in path.parents


def files_under(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, hidden ones included (relative paths)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def assert_disk_full_line(code: int, out: str, err: str, path_fragment: str) -> str:
    """Exit 1, exactly one line on stderr (stdout may first say what ran): the full disk, the file, the
    free space; no traceback."""
    assert "Traceback" not in out, out
    return assert_one_line_error(code, "", err, path_fragment, " free on ", "free some space and run again",
                                 exit_code=1, prefix="Error: no space left on device writing ")


# --- the write floor -----------------------------------------------------------------------------


def test_write_atomic_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    from robustrec import files

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    files.write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert events == ["fsync file", "rename", "fsync folder"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    events.clear()
    files.write_text_atomic(tmp_path / "b.txt", "state", fsync=False)  # often rewritten, harmless to lose
    assert events == ["rename"]


def test_a_run_folder_is_fsynced_file_by_file_before_its_rename(tmp_path, monkeypatch, small_data):
    from robustrec.checkpoints import FILES, save_run
    from robustrec.models import build_model
    from robustrec.training import TrainConfig, Trainer

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to name the fsynced files")
    model = build_model("bprmf", small_data)
    config = TrainConfig(model="bprmf", epochs=1, batch_size=1024)
    result = Trainer(config).fit(model, small_data)
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    run = save_run(tmp_path / "run", model, config, small_data, result)
    names = [Path(p).name for p in synced]
    assert all(name in names for name in FILES), names  # each file, in the temporary folder
    assert all(Path(p).parent.name.startswith(".run.") for p in synced if Path(p).name in FILES)
    assert str(tmp_path) in synced  # the folder the run was renamed into
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"] and run.is_dir()


def test_write_atomic_turns_enospc_into_one_line_and_keeps_the_old_file(tmp_path):
    from robustrec.errors import RobustRecError
    from robustrec.files import DiskFullError, write_atomic

    target = tmp_path / "report.json"
    target.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError) as info:
        write_atomic(target, write)
    message = str(info.value)
    assert isinstance(info.value, RobustRecError) and "\n" not in message
    assert message.startswith(f"no space left on device writing {target} (")
    assert f" free on {tmp_path})" in message
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]

    def quota(tmp):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    with pytest.raises(DiskFullError, match="disk quota exceeded writing") as info:
        write_atomic(target, quota)
    import pickle

    copy = pickle.loads(pickle.dumps(info.value))  # crosses process boundaries (study workers) intact
    assert str(copy) == str(info.value) and copy.path == target

    def other(tmp):
        raise OSError(errno.EACCES, "Permission denied")

    with pytest.raises(PermissionError):  # not a full disk: left alone
        write_atomic(target, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_safetensors_full_disk_error_is_recognised():
    from safetensors import SafetensorError

    from robustrec.files import is_disk_full

    assert is_disk_full(SafetensorError(SAFETENSORS_FULL))
    assert not is_disk_full(SafetensorError("Error while deserializing header: HeaderTooLarge"))
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_disk_full(OSError(errno.ENOENT, "No such file"))


@pytest.mark.parametrize("text, fragment", [
    (None, "not found"),
    (b"{oops", "unreadable (corrupt, not valid JSON"),
    (b"\xff\xfe{}", "unreadable (not UTF-8 text"),
])
def test_read_json_errors_are_one_line(tmp_path, text, fragment):
    from robustrec.errors import ConfigError
    from robustrec.files import read_json

    path = tmp_path / "x.json"
    if text is not None:
        path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        read_json(path, "thing", ConfigError, hint="do this")
    assert fragment in str(info.value) and str(info.value).endswith("; do this") and "\n" not in str(info.value)
    assert str(info.value).startswith(f"thing {path} ")


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_training_state_files_follow_the_umask(tmp_path, small_data, mask, mode):
    from robustrec.models import build_model
    from robustrec.training import TrainConfig, Trainer

    old = os.umask(mask)
    try:
        config = TrainConfig(model="bprmf", epochs=1, batch_size=1024)
        Trainer(config).fit(build_model("bprmf", small_data), small_data, tmp_path / "state")
    finally:
        os.umask(old)
    found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "state").iterdir()}
    assert found == {"state-00001.safetensors": mode, "state.json": mode}


# --- the commands --------------------------------------------------------------------------------


def _train(capsys, synthetic_dir, ck, *extra):
    return run_cli(capsys, "train", "--model", "bprmf", "--epochs", "2", "-q", "--threads", "1",
                   "--data-dir", synthetic_dir, "--checkpoint-dir", ck, *extra)


@pytest.mark.parametrize("fails", ["state tensors", "state json", "everything"])
def test_train_on_a_full_disk_is_one_line_and_leaves_nothing(capsys, tmp_path, synthetic_dir, monkeypatch, fails):
    ck = tmp_path / "ck"
    hit = {"state tensors": lambda p: p.name.startswith(".state-"),
           "state json": lambda p: p.name.startswith(".state.json"),
           "everything": under(ck)}[fails]
    disk = FullDisk(monkeypatch, hit)
    code, out, err = _train(capsys, synthetic_dir, ck)
    assert disk.paths
    named = "state.json" if fails == "state json" else "state-00001.safetensors"
    assert_disk_full_line(code, out, err, f"{ck / '.bprmf-synthetic.partial' / named} (")
    assert files_under(ck) == []  # no run, no empty .partial folder, no temporary


def in_run_temp_folder(path: Path) -> bool:
    """A file in the temporary folder ``save_run`` writes a run into (not the partial state)."""
    return path.parent.name.startswith(".bprmf-synthetic.") and not path.parent.name.endswith(".partial")


def test_train_whose_run_folder_hits_a_full_disk_keeps_its_state_to_resume(capsys, tmp_path, synthetic_dir,
                                                                           monkeypatch):
    ck = tmp_path / "ck"
    FullDisk(monkeypatch, in_run_temp_folder)
    code, out, err = _train(capsys, synthetic_dir, ck)
    assert_disk_full_line(code, out, err, f"{ck / 'bprmf-synthetic'} (")
    assert files_under(ck) == [".bprmf-synthetic.partial", ".bprmf-synthetic.partial/state-00002.safetensors",
                               ".bprmf-synthetic.partial/state.json"]
    monkeypatch.undo()
    code, out, err = _train(capsys, synthetic_dir, ck)  # room again: resumes, saves the run
    assert code == 0 and "resuming bprmf-synthetic after epoch 2" in out, err
    assert files_under(ck) == sorted(["bprmf-synthetic", *(f"bprmf-synthetic/{f}" for f in
                                      ("model.safetensors", "config.json", "metrics.json", "history.json",
                                       "data.json", "meta.json"))])


def test_overwrite_on_a_full_disk_keeps_the_old_run(capsys, tmp_path, synthetic_dir, monkeypatch):
    ck = tmp_path / "ck"
    assert _train(capsys, synthetic_dir, ck)[0] == 0
    before = {name: (ck / "bprmf-synthetic" / name).read_bytes() for name in os.listdir(ck / "bprmf-synthetic")}
    FullDisk(monkeypatch, in_run_temp_folder)
    code, out, err = _train(capsys, synthetic_dir, ck, "--overwrite", "--seed", "3")
    assert_disk_full_line(code, out, err, f"{ck / 'bprmf-synthetic'} (")
    assert {name: (ck / "bprmf-synthetic" / name).read_bytes() for name in os.listdir(ck / "bprmf-synthetic")} == before
    partial = [".bprmf-synthetic.partial", *(f".bprmf-synthetic.partial/{n}" for n in
                                             ("state-00002.safetensors", "state.json"))]
    assert files_under(ck) == sorted(["bprmf-synthetic", *(f"bprmf-synthetic/{n}" for n in before), *partial])


@pytest.fixture(scope="module")
def run_dir(synthetic_run):
    return synthetic_run("bprmf")  # the session's, only read: the reports go to tmp_path


@pytest.mark.parametrize("suffix", [".json", ".csv", ".png"])
def test_perturb_on_a_full_disk_is_one_line(capsys, tmp_path, run_dir, monkeypatch, suffix):
    reports = tmp_path / "reports"
    reports.mkdir()
    FullDisk(monkeypatch, lambda p: p.parent == reports.absolute() and f"{suffix}." in f"{p.name}.")
    code, out, err = run_cli(capsys, "perturb", "noise", run_dir, "--sigma", "0.01", "--repeats", "1",
                             "--no-flatness", "-q", "--csv", "--plot", "--report-dir", reports)
    line = assert_disk_full_line(code, out, err, f"{reports}/noise-synthetic-")
    assert line.split(" (")[0].endswith(suffix)
    left = files_under(reports)
    # what was written before the full disk is complete; the file that met it is not there at all
    expected = {".json": [], ".csv": [".json"], ".png": [".csv", ".json"]}[suffix]
    assert sorted(Path(name).suffix for name in left) == expected, left
    assert not any(name.startswith(".") for name in left)
    for name in left:
        if name.endswith(".json"):
            from robustrec.reports import load_report

            assert load_report(reports / name)["kind"] == "noise"


STUDY = """
name = "tiny"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf"]
strategies = ["plain"]
seeds = [0]

[train]
epochs = 1
batch_size = 1024
"""


def _study_file(tmp_path, synthetic_dir) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)))
    return path


def test_study_run_whose_manifest_meets_a_full_disk_is_one_line(capsys, tmp_path, synthetic_dir, monkeypatch):
    study = _study_file(tmp_path, synthetic_dir)
    out_dir = tmp_path / "out"
    FullDisk(monkeypatch, lambda p: p.name.startswith(".study.json."))
    code, out, err = run_cli(capsys, "study", "run", study, "--out", out_dir, "--workers", "1", "--threads", "1",
                             "--quiet")
    assert_disk_full_line(code, out, err, str(out_dir / "study.json"))
    assert not (out_dir / "study.json").exists()
    assert not [name for name in files_under(out_dir) if ".study.json" in name]


def test_study_run_on_a_full_disk_keeps_the_old_manifest(capsys, tmp_path, synthetic_dir, monkeypatch):
    study = _study_file(tmp_path, synthetic_dir)
    out_dir = tmp_path / "out"
    args = ("study", "run", study, "--out", out_dir, "--workers", "1", "--threads", "1", "--quiet")
    assert run_cli(capsys, *args)[0] == 0
    before = (out_dir / "study.json").read_bytes()
    study.write_text(study.read_text().replace("epochs = 1", "epochs = 2"))  # a changed cell: rewritten
    FullDisk(monkeypatch, under(out_dir))
    code, out, err = run_cli(capsys, *args)
    assert_disk_full_line(code, out, err, str(out_dir))
    assert (out_dir / "study.json").read_bytes() == before
    assert not [name for name in files_under(out_dir) if Path(name).name.startswith(".")
                and not Path(name).name.endswith(".partial")]


def test_features_extract_on_a_full_disk_is_one_line_and_leaves_nothing(capsys, tmp_path, shared_datasets,
                                                                        monkeypatch):
    from robustrec.features import registry as encoders_module
    from test_features_extract import HashTextEncoder, make_hm_subset

    source = make_hm_subset(tmp_path / "src", shared_datasets, n_items=6)
    monkeypatch.setattr(encoders_module, "make_encoder", lambda m, n, **kw: HashTextEncoder())
    out_dir = tmp_path / "out"
    FullDisk(monkeypatch, under(out_dir))
    code, out, err = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", source.parent,
                             "--out-dir", out_dir, "--modalities", "text", "--batch-size", "4", "-q")
    assert_disk_full_line(code, out, err, str(out_dir / "hm" / ".features.partial" / "text"))
    assert files_under(out_dir) == []  # nothing encoded to resume: no partial folder, no created folders


def test_features_extract_full_at_the_last_write_keeps_the_chunks_to_resume(capsys, tmp_path, shared_datasets,
                                                                            monkeypatch):
    from robustrec.features import registry as encoders_module
    from test_features_extract import HashTextEncoder, make_hm_subset

    source = make_hm_subset(tmp_path / "src", shared_datasets, n_items=6)
    monkeypatch.setattr(encoders_module, "make_encoder", lambda m, n, **kw: HashTextEncoder())
    out_dir = tmp_path / "out"
    FullDisk(monkeypatch, lambda p: p.name.startswith(".text_feat.npy."))
    args = ("features", "extract", "--dataset", "hm", "--data-dir", source.parent, "--out-dir", out_dir,
            "--modalities", "text", "--batch-size", "4", "-q")
    code, out, err = run_cli(capsys, *args)
    assert_disk_full_line(code, out, err, str(out_dir / "hm" / "text_feat.npy"))
    left = files_under(out_dir / "hm")
    assert "text_feat.npy" not in left and not [n for n in left if n.endswith(".tmp")]
    assert [n for n in left if n.startswith(".features.partial/text/chunk-")]
    monkeypatch.undo()
    monkeypatch.setattr(encoders_module, "make_encoder", lambda m, n, **kw: HashTextEncoder())
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert (out_dir / "hm" / "text_feat.npy").is_file() and not (out_dir / "hm" / ".features.partial").exists()


def test_making_the_synthetic_dataset_on_a_full_disk_is_one_line(capsys, tmp_path, monkeypatch):
    data = tmp_path / "data"
    FullDisk(monkeypatch, under(data))
    code, out, err = run_cli(capsys, "train", "--model", "bprmf", "--epochs", "1", "-q", "--data-dir", data,
                             "--checkpoint-dir", tmp_path / "ck")
    assert_disk_full_line(code, out, err, f"{data / 'synthetic'} (")
    assert files_under(data) == [] and files_under(tmp_path / "ck") == []


def test_a_full_disk_no_writer_caught_is_still_one_line(capsys, tmp_path, synthetic_dir, monkeypatch):
    import robustrec.paths

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "somewhere" / "file"))

    monkeypatch.setattr(robustrec.paths, "check_output_dir", full)
    code, out, err = _train(capsys, synthetic_dir, tmp_path / "ck")
    assert_disk_full_line(code, out, err, str(tmp_path / "somewhere" / "file"))


# --- a real full disk ----------------------------------------------------------------------------


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 16 KiB tmpfs (root only, where mounting is allowed)."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    point = tmp_path / "tiny"
    point.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(point)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=False)


def test_train_into_a_real_full_tmpfs_is_one_line(capsys, tiny_tmpfs, synthetic_dir):
    ck = tiny_tmpfs / "ck"
    code, out, err = _train(capsys, synthetic_dir, ck)
    line = assert_disk_full_line(code, out, err, str(ck))
    assert f"free on {ck}" in line or f"free on {tiny_tmpfs}" in line
    assert files_under(ck) == []


# --- study.json of the wrong shape ---------------------------------------------------------------


def _valid_study_dict(tmp_path, synthetic_dir) -> dict:
    from robustrec.studies.spec import load_study

    return load_study(_study_file(tmp_path, synthetic_dir)).to_dict()


def _cell(**change):
    cell = {"id": "train/synthetic/bprmf/plain/g0/s0", "kind": "train", "spec": {}, "deps": [], "state": "done",
            "result": None, "error": None, "detail": None, "seconds": 1.0, "attempts": 1}
    cell.update(change)
    return {key: value for key, value in cell.items() if value is not ...}


SHAPES = {
    "a list": lambda study: [],
    "no study": lambda study: {"format": "robustrec-study", "cells": []},
    "cells a list": lambda study: {"format": "robustrec-study", "study": study, "cells": []},
    "study a string": lambda study: {"format": "robustrec-study", "study": "tiny", "cells": {}},
    "study missing its name": lambda study: {"format": "robustrec-study",
                                             "study": {k: v for k, v in study.items() if k != "name"}, "cells": {}},
    "cell missing its state": lambda study: {"format": "robustrec-study", "study": study,
                                             "cells": {"train/synthetic/bprmf/plain/g0/s0": _cell(state=...)}},
    "cell a number": lambda study: {"format": "robustrec-study", "study": study, "cells": {"x": 3}},
    "cell of an unknown state": lambda study: {"format": "robustrec-study", "study": study,
                                               "cells": {"train/synthetic/bprmf/plain/g0/s0": _cell(state="odd")}},
    "cell seconds a string": lambda study: {"format": "robustrec-study", "study": study,
                                            "cells": {"train/synthetic/bprmf/plain/g0/s0": _cell(seconds="1 s")}},
    "cell with an unknown field": lambda study: {"format": "robustrec-study", "study": study,
                                                 "cells": {"train/synthetic/bprmf/plain/g0/s0": _cell(colour=1)}},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("command", ["status", "report", "run"])
def test_study_json_of_the_wrong_shape_is_one_line(capsys, tmp_path, synthetic_dir, shape, command):
    folder = tmp_path / "out"
    folder.mkdir()
    body = SHAPES[shape](_valid_study_dict(tmp_path, synthetic_dir))
    (folder / "study.json").write_text(json.dumps(body))
    before = (folder / "study.json").read_bytes()
    if command == "run":
        args = ["study", "run", tmp_path / "tiny.toml", "--out", folder, "--workers", "1", "--threads", "1", "-q"]
    else:
        args = ["study", command, folder]
    code, out, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.strip()]  # `study run` says what it runs on stdout first
    assert code == 2 and len(lines) == 1 and "Traceback" not in out + err, (code, out, err)
    assert lines[0].startswith(f"Error: {folder / 'study.json'} is ")
    assert "not a robustrec study manifest" in lines[0] or "malformed study manifest" in lines[0]
    assert (folder / "study.json").read_bytes() == before and os.listdir(folder) == ["study.json"]


def test_a_valid_manifest_still_reads(tmp_path, synthetic_dir):
    from robustrec.studies.plan import read_manifest

    folder = tmp_path / "out"
    folder.mkdir()
    body = {"format": "robustrec-study", "study": _valid_study_dict(tmp_path, synthetic_dir),
            "cells": {"train/synthetic/bprmf/plain/g0/s0": _cell()}}
    (folder / "study.json").write_text(json.dumps(body))
    assert read_manifest(folder)["cells"]["train/synthetic/bprmf/plain/g0/s0"]["state"] == "done"
