"""BPR triplet sampler: every training pair with one uniform negative outside the user's history."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from robustrec.data.dataset import InteractionData


class BPRSampler:
    """Yields shuffled (users, positives, negatives) batches, one epoch per call to ``epoch``.

    Negatives are drawn uniformly from the items the user has not interacted with in
    training, by vectorised rejection sampling; the generator is seeded, so equal seeds give
    identical batches.
    """

    def __init__(self, data: InteractionData, batch_size: int = 2048, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.n_items = data.n_items
        self.batch_size = batch_size
        self.users, self.items = data.train_pairs()
        self._keys = self.users * self.n_items + self.items  # sorted: CSR order is (user, item)
        self._rng = np.random.default_rng(seed)
        full_users = np.flatnonzero(np.diff(data.train.indptr) >= data.n_items)
        if len(full_users):
            raise ValueError(f"user {full_users[0]} interacted with every item; no negative can be sampled")

    def rng_state(self) -> dict:
        """The negative/shuffle generator's state (a JSON-able dict), for resumable training."""
        return self._rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self._rng.bit_generator.state = state

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def sample_negatives(self, users: np.ndarray) -> np.ndarray:
        negatives = self._rng.integers(self.n_items, size=len(users))
        todo = np.flatnonzero(self._in_history(users, negatives))
        while len(todo):
            negatives[todo] = self._rng.integers(self.n_items, size=len(todo))
            todo = todo[self._in_history(users[todo], negatives[todo])]
        return negatives

    def _in_history(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users * self.n_items + items
        pos = np.searchsorted(self._keys, keys)
        pos[pos == len(self._keys)] = 0
        return self._keys[pos] == keys

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = self._rng.permutation(len(self.users))
        users, positives = self.users[order], self.items[order]
        negatives = self.sample_negatives(users)
        for start in range(0, len(users), self.batch_size):
            stop = start + self.batch_size
            yield (torch.from_numpy(users[start:stop]), torch.from_numpy(positives[start:stop]),
                   torch.from_numpy(negatives[start:stop]))
