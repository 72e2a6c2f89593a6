"""Metrics checked against values computed by hand."""

import math

import numpy as np
import pytest

from robustrec.evaluation.metrics import all_metrics, average_precision, ndcg, precision, recall


@pytest.fixture
def example():
    # user 0: relevant {A, B, C}; ranking hits at positions 1 and 3 (0-based 0 and 2)
    # user 1: relevant {D}; hit at position 2 (0-based 1)
    hits = np.array([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0]], dtype=bool)
    return hits, np.array([3, 1])


def test_recall_precision(example):
    hits, n_rel = example
    assert recall(hits, n_rel, 5).tolist() == [2 / 3, 1.0]
    assert recall(hits, n_rel, 1).tolist() == [1 / 3, 0.0]
    assert precision(hits, n_rel, 5).tolist() == [0.4, 0.2]


def test_ndcg_by_hand(example):
    hits, n_rel = example
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    dcg1, idcg1 = 1 / math.log2(3), 1.0
    np.testing.assert_allclose(ndcg(hits, n_rel, 5), [dcg0 / idcg0, dcg1 / idcg1])
    # ideal DCG uses min(|relevant|, K): at K=2 user 0 has ideal 1 + 1/log2(3)
    np.testing.assert_allclose(ndcg(hits, n_rel, 2)[0], 1.0 / (1 + 1 / math.log2(3)))


def test_map_by_hand(example):
    hits, n_rel = example
    # user 0: P@1 = 1, P@3 = 2/3 → (1 + 2/3) / min(3, 5)
    # user 1: P@2 = 1/2 → 0.5 / 1
    np.testing.assert_allclose(average_precision(hits, n_rel, 5), [(1 + 2 / 3) / 3, 0.5])
    # K = 2: user 0 gets (1) / min(3, 2)
    np.testing.assert_allclose(average_precision(hits, n_rel, 2)[0], 0.5)


def test_all_metrics_keys_and_guards(example):
    hits, n_rel = example
    hits50 = np.zeros((2, 50), bool)
    hits50[:, :5] = hits
    out = all_metrics(hits50, n_rel)
    assert set(out) == {f"{m}@{k}" for m in ("recall", "precision", "map", "ndcg") for k in (5, 10, 20, 50)}
    assert out["recall@50"].tolist() == [2 / 3, 1.0]
    with pytest.raises(ValueError):
        all_metrics(hits, n_rel)  # only 5 columns, K up to 50 requested
    with pytest.raises(ValueError):
        all_metrics(hits50, np.array([0, 1]))
