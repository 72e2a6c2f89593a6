"""Full ranking against a brute-force reference on a tiny dataset."""

import numpy as np
import torch

from robustrec.data.dataset import InteractionData, interactions_matrix
from robustrec.evaluation import full_ranking


class FixedScores(torch.nn.Module):
    """A 'model' with a fixed score matrix, to test the evaluator alone."""

    def __init__(self, scores):
        super().__init__()
        self.scores = torch.as_tensor(scores, dtype=torch.float32)

    def ranker(self):
        return lambda users: self.scores[users].clone()


def _data():
    n_users, n_items = 3, 60
    train = interactions_matrix(np.array([0, 0, 1]), np.array([0, 1, 2]), n_users, n_items)
    test = interactions_matrix(np.array([0, 0, 1]), np.array([2, 3, 0]), n_users, n_items)
    valid = interactions_matrix(np.array([1]), np.array([5]), n_users, n_items)
    return InteractionData("tiny", n_users, n_items, train, valid, test)


def test_masks_training_items_and_skips_users_without_truth():
    data = _data()
    scores = np.tile(-np.arange(60, dtype=np.float32), (3, 1))  # item 0 best, then 1, 2, ...
    result = full_ranking(FixedScores(scores), data, "test")
    assert result.users.tolist() == [0, 1]  # user 2 has no test items
    # user 0: items 0, 1 masked (train) → ranking 2, 3, 4, ... → both test items in top 2
    # user 1: item 2 masked → ranking 0, 1, 3, ... → item 0 at rank 1
    assert result.per_user["recall@5"].tolist() == [1.0, 1.0]
    assert result.per_user["ndcg@5"].tolist() == [1.0, 1.0]
    assert result.per_user["precision@5"].tolist() == [0.4, 0.2]


def test_matches_brute_force_on_random_scores():
    data = _data()
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 60)).astype(np.float32)
    result = full_ranking(FixedScores(scores), data, "test", batch_size=1)
    for row, user in enumerate(result.users):
        s = scores[user].copy()
        s[data.train[user].indices] = -np.inf
        top = np.argsort(-s)[:10]
        truth = set(data.test[user].indices)
        expected = sum(i in truth for i in top) / len(truth)
        assert result.per_user["recall@10"][row] == expected


def test_one_pass_over_several_splits_equals_separate_passes():
    from robustrec.evaluation import evaluate_splits

    data = _data()
    scores = np.random.default_rng(1).normal(size=(3, 60)).astype(np.float32)
    model = FixedScores(scores)
    both = evaluate_splits(model, data, ("valid", "test"))
    for split in ("valid", "test"):
        alone = full_ranking(model, data, split)
        assert both[split].users.tolist() == alone.users.tolist()
        assert both[split].summary() == alone.summary()
