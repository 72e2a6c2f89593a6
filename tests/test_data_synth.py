"""``robustrec data synth``: sized synthetic data in MMRec layout (robustrec.data.sized)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli

from robustrec.data import load_dataset
from robustrec.data.sized import PRESETS, SizedSpec, generate, write_sized

SPEC = SizedSpec(users=300, items=400, interactions=3000, modalities=(("image", 24), ("text", 8)), seed=3)


@pytest.fixture(scope="module")
def world():
    return generate(SPEC)


def test_exact_counts_no_duplicates_five_core(world):
    assert len(world.users) == SPEC.interactions
    pairs = world.users * SPEC.items + world.items
    assert len(np.unique(pairs)) == len(pairs)
    per_user = np.bincount(world.users, minlength=SPEC.users)
    assert per_user.min() >= 5 and per_user.max() <= SPEC.items
    assert np.bincount(world.items, minlength=SPEC.items).min() >= 1
    assert np.all(np.diff(pairs) > 0)  # sorted by user, then item


def test_split_per_user_is_8_1_1(world):
    for u in range(SPEC.users):
        labels = world.labels[world.users == u]
        n = len(labels)
        valid, test = (labels == 1).sum(), (labels == 2).sum()
        assert valid == test == int(np.floor(n / 10 + 0.5))
        assert (labels == 0).sum() >= 1 and abs(valid - n / 10) <= 0.5


def test_long_tail(world):
    counts = np.sort(np.bincount(world.items, minlength=SPEC.items))[::-1]
    assert counts[: SPEC.items // 5].sum() > 0.5 * counts.sum()
    per_user = np.bincount(world.users)
    assert per_user.max() > 4 * np.median(per_user)  # heavy users exist


def test_presets_have_mmrec_sizes():
    assert PRESETS["baby"] == (19_445, 7_050, 160_792)
    assert PRESETS["elec"] == (192_403, 63_001, 1_689_188)


def test_features_low_rank_and_loadable(tmp_path):
    seen = []
    summary = write_sized(tmp_path, "s", SPEC, progress=lambda what, done, total: seen.append((what, done, total)))
    assert ("image_feat.npy", SPEC.items, SPEC.items) in seen and ("interactions", 4, 4) in seen
    assert summary["files"] == ["s.inter", "image_feat.npy", "text_feat.npy"]
    data = load_dataset("s", tmp_path)
    assert (data.n_users, data.n_items) == (SPEC.users, SPEC.items)
    assert data.train.nnz + data.valid.nnz + data.test.nnz == SPEC.interactions
    image = np.load(tmp_path / "s" / "image_feat.npy")
    assert image.dtype == np.float32 and image.shape == (SPEC.items, 24)
    singular = np.linalg.svd(image - image.mean(0), compute_uv=False)
    assert singular[0] > 2 * singular[-1]  # structure above the noise floor
    assert not list(tmp_path.glob(".*"))  # no temporary left


def test_seeded_determinism(tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        write_sized(tmp_path, name, SizedSpec(100, 50, 800, (("image", 8),), seed))
    read = {n: ((tmp_path / n / f"{n}.inter").read_bytes(), (tmp_path / n / "image_feat.npy").read_bytes())
            for n in "abc"}
    assert read["a"] == read["b"]
    assert read["a"][0] != read["c"][0] and read["a"][1] != read["c"][1]


def test_cli_writes_refuses_and_overwrites(tmp_path, capsys):
    args = ("data", "synth", "--users", 60, "--items", 40, "--interactions", 400, "--modalities", "image:4",
            "--data-dir", tmp_path, "-q")
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "60 users × 40 items × 400 interactions" in out and "image_feat.npy" in out
    folder = tmp_path / "synth-custom"
    before = (folder / "synth-custom.inter").read_bytes()
    assert_one_line_error(*run_cli(capsys, *args), "exists", "--overwrite")
    assert (folder / "synth-custom.inter").read_bytes() == before
    code, _, err = run_cli(capsys, *args, "--overwrite", "--seed", 5)
    assert code == 0, err
    assert (folder / "synth-custom.inter").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synth-custom"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import robustrec.data.sized as sized

    def boom(*a, **k):
        raise OSError("simulated failure")

    monkeypatch.setattr(sized, "write_features", boom)
    with pytest.raises(OSError):
        write_sized(tmp_path, "x", SPEC)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flags, fragment", [
    (("--users", -3, "--items", 10, "--interactions", 100), "--users must be at least 1"),
    (("--users", 10, "--items", 6, "--interactions", 61), "more than users × items"),
    (("--users", 10, "--items", 20, "--interactions", 49), "fewer than 5 per user"),
    (("--preset", "books"), "unknown preset"),
    (("--preset", "baby", "--modalities", "image:8,Image!:4"), "invalid modality name"),
    (("--preset", "baby", "--modalities", "image:8,image:4"), "twice"),
    (("--preset", "baby", "--modalities", "image"), "<name>:<dim>"),
    (("--users", 10), "missing --items --interactions"),
])
def test_bad_input_one_line(tmp_path, capsys, flags, fragment):
    assert_one_line_error(*run_cli(capsys, "data", "synth", "--data-dir", tmp_path, "-q", *flags), fragment)
    assert list(tmp_path.iterdir()) == []


def test_data_dir_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "f"
    path.write_text("x")
    assert_one_line_error(*run_cli(capsys, "data", "synth", "--users", 10, "--items", 10, "--interactions", 60,
                                   "--data-dir", path, "-q"), "is a file")


def test_train_on_the_result(tmp_path, capsys):
    code, _, err = run_cli(capsys, "data", "synth", "--preset", "sports", "--users", 80, "--items", 50,
                           "--interactions", 700, "--modalities", "image:8,text:4", "--data-dir", tmp_path, "-q")
    assert code == 0, err
    code, out, err = run_cli(capsys, "train", "--model", "bprmf", "--dataset", "synth-sports", "--data-dir", tmp_path,
                             "--epochs", 1, "--checkpoint-dir", tmp_path / "runs", "-q")
    assert code == 0, err
    assert list((tmp_path / "runs").iterdir())
