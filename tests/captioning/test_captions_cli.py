"""`robustrec captions generate` end to end with a tiny BLIP-2, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import contextlib
import io
from types import SimpleNamespace

from robustrec.captioning.cache import CaptionCache
from robustrec.cli import captions
from robustrec.cli.app import main


def _run(*args: str):
    """Exit code and combined output of `robustrec captions generate ARGS`."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(["captions", "generate", *args])
            code = 0
        except SystemExit as exc:
            code = exc.code
    return SimpleNamespace(exit_code=code, output=out.getvalue())


def test_generate_captions_skips_bad_image(tiny_blip2_dir: Path, tiny_dataset: Path) -> None:
    data_dir = tiny_dataset.parent
    args = ["--dataset", "tiny", "--data-dir", str(data_dir), "--checkpoint", str(tiny_blip2_dir),
            "--device", "cpu", "--batch-size", "2", "--max-new-tokens", "3"]
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert "captioned 5, skipped 1, already cached 0" in result.output
    assert "skipped item 5: unreadable" in result.output
    path = data_dir / "tiny" / "captions" / f"blip2_{tiny_blip2_dir.name}.json"
    cache = CaptionCache.load(path, captioner_id=f"blip2:{tiny_blip2_dir.name}", dataset="tiny")
    assert sorted(cache.captions) == [0, 1, 2, 3, 4] and list(cache.skipped) == [5]
    assert cache.fingerprint == captions._dataset_fingerprint("tiny", data_dir)
    again = _run(*args)
    assert again.exit_code == 0 and "captioned 0, skipped 0, already cached 6" in again.output


def test_limit_and_explicit_cache(tiny_blip2_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.json"
    result = _run("--dataset", "tiny", "--data-dir", str(tiny_dataset.parent), "--checkpoint",
                  str(tiny_blip2_dir), "--device", "cpu", "--limit", "2", "--cache", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(out.read_text())["captions"]) == ["0", "1"]


def test_cache_of_other_dataset_is_rejected(tiny_blip2_dir: Path, tiny_dataset: Path) -> None:
    path = tiny_dataset / "c.json"
    CaptionCache(path, f"blip2:{tiny_blip2_dir.name}", "other", "x").flush()
    before = path.read_bytes()
    result = _run("--dataset", "tiny", "--data-dir", str(tiny_dataset.parent), "--checkpoint",
                  str(tiny_blip2_dir), "--cache", str(path))
    assert result.exit_code == 2
    assert "is for dataset 'other'" in result.output
    assert path.read_bytes() == before


def test_missing_dataset_and_images(tmp_path: Path, tiny_dataset: Path) -> None:
    result = _run("--dataset", "nope", "--data-dir", str(tmp_path))
    assert result.exit_code == 2 and "dataset folder not found" in result.output
    for image in (tiny_dataset / "images").iterdir():
        image.unlink()
    (tiny_dataset / "images").rmdir()
    result = _run("--dataset", "tiny", "--data-dir", str(tiny_dataset.parent))
    assert result.exit_code == 2 and "has no item images" in result.output


def test_lavis_needs_python(tiny_dataset: Path) -> None:
    result = _run("--dataset", "tiny", "--data-dir", str(tiny_dataset.parent), "--captioner", "lavis")
    assert result.exit_code == 2 and "--lavis-python" in result.output


def test_a_second_captioning_run_of_one_cache_is_refused(tiny_blip2_dir: Path, tiny_dataset: Path,
                                                         tmp_path: Path) -> None:
    """Another process captioning into the cache (it holds the cache's lock): refused at once, naming
    its PID, nothing written; once it is gone the run goes ahead."""
    import os
    import subprocess
    import sys
    import time

    from robustrec.captioning.cache import lock_path
    from robustrec.locks import holder

    out = tmp_path / "mine.json"
    child = "import sys, time\nfrom robustrec.locks import hold\nwith hold(sys.argv[1], 'x', 'y'):\n    time.sleep(600)\n"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    other = subprocess.Popen([sys.executable, "-c", child, str(lock_path(out))], env=env, cwd=tmp_path)
    args = ("--dataset", "tiny", "--data-dir", str(tiny_dataset.parent), "--checkpoint", str(tiny_blip2_dir),
            "--device", "cpu", "--limit", "2", "--max-new-tokens", "3", "--cache", str(out))
    try:
        while holder(lock_path(out)) != other.pid:
            assert other.poll() is None
            time.sleep(0.02)
        result = _run(*args)
        assert result.exit_code == 2
        assert result.output.strip() == (f"Error: caption cache {out} is being written by another robustrec process "
                                         f"(pid {other.pid}); wait for it (a rerun then captions only what is left)")
        assert not out.exists()
    finally:
        other.kill()
        other.wait()
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(out.read_text())["captions"]) == ["0", "1"] and not lock_path(out).exists()
