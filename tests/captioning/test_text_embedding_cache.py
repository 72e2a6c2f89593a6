"""The on-disk cache of encoded texts (`robustrec.features.text_cache`): rows come back
bitwise without encoding, the file is keyed by the encoder's model files and versions, a touched but
unchanged model folder still matches, a corrupt file is ignored with one line and rebuilt, and an
encoder that cannot be pinned without loading gets no cache."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from robustrec.features.text_cache import TextEmbeddingCache, cache_path, open_text_cache
from robustrec.perturbations.caption import MemoTextEncoder

TEXTS = ["Red dress. Light cotton.", "Blue jeans", "A photo of a red dress", "", "Blue jeans"]


class FolderEncoder:
    """A stand-in encoder whose rows depend on the bytes of its 'model folder'; counts calls."""

    dim = 6

    def __init__(self, folder: Path, device: str = "cpu", encoder_id: str = "fake:encoder") -> None:
        self.folder, self.device, self.encoder_id = folder, device, encoder_id
        self.calls: list[list[str]] = []

    def cache_identity(self):
        return {"encoder": self.encoder_id, "folder": str(self.folder), "backend": "test",
                "packages": {"torch": "1.0"}, "device": self.device}

    def encode(self, texts):
        self.calls.append(list(texts))
        salt = (self.folder / "weights.bin").read_bytes()
        rows = [np.random.default_rng(zlib.crc32(salt + t.encode())).standard_normal(self.dim) for t in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)


@pytest.fixture()
def model_folder(tmp_path):
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"weights v1" * 100)
    (folder / "1_Pooling" / "config.json").write_text("{}")
    return folder


def _encode(encoder, root, texts=TEXTS):
    """(rows, memo) after encoding ``texts`` through a memo backed by the cache under ``root``; saved."""
    memo = MemoTextEncoder(encoder, open_text_cache(encoder, "tiny", root))
    rows = memo.encode(texts)
    assert memo.save() is None
    return rows, memo


def test_warm_cache_gives_the_same_rows_without_encoding(model_folder, tmp_path):
    cold, memo = _encode(FolderEncoder(model_folder), tmp_path / "cache")
    assert memo.encoded == 4 and memo.reused == 0  # distinct texts, the empty one included

    class Unloadable(FolderEncoder):
        @property
        def dim(self):
            raise AssertionError("a warm cache must not ask the encoder")

    warm_encoder = Unloadable(model_folder)
    warm, memo = _encode(warm_encoder, tmp_path / "cache")
    assert warm_encoder.calls == [] and memo.reused == 4 and memo.encoded == 0
    assert warm.tobytes() == cold.tobytes() and memo.dim == 6
    summary = memo.cache_summary()
    assert summary["rows_reused"] == 4 and summary["warning"] is None and not summary["replaced_stale_file"]
    # a new text is encoded alone and joins the file
    more, memo = _encode(FolderEncoder(model_folder), tmp_path / "cache", ["Green hat", *TEXTS])
    assert memo.encoded == 1 and more[1:].tobytes() == cold.tobytes()
    assert TextEmbeddingCache.open(memo.cache.path, FolderEncoder(model_folder).cache_identity()).loaded == 5


@pytest.mark.parametrize("change", ["weights", "config", "device", "packages"])
def test_another_encoder_version_does_not_reuse_rows(model_folder, tmp_path, change):
    cold, _ = _encode(FolderEncoder(model_folder), tmp_path / "cache")
    encoder = FolderEncoder(model_folder)
    if change == "weights":
        (model_folder / "weights.bin").write_bytes(b"weights v2" * 100)
    elif change == "config":
        (model_folder / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    elif change == "device":
        encoder = FolderEncoder(model_folder, device="cuda")
    else:
        encoder.cache_identity = lambda: {**FolderEncoder(model_folder).cache_identity(),
                                          "packages": {"torch": "2.0"}}
    rows, memo = _encode(encoder, tmp_path / "cache")
    assert memo.cache.stale and memo.reused == 0 and memo.encoded == 4 and len(encoder.calls) == 1
    if change == "weights":
        assert rows.tobytes() != cold.tobytes()
    # the file now belongs to the new version
    again, memo = _encode(encoder, tmp_path / "cache")
    assert memo.reused == 4 and again.tobytes() == rows.tobytes()


def test_encoders_with_other_ids_use_other_files(model_folder, tmp_path):
    a = cache_path(tmp_path, "tiny", "sentence-transformers:all-MiniLM-L6-v2")
    b = cache_path(tmp_path, "tiny", "sentence-transformers:all-mpnet-base-v2")
    assert a != b and a.parent == b.parent == tmp_path / "text-embeddings"
    _encode(FolderEncoder(model_folder), tmp_path / "cache")
    _, memo = _encode(FolderEncoder(model_folder, encoder_id="fake:other"), tmp_path / "cache")
    assert memo.reused == 0 and not memo.cache.stale
    assert len(list((tmp_path / "cache" / "text-embeddings").iterdir())) == 2


def test_touched_model_files_with_the_same_bytes_still_match(model_folder, tmp_path, monkeypatch):
    import robustrec.features.text_cache as module

    cold, _ = _encode(FolderEncoder(model_folder), tmp_path / "cache")
    os.utime(model_folder / "weights.bin", ns=(1, 1))  # new stamp, same bytes: hashed again, accepted
    hashed = []
    real = module.folder_sha256
    monkeypatch.setattr(module, "folder_sha256", lambda *a: hashed.append(1) or real(*a))
    rows, memo = _encode(FolderEncoder(model_folder), tmp_path / "cache")
    assert hashed == [1] and memo.reused == 4 and rows.tobytes() == cold.tobytes()
    # the new stamps were stored: the next run trusts them and hashes nothing
    _, memo = _encode(FolderEncoder(model_folder), tmp_path / "cache")
    assert hashed == [1] and memo.reused == 4


@pytest.mark.parametrize("content", [b"not a zip file", b"PK\x03\x04 truncated", "npz-without-rows"])
def test_corrupt_cache_file_is_ignored_with_one_line_and_rebuilt(model_folder, tmp_path, content):
    encoder = FolderEncoder(model_folder)
    path = cache_path(tmp_path / "cache", "tiny", encoder.encoder_id)
    path.parent.mkdir(parents=True)
    if content == "npz-without-rows":
        np.savez(path, identity=np.array("{}"))  # a valid archive without digests and rows
    else:
        path.write_bytes(content)
    cache = TextEmbeddingCache.open(path, encoder.cache_identity())
    assert cache.rows == {} and cache.warning and "\n" not in cache.warning
    assert str(path) in cache.warning and "rebuilt" in cache.warning
    _, memo = _encode(encoder, tmp_path / "cache")
    assert memo.cache_summary()["warning"] == cache.warning and memo.encoded == 4
    rebuilt = TextEmbeddingCache.open(path, encoder.cache_identity())
    assert rebuilt.warning is None and rebuilt.loaded == 4


def test_unwritable_cache_root_costs_a_one_line_reason_only(model_folder, tmp_path):
    root = tmp_path / "a-file"
    root.write_text("x")
    encoder = FolderEncoder(model_folder)
    memo = MemoTextEncoder(encoder, open_text_cache(encoder, "tiny", root))
    assert memo.encode(TEXTS).shape == (5, 6)
    reason = memo.save()
    assert reason and "\n" not in reason and "not written" in reason
    assert root.read_text() == "x"


def test_encoders_that_cannot_be_pinned_get_no_cache(tmp_path):
    from robustrec.features.text import SentenceTextEncoder

    class NoIdentity:
        dim, encoder_id = 4, "plain"

    assert open_text_cache(NoIdentity(), "tiny", tmp_path) is None
    assert SentenceTextEncoder("someone/a-hub-only-model").cache_identity() is None
    assert open_text_cache(SentenceTextEncoder("someone/a-hub-only-model"), "tiny", tmp_path) is None
    assert not list(tmp_path.iterdir())


def test_minilm_identity_needs_no_transformers_import():
    """The packaged MiniLM is pinned by its folder's files without importing transformers or torch."""
    code = ("import sys; from robustrec.features.text import SentenceTextEncoder as S; "
            "i = S().cache_identity(); "
            "print(i['backend'], i['device'], 'transformers' in sys.modules, 'torch' in sys.modules, "
            "sorted(i['packages']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}).stdout
    assert out.split(maxsplit=4) == ["transformers", "cpu", "False", "False",
                                     "['tokenizers', 'torch', 'transformers']\n"]
