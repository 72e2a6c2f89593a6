"""``common.abstract_recommender``: the base classes MMRec model files derive from.

Written for robustrec from MMRec's documented interface: ``GeneralRecommender(config, dataset)``
sets ``n_users``, ``n_items``, ``batch_size`` (``config['train_batch_size']``), ``device``
(``config['device']``), the id field names and ``v_feat`` / ``t_feat`` (float tensors on
``device``, or None). MMRec reads the two feature files from the dataset folder; here the dataset
adapter robustrec passes in carries them (image → ``v_feat``, text → ``t_feat`` by default).
"""

from __future__ import annotations

import torch
from torch import nn


class AbstractRecommender(nn.Module):
    """Hooks and the scoring interface every MMRec model implements."""

    def pre_epoch_processing(self):
        """Called before every training epoch (default: nothing)."""

    def post_epoch_processing(self):
        """Called after every training epoch in MMRec (default: nothing)."""

    def calculate_loss(self, interaction):
        """Training loss of a batch: ``interaction`` is a 3 × B LongTensor (users, positives,
        negatives)."""
        raise NotImplementedError

    def predict(self, interaction):
        raise NotImplementedError

    def full_sort_predict(self, interaction):
        """Scores (len(users) × n_items) of the users in ``interaction[0]`` for every item."""
        raise NotImplementedError

    def __str__(self):
        count = sum(p.numel() for p in self.parameters())
        return f"{super().__str__()}\nTrainable parameters: {count}"


class GeneralRecommender(AbstractRecommender):
    """Dataset sizes, batch size, device and the pre-extracted item features of a model."""

    def __init__(self, config, dataloader):
        super().__init__()
        self.USER_ID = config["USER_ID_FIELD"]
        self.ITEM_ID = config["ITEM_ID_FIELD"]
        self.NEG_ITEM_ID = f"{config['NEG_PREFIX']}{self.ITEM_ID}"
        self.n_users = dataloader.dataset.get_user_num()
        self.n_items = dataloader.dataset.get_item_num()
        self.batch_size = config["train_batch_size"]
        self.device = config["device"]
        self.v_feat, self.t_feat = None, None
        if not config["end2end"] and config["is_multimodal_model"]:
            features = getattr(dataloader, "item_features", {}) or {}
            self.v_feat = _on(features.get("v_feat"), self.device)
            self.t_feat = _on(features.get("t_feat"), self.device)
            if self.v_feat is None and self.t_feat is None:
                raise ValueError("Features all NONE: the model needs image (v_feat) or text (t_feat) features")


def _on(matrix, device):
    if matrix is None:
        return None
    return torch.as_tensor(matrix).to(dtype=torch.float32, device=device).clone()
