"""``robustrec data inspect``: what a dataset folder holds, on planted files and the real shared sets."""

import json

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.data.inspect import inspect_dataset
from robustrec.data.mmrec import load_interactions


@pytest.fixture
def toy(tmp_path):
    """4 users × 6 items; an image file with planted zero, NaN and duplicate rows; partial texts."""
    folder = tmp_path / "toy"
    folder.mkdir()
    rows = [(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 1, 0), (1, 3, 2), (2, 4, 0), (2, 0, 2), (3, 1, 0), (3, 2, 0),
            (3, 5, 1)]
    (folder / "toy.inter").write_text("userID\titemID\tx_label\n" + "".join(f"{u}\t{i}\t{x}\n" for u, i, x in rows))
    image = np.arange(6 * 3, dtype=np.float32).reshape(6, 3)
    image[1] = 0.0           # all-zero row
    image[2] = image[0]      # duplicate of row 0
    image[4, 1] = np.nan     # non-finite row
    np.save(folder / "image_feat.npy", image)
    np.save(folder / "audio_feat.npy", np.ones((6, 2), dtype=np.float64))  # any modality name counts
    (folder / "toy.items.jsonl").write_text('{"itemID": 0, "title": "a"}\n{"itemID": 3, "title": "b"}\n')
    return tmp_path


def test_inspect_counts_planted_rows(toy):
    summary = inspect_dataset("toy", toy)
    inter = summary["interactions"]
    assert (inter["users"], inter["items"]) == (4, 6)
    assert (inter["train"], inter["valid"], inter["test"], inter["total"]) == (6, 2, 2, 10)
    assert inter["density"] == pytest.approx(10 / 24)
    assert inter["per_user"] == {"min": 2, "median": 2.5, "max": 3}
    assert inter["per_item"] == {"min": 1, "median": 1.5, "max": 3}
    assert inter["items_without_training_interactions"] == 2  # item 3 (test only), item 5 (valid only)
    assert "NaN" in summary["load_error"]  # training refuses NaN rows; the data fingerprint is still known
    assert summary["fingerprint"] == load_interactions(toy, "toy").interactions_fingerprint()
    audio, image = summary["modalities"]
    assert (image["modality"], image["rows"], image["dim"], image["dtype"]) == ("image", 6, 3, "float32")
    assert (image["all_zero_rows"], image["non_finite_rows"], image["duplicate_rows"]) == (1, 1, 1)
    assert image["coverage"] == pytest.approx(4 / 6)
    assert (audio["modality"], audio["dtype"], audio["duplicate_rows"], audio["coverage"]) == ("audio", "float64", 5, 1.0)
    assert summary["content"]["texts"]["items"] == 2 and summary["content"]["images"] is None


def test_inspect_cli_json_and_80_columns(capsys, toy, monkeypatch):
    code, out, _ = run_cli(capsys, "data", "inspect", "--dataset", "toy", "--data-dir", toy, "--json")
    assert code == 0 and json.loads(out)["modalities"][1]["all_zero_rows"] == 1
    monkeypatch.setenv("COLUMNS", "80")
    import robustrec.cli.data as data_cli
    from rich.console import Console

    monkeypatch.setattr(data_cli, "console", Console(width=80, force_terminal=False))
    code, out, _ = run_cli(capsys, "data", "inspect", "--dataset", "toy", "--data-dir", toy)
    assert code == 0
    assert max(map(len, out.splitlines())) <= 80 and "…" not in out
    for text in ("image", "audio", "6×3", "66.7%", "texts 2 items (33.3%)", "training would refuse"):
        assert text in out


def test_inspect_bad_input_is_one_line(capsys, toy):
    (toy / "toy" / "text_feat.npy").write_bytes(b"not an array")
    assert_one_line_error(*run_cli(capsys, "data", "inspect", "--dataset", "toy", "--data-dir", toy),
                          "not a .npy array file")
    code, _, err = run_cli(capsys, "data", "inspect", "--dataset", "missing", "--data-dir", toy)
    assert code == 2 and "not found" in err


def test_inspect_real_lfm2k_and_hm(shared_datasets):
    lfm = inspect_dataset("lfm2k", shared_datasets)
    assert [m["modality"] for m in lfm["modalities"]] == ["audio", "text", "whisper"]
    assert {m["modality"]: m["dim"] for m in lfm["modalities"]} == {"audio": 128, "text": 384, "whisper": 512}
    assert all(m["rows_match_items"] and m["non_finite_rows"] == 0 for m in lfm["modalities"])
    assert lfm["content"]["texts"]["coverage"] == 1.0 and lfm["content"]["images"] is None
    hm = inspect_dataset("hm", shared_datasets)
    assert hm["modalities"] == []  # photos and texts only: features are extracted, not shipped
    assert hm["content"]["texts"]["items"] == 819  # the README's real missing modality: 1,175 without text
    assert hm["content"]["images"]["local_files"] == hm["interactions"]["items"] == 1994
