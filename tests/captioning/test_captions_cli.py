"""`robustrec captions generate` end to end with a tiny BLIP-2, through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import assert_one_line_error, run_cli
from robustrec.captioning.cache import CaptionCache
from robustrec.cli import captions

GENERATE = ("captions", "generate")


def test_generate_captions_skips_bad_image(capsys, tiny_blip2_dir: Path, tiny_dataset: Path) -> None:
    data_dir = tiny_dataset.parent
    args = ["--dataset", "tiny", "--data-dir", str(data_dir), "--checkpoint", str(tiny_blip2_dir),
            "--device", "cpu", "--batch-size", "2", "--max-new-tokens", "3"]
    code, out, err = run_cli(capsys, *GENERATE, *args)
    assert code == 0, out + err
    assert "captioned 5, skipped 1, already cached 0" in out + err
    assert "skipped item 5: unreadable" in out + err
    path = data_dir / "tiny" / "captions" / f"blip2_{tiny_blip2_dir.name}.json"
    cache = CaptionCache.load(path, captioner_id=f"blip2:{tiny_blip2_dir.name}", dataset="tiny")
    assert sorted(cache.captions) == [0, 1, 2, 3, 4] and list(cache.skipped) == [5]
    assert cache.fingerprint == captions._dataset_fingerprint("tiny", data_dir)
    code, out, err = run_cli(capsys, *GENERATE, *args)
    assert code == 0 and "captioned 0, skipped 0, already cached 6" in out + err


def test_limit_and_explicit_cache(capsys, tiny_blip2_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "mine.json"
    code, stdout, err = run_cli(capsys, *GENERATE, "--dataset", "tiny", "--data-dir", tiny_dataset.parent,
                                "--checkpoint", tiny_blip2_dir, "--device", "cpu", "--limit", "2", "--cache", out)
    assert code == 0, stdout + err
    assert sorted(json.loads(out.read_text())["captions"]) == ["0", "1"]


def test_cache_of_other_dataset_is_rejected(capsys, tiny_blip2_dir: Path, tiny_dataset: Path) -> None:
    path = tiny_dataset / "c.json"
    CaptionCache(path, f"blip2:{tiny_blip2_dir.name}", "other", "x").flush()
    before = path.read_bytes()
    assert_one_line_error(*run_cli(capsys, *GENERATE, "--dataset", "tiny", "--data-dir", tiny_dataset.parent,
                                   "--checkpoint", tiny_blip2_dir, "--cache", path), "is for dataset 'other'")
    assert path.read_bytes() == before


def test_missing_dataset_and_images(capsys, tmp_path: Path, tiny_dataset: Path) -> None:
    assert_one_line_error(*run_cli(capsys, *GENERATE, "--dataset", "nope", "--data-dir", tmp_path),
                          "dataset folder not found")
    for image in (tiny_dataset / "images").iterdir():
        image.unlink()
    (tiny_dataset / "images").rmdir()
    assert_one_line_error(*run_cli(capsys, *GENERATE, "--dataset", "tiny", "--data-dir", tiny_dataset.parent),
                          "has no item images")


def test_lavis_needs_python(capsys, tiny_dataset: Path) -> None:
    assert_one_line_error(*run_cli(capsys, *GENERATE, "--dataset", "tiny", "--data-dir", tiny_dataset.parent,
                                   "--captioner", "lavis"), "--lavis-python")


def test_a_second_captioning_run_of_one_cache_is_refused(capsys, tiny_blip2_dir: Path, tiny_dataset: Path,
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
        line = assert_one_line_error(*run_cli(capsys, *GENERATE, *args))
        assert line == (f"Error: caption cache {out} is being written by another robustrec process "
                        f"(pid {other.pid}); wait for it (a rerun then captions only what is left)")
        assert not out.exists()
    finally:
        other.kill()
        other.wait()
    code, stdout, err = run_cli(capsys, *GENERATE, *args)
    assert code == 0, stdout + err
    assert sorted(json.loads(out.read_text())["captions"]) == ["0", "1"] and not lock_path(out).exists()
