"""The fault audit: run robustrec as a new user would, with bad input and faults, and print what
each case gives (exit code, first output line, seconds) as a Markdown table.

    python benchmarks/fault_audit.py [--keep DIR]

Everything happens in a temporary folder (the built-in synthetic data is made there); the real
full-disk case needs root and tmpfs (it is reported as skipped otherwise). docs/reliability.md
quotes a run of this script.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROBUSTREC = [sys.executable, "-m", "robustrec"]


def run(args, cwd, timeout=600, env=None):
    start = time.perf_counter()
    proc = subprocess.run([*ROBUSTREC, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "100", **(env or {})})
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    first = lines[0] if proc.returncode else (lines[-1] if lines else "")
    return proc.returncode, first.strip(), time.perf_counter() - start


STUDY = """
name = "{name}"
data_dir = "{data}"
datasets = ["{dataset}"]
models = ["bprmf"]
strategies = ["plain", "mg"]
seeds = {seeds}

[train]
epochs = {epochs}
batch_size = 512

[[stress]]
kind = "{kind}"
{option}
repeats = 2
"""


def study(folder: Path, data: Path, name="s", dataset="synthetic", seeds="[0]", epochs=1, kind="noise",
          option="sigma = [1e-2]\nflatness = false") -> Path:
    path = folder / f"{name.replace('/', '_')}.toml"
    path.write_text(STUDY.format(name=name, data=data, dataset=dataset, seeds=seeds, epochs=epochs, kind=kind,
                                 option=option))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="Work in this folder and keep it.")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="robustrec-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    rows = []

    def case(name, argv, expect=None, **kw):
        code, first, seconds = run(argv, work, **kw)
        rows.append((name, code, first, seconds, expect))
        return code

    try:
        case("train, first run (makes the synthetic data)", ["train", "--model", "bprmf", "--epochs", "2", "-q",
                                                             "--data-dir", data, "--threads", "1"], 0)
        case("train --epochs abc", ["train", "--epochs", "abc"], 2)
        case("train --model nosuch", ["train", "--model", "nosuch", "--data-dir", data], 2)
        case("train --name ../x", ["train", "--name", "../x", "--data-dir", data], 2)
        case("train --seed -1", ["train", "--seed", "-1", "--data-dir", data], 2)
        case("train on a dataset that is not there", ["train", "--dataset", "nosuch", "--data-dir", data], 2)
        case("train --lr inf", ["train", "--lr", "inf", "--data-dir", data], 2)
        run_dir = work / "checkpoints" / "bprmf-synthetic"
        case("perturb noise --sigma inf", ["perturb", "noise", run_dir, "--sigma", "inf"], 2)
        case("landscape --span 1e30", ["landscape", run_dir, "--span", "1e30"], 2)
        case("flatness --sigma inf", ["flatness", run_dir, "--sigma", "inf"], 2)
        flipped = work / "checkpoints" / "flipped"
        shutil.copytree(run_dir, flipped)
        blob = bytearray((flipped / "model.safetensors").read_bytes())
        blob[-3] ^= 1
        (flipped / "model.safetensors").write_bytes(bytes(blob))
        case("perturb a run whose weights had a bit flipped", ["perturb", "noise", flipped, "-q"], 2)
        (work / "bad.json").write_text("[]")
        case("compare a JSON file that is not a report", ["compare", work / "bad.json"], 2)
        case("features extract --image-encoder nosuch-encoder",
             ["features", "extract", "--dataset", "synthetic", "--data-dir", data, "--out-dir", work / "feat",
              "--modalities", "image", "--image-encoder", "nosuch-encoder"], 2)
        for name, kw in [("study name = \"../../x\"", {"name": "../../x"}),
                         ("study seeds = [-1]", {"seeds": "[-1]"}),
                         ("study seed 2^63", {"seeds": f"[{2**63}]"}),
                         ("study of an unknown dataset", {"dataset": "nosuch"}),
                         ("study stress on a modality the data lacks",
                          {"kind": "modality", "option": 'missing = "audio"\nrate = [0.5]'})]:
            case(name, ["study", "run", study(work, data, **kw), "--out", work / "never"], 2)
        good = study(work, data, name="edit", seeds="[0, 1]")
        case("study run, two seeds, 2 workers (first run)", ["study", "run", good, "--out", work / "edit", "-q"], 0)
        good.write_text(good.read_text().replace("epochs = 1", "epochs = 2"))
        case("study run after editing [train] epochs", ["study", "run", good, "--out", work / "edit", "-q"], 0)
        case("study report after the edit", ["study", "report", work / "edit"], 0)
        retrained = work / "edit" / "runs" / "synthetic" / "bprmf-plain-g0-s0"
        from safetensors.torch import load_file, save_file  # a run folder replaced behind the study's back

        state = load_file(str(retrained / "model.safetensors"))
        save_file({k: v * 1.5 for k, v in state.items()}, str(retrained / "model.safetensors"))
        meta = json.loads((retrained / "meta.json").read_text())
        from robustrec.files import file_sha256

        meta["weights_sha256"] = file_sha256(retrained / "model.safetensors")
        (retrained / "meta.json").write_text(json.dumps(meta))
        case("study report when a run was retrained by hand", ["study", "report", work / "edit"], 2)
        case("study run then redoes exactly its stress cells", ["study", "run", good, "--out", work / "edit", "-q"], 0)
        shape = work / "shape"
        shape.mkdir()
        (shape / "study.json").write_text('{"format": "robustrec-study", "cells": []}')
        case("study status of a study.json of the wrong shape", ["study", "status", shape], 2)
        case("check with an unknown metric", ["check", _suite(work, 'metric = "hits@20"'), run_dir], 2)
        case("check that fails", ["check", _suite(work, 'metric = "recall@20"'), run_dir, "-q"], 1)
        _concurrent(work, data, rows)
        _interrupt(work, data, rows)
        _tmpfs(work, data, rows)
    finally:
        print(table(rows))
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def _suite(work: Path, metric_line: str) -> Path:
    path = work / f"suite-{abs(hash(metric_line))}.toml"
    path.write_text(f'[[check]]\nname = "huge noise"\nkind = "noise"\nsigma = 10.0\nflatness = false\nrepeats = 2\n'
                    f'{metric_line}\nmax_drop_pct = 1.0\n')
    return path


def _spawn(args, cwd):
    return subprocess.Popen([*ROBUSTREC, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _concurrent(work: Path, data: Path, rows) -> None:
    """A second train of one name, and a second study run on one folder, while the first runs."""
    first = _spawn(["train", "--model", "bprmf", "--epochs", "1000", "--patience", "1000", "--name", "busy", "-q",
                    "--data-dir", data, "--threads", "1"], work)
    try:
        time.sleep(8)
        code, line, seconds = run(["train", "--model", "bprmf", "--name", "busy", "-q", "--data-dir", data], work)
        rows.append(("a second train of one run name while the first trains", code, line, seconds, 2))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    code, line, seconds = run(["train", "--model", "bprmf", "--name", "busy", "--epochs", "1", "-q", "--data-dir",
                               data, "--no-resume"], work)
    rows.append(("train of that name after the first was killed -9", code, line, seconds, 0))
    path = study(work, data, name="busy", epochs=200)
    first = _spawn(["study", "run", path, "--out", work / "busy", "--workers", "1"], work)
    try:
        time.sleep(8)
        code, line, seconds = run(["study", "run", path, "--out", work / "busy"], work)
        rows.append(("a second study run on one folder while the first runs", code, line, seconds, 2))
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    code, line, seconds = run(["study", "status", work / "busy"], work)
    status = subprocess.run([*ROBUSTREC, "study", "status", str(work / "busy")], cwd=work, capture_output=True,
                            text=True).stdout
    line = next((l for l in status.splitlines() if "interrupted" in l or "running" in l), line)
    rows.append(("study status after kill -9 of the study", code, line.strip(), seconds, 0))


def _interrupt(work: Path, data: Path, rows) -> None:
    proc = _spawn(["train", "--model", "bprmf", "--epochs", "1000", "--patience", "1000", "--name", "ctrlc",
                   "--data-dir", data, "--threads", "1"], work)
    time.sleep(8)
    start = time.perf_counter()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    lines = [l for l in (err + out).splitlines() if l.strip()]
    said = next((l for l in reversed(lines) if l.startswith("interrupted")), lines[-1] if lines else "")
    rows.append(("Ctrl-C during train", proc.returncode, said.strip(),
                 time.perf_counter() - start, 130))


def _tmpfs(work: Path, data: Path, rows) -> None:
    mount = work / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        rows.append(("train into a full disk (16 KiB tmpfs)", None, "skipped: needs root and tmpfs", 0.0, 1))
        return
    try:
        code, line, seconds = run(["train", "--model", "bprmf", "--epochs", "1", "-q", "--data-dir", data,
                                   "--checkpoint-dir", mount], work)
        rows.append(("train into a full disk (16 KiB tmpfs)", code, line, seconds, 1))
        left = sorted(p.name for p in mount.iterdir())
        rows.append(("  …what it left on that disk", None, ", ".join(left) or "nothing", 0.0, None))
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def table(rows) -> str:
    out = ["| case | exit | expected | first line (last line when it succeeds) | s |", "|---|---|---|---|---|"]
    for name, code, line, seconds, expect in rows:
        line = line.replace("|", "\\|")
        if len(line) > 160:
            line = line[:157] + "…"
        mark = "" if expect is None or code is None or code == expect else " ✗"
        out.append(f"| {name} | {'' if code is None else code}{mark} | {'' if expect is None else expect} | "
                   f"{line} | {seconds:.1f} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
