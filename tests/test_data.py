"""Dataset loading, synthetic generation and the BPR sampler."""

import numpy as np
import pytest

from robustrec.data import load_dataset
from robustrec.data.sampler import BPRSampler
from robustrec.data.synthetic import SyntheticSpec, make_synthetic
from robustrec.errors import DataError

HEADER = "userID\titemID\tx_label\n"


def _write(tmp_path, text, name="toy", files=None):
    folder = tmp_path / name
    folder.mkdir()
    (folder / f"{name}.inter").write_text(text)
    for fname, array in (files or {}).items():
        np.save(folder / fname, array)
    return tmp_path


def test_loads_mmrec_layout_with_extra_columns(tmp_path):
    text = "userID\titemID\trating\ttimestamp\tx_label\n" + "".join(
        f"{u}\t{i}\t5\t0\t{l}\n" for u, i, l in [(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 2, 0), (1, 0, 2)])
    data = load_dataset("toy", _write(tmp_path, text))
    assert (data.n_users, data.n_items, data.n_train) == (2, 3, 3)
    assert data.valid[0].indices.tolist() == [2] and data.test[1].indices.tolist() == [0]


def test_real_baby_counts(baby_dir):
    data = load_dataset("baby", baby_dir)
    assert (data.n_users, data.n_items) == (19445, 7050)
    assert (data.train.nnz, data.valid.nnz, data.test.nnz) == (118551, 20559, 21682)
    assert data.features == {}


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    (HEADER, "no interactions"),
    ("userID\titemID\n0\t1\n", "missing column"),
    (HEADER + "0\tx\t0\n", "not an integer"),
    (HEADER + "0\t-1\t0\n", "negative"),
    (HEADER + "0\t1.5\t0\n", "not an integer"),
    (HEADER + "0\t1\t7\n", "x_label"),
    (HEADER + "0\t1\t1\n", "no training rows"),
])
def test_malformed_inter_files(tmp_path, text, fragment):
    with pytest.raises(DataError, match=fragment):
        load_dataset("toy", _write(tmp_path, text))


def test_missing_dir_and_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("toy", tmp_path / "nope")
    with pytest.raises(DataError, match="toy.inter"):
        load_dataset("toy", tmp_path)


@pytest.mark.parametrize("array, fragment", [
    (np.zeros((2, 4), np.float32), "rows"),
    (np.array([[np.nan] * 4] * 3, np.float32), "NaN"),
    (np.zeros(3, np.float32), "2-D"),
])
def test_bad_feature_files(tmp_path, array, fragment):
    text = HEADER + "0\t0\t0\n0\t1\t1\n1\t2\t0\n"
    with pytest.raises(DataError, match=fragment):
        load_dataset("toy", _write(tmp_path, text, files={"image_feat.npy": array}))


def test_synthetic_is_deterministic_and_structured():
    a, b = make_synthetic(SyntheticSpec(seed=3)), make_synthetic(SyntheticSpec(seed=3))
    assert a.data.fingerprint() == b.data.fingerprint()
    assert make_synthetic(SyntheticSpec(seed=4)).data.fingerprint() != a.data.fingerprint()
    data = a.data
    assert set(data.features) == {"image", "text"}
    # every user has at least one valid and one test item, and splits are disjoint
    assert (np.diff(data.valid.indptr) >= 1).all() and (np.diff(data.test.indptr) >= 1).all()
    assert data.train.multiply(data.test).nnz == 0
    # planted structure: features predict item factors far better than chance
    factors = a.item_factors
    x = data.features["image"]
    coef, *_ = np.linalg.lstsq(x, factors, rcond=None)
    r2 = 1 - ((x @ coef - factors) ** 2).sum() / ((factors - factors.mean(0)) ** 2).sum()
    assert r2 > 0.5


def test_sampler_negatives_avoid_history_and_are_seeded(small_data):
    batches = list(BPRSampler(small_data, batch_size=500, seed=1).epoch())
    again = list(BPRSampler(small_data, batch_size=500, seed=1).epoch())
    assert all((x == y).all() for b1, b2 in zip(batches, again) for x, y in zip(b1, b2))
    users = np.concatenate([b[0].numpy() for b in batches])
    pos = np.concatenate([b[1].numpy() for b in batches])
    neg = np.concatenate([b[2].numpy() for b in batches])
    assert len(users) == small_data.n_train
    train = small_data.train.toarray()
    assert train[users, pos].all()
    assert not train[users, neg].any()
    # uniform over non-history items: every item appears as a negative
    assert len(np.unique(neg)) == small_data.n_items
