"""Most popular: every user gets the items ranked by their number of training interactions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from robustrec.models.fitted import FittedRecommender
from robustrec.models.registry import register


@register
class MostPopular(FittedRecommender):
    """Scores every item by its training popularity, the same for every user.

    The score is the item's place in the popularity order (count descending, then item id
    ascending), counted from the least popular: equal counts never tie, so the ranking is the
    same on every device. The evaluator masks each user's training items, as for every model.
    Nothing to learn (``trainable = False``); no hyper-parameters.
    """

    name = "pop"
    paper = "most popular items (the baseline every recommender must beat)"

    @dataclass
    class Params:
        pass

    def ranker(self):
        counts = self.item_counts
        order = torch.sort(-counts, stable=True).indices  # most popular first, ties by item id
        scores = torch.empty_like(counts)
        scores[order] = torch.arange(self.n_items, 0, -1, device=counts.device, dtype=counts.dtype)
        return lambda users: scores.expand(len(users), -1).clone()
