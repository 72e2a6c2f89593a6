"""CaptionCache: round trip, resume, atomic writes, header checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import robustrec.files as files_module  # the cache is written by files.write_text_atomic
from robustrec.captioning.cache import CaptionCache, cache_file_name, default_cache_path
from robustrec.errors import DataError


def _cache(path: Path, **kwargs: object) -> CaptionCache:
    return CaptionCache.open(path, "blip2:x", "baby", "sha256:abc", **kwargs)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    cache = _cache(tmp_path / "c.json")
    cache.add(3, "a red bottle")
    cache.add(1, "un café")
    cache.skip(7, "unreadable image: boom")
    cache.flush()
    loaded = CaptionCache.load(tmp_path / "c.json")
    assert loaded.captions == {1: "un café", 3: "a red bottle"}
    assert loaded.skipped == {7: "unreadable image: boom"}
    assert (loaded.captioner_id, loaded.dataset, loaded.fingerprint) == ("blip2:x", "baby", "sha256:abc")
    assert 3 in loaded and loaded.get(3) == "a red bottle" and len(loaded) == 2
    payload = json.loads((tmp_path / "c.json").read_text())
    assert payload["format"] == "robustrec-caption-cache" and payload["version"] == 1


def test_flush_every_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    cache = _cache(path, flush_every=2)
    cache.add(0, "zero")
    assert not path.exists()
    cache.add(1, "one")
    cache.add(2, "two (not flushed: the run is interrupted here)")
    resumed = _cache(path)
    assert resumed.captions == {0: "zero", 1: "one"}
    assert resumed.pending(range(4)) == [2, 3]
    resumed.skip(2, "oversized")
    assert resumed.pending(range(4)) == [3]
    assert resumed.pending(range(4), retry_skipped=True) == [2, 3]


def test_crash_mid_write_keeps_old_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.json"
    cache = _cache(path)
    cache.add(0, "old")
    cache.flush()
    before = path.read_bytes()

    def crash(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files_module.os, "replace", crash)
    cache.add(1, "new")
    with pytest.raises(KeyboardInterrupt):
        cache.flush()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_killed_process_leaves_cache_loadable(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    _cache(path).flush()
    script = (
        "import os, sys\n"
        "from robustrec.captioning.cache import CaptionCache\n"
        f"c = CaptionCache.open({str(path)!r}, 'blip2:x', 'baby', 'sha256:abc', flush_every=10**6)\n"
        "c.update({i: 'x' * 1000 for i in range(2000)})\n"
        "os.fsync = lambda fd: os._exit(9)\n"  # die after writing the temp file, before replace
        "c.flush()\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    result = subprocess.run([sys.executable, "-c", script], env=env)
    assert result.returncode == 9
    assert len(CaptionCache.load(path)) == 0


@pytest.mark.parametrize(
    ("captioner", "dataset", "fingerprint", "message"),
    [
        ("lavis:blip2_opt", "baby", "sha256:abc", "made by captioner 'blip2:x'"),
        ("blip2:x", "sports", "sha256:abc", "is for dataset 'baby'"),
        ("blip2:x", "baby", "sha256:zzz", "fingerprint mismatch"),
    ],
)
def test_other_captioner_or_dataset_rejected(
    tmp_path: Path, captioner: str, dataset: str, fingerprint: str, message: str
) -> None:
    _cache(tmp_path / "c.json").flush()
    with pytest.raises(DataError, match=message) as info:
        CaptionCache.open(tmp_path / "c.json", captioner, dataset, fingerprint)
    assert "\n" not in str(info.value)


def test_malformed_files_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        CaptionCache.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(DataError, match="not a robustrec caption cache"):
        CaptionCache.load(tmp_path / "other.json")
    with pytest.raises(DataError, match="not found"):
        CaptionCache.load(tmp_path / "missing.json")


def test_default_path_is_sanitized() -> None:
    assert cache_file_name("blip2:Salesforce/blip2-opt-2.7b") == "blip2_Salesforce_blip2-opt-2.7b.json"
    path = default_cache_path(Path("data"), "baby", "synthetic-reference")
    assert path == Path("data/baby/captions/synthetic-reference.json")


def test_package_import_is_light() -> None:
    code = (
        "import sys, robustrec.captioning, robustrec.captioning.cache, robustrec.data.content\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'PIL')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2]))
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
