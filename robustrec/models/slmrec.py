"""SLMRec (Tao et al., IEEE TMM 2022): self-supervised learning for multimedia recommendation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from robustrec.errors import ConfigError
from robustrec.models.base import Recommender
from robustrec.models.graph import layer_mean, normalized_bipartite, spmm
from robustrec.models.registry import register

SSL_TASKS = ("FAC", "FD", "FM", "FD+FM")


def info_nce(anchor: torch.Tensor, positive: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cross-entropy of row i of anchor·positiveᵀ/τ against label i (in-batch negatives)."""
    logits = anchor @ positive.t() / temperature
    return F.cross_entropy(logits, torch.arange(len(anchor), device=anchor.device))


def propagate_with_dropout(adjacency: torch.Tensor, ego: torch.Tensor, n_layers: int, rate: float) -> torch.Tensor:
    """LightGCN mean of layers where each layer's output is dropped out (SLMRec's FD view)."""
    layers = [ego]
    for _ in range(n_layers):
        layer = spmm(adjacency, layers[-1])
        layers.append(F.dropout(layer, rate) if rate > 0 else layer)
    return layer_mean(layers)


@register
class SLMRec(Recommender):
    """Branches ID and one per modality (image, text, audio, ...) share the user ID embeddings;
    item inputs are the ID embeddings
    and linear projections of the L2-normalised features. Each branch is LightGCN-propagated;
    users and items are the concatenation of branch outputs through a linear head. Main loss:
    InfoNCE between the batch's users and their positive items (τ = ``temp``; negatives are
    the other in-batch positives, sampled negatives are ignored). SSL loss × ``ssl_alpha``:

    - FAC (MMRec default): fine-and-coarse alignment of the ID branch with the first modality's
      branch (image), then of its projection with the next one's (text), each further modality
      in a space half as wide (InfoNCE over the batch's items);
    - FD: two views with dropout after every propagation layer;
    - FM: two views that each zero a different random branch's item input;
    - FD+FM: both. FD/FM contrast users with users and items with items (InfoNCE, ``ssl_temp``).

    Augmentations draw from torch's global generator, which the trainer seeds. Scores use item
    features at inference.

    Defaults (MMRec ``SLMRec.yaml``): embedding 64, 3 layers, ssl_task FAC, temp 0.2,
    dropout_rate 0.3, ssl_alpha 0.1 and ssl_temp 0.2 (from MMRec's grids; tune on validation);
    MMRec also sets optimizer weight_decay 1e-4 (``--weight-decay`` of the trainer).
    """

    name = "slmrec"
    graph_at_inference = True
    paper = "Tao et al., Self-supervised Learning for Multimedia Recommendation, IEEE Transactions on Multimedia 2022"
    multimodal = True
    features_at_inference = True

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_layers: int = 3
        ssl_task: str = "FAC"
        ssl_alpha: float = 0.1
        ssl_temp: float = 0.2
        temp: float = 0.2
        dropout_rate: float = 0.3

    def __init__(self, data, params: Params) -> None:
        if params.ssl_task not in SSL_TASKS:
            raise ConfigError(f"slmrec ssl_task must be one of {', '.join(SSL_TASKS)}, got {params.ssl_task!r}")
        super().__init__(data, params)
        dim = params.embedding_dim
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        self.dense = nn.ModuleDict({m: _xavier_linear(getattr(self, f"feat_{m}").shape[1], dim)
                                    for m in self.feature_names})
        width = dim * (len(self.feature_names) + 1)
        self.user_head, self.item_head = _xavier_linear(width, dim), _xavier_linear(width, dim)
        if params.ssl_task == "FAC":
            self._build_fac_heads(dim)
        self.adjacency = normalized_bipartite(data.train)
        self.features_changed()

    def interactions_changed(self, train):
        self.adjacency = self.place(normalized_bipartite(train))

    def _build_fac_heads(self, dim: int) -> None:
        """ID→first-modality heads (dim→dim); then, for each further modality, the ID side is
        projected on into a space half as wide (dim→dim/2 for the second, as MMRec's text head;
        dim/2→dim/4 for a third, ...), the coarser space the paper aligns later modalities in."""
        self.fac_anchor = nn.ModuleList([_xavier_linear(dim, dim)])
        self.fac_modality = nn.ModuleList([_xavier_linear(dim, dim)])
        width = dim
        for _ in self.feature_names[1:]:
            narrow = max(1, width // 2)
            self.fac_anchor.append(nn.Sequential(_xavier_linear(width, width), _xavier_linear(width, narrow)))
            self.fac_modality.append(_xavier_linear(dim, narrow))
            width = narrow

    def features_changed(self) -> None:
        self.normed = {m: F.normalize(getattr(self, f"feat_{m}"), dim=1) for m in self.feature_names}

    # --- forward ------------------------------------------------------------------------
    def _item_inputs(self) -> list[torch.Tensor]:
        return [self.item_embedding] + [self.dense[m](self.normed[m]) for m in self.feature_names]

    def _branches(self, item_inputs, dropout: float = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
        outs = []
        for items in item_inputs:
            ego = torch.cat([self.user_embedding, items])
            out = propagate_with_dropout(self.adjacency, ego, self.params.n_layers, dropout)
            outs.append((out[: self.n_users], out[self.n_users:]))
        return outs

    def _fuse(self, branches) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.user_head(torch.cat([u for u, _ in branches], 1)),
                self.item_head(torch.cat([i for _, i in branches], 1)))

    def final_embeddings(self):
        return self._fuse(self._branches(self._item_inputs()))

    # --- losses -------------------------------------------------------------------------
    def loss(self, users, pos, neg):
        inputs = self._item_inputs()
        branches = self._branches(inputs)
        user_all, item_all = self._fuse(branches)
        main = info_nce(F.normalize(user_all[users]), F.normalize(item_all[pos]), self.params.temp)
        return main + self.params.ssl_alpha * self.ssl_loss(users, pos, inputs, branches)

    def ssl_loss(self, users, items, inputs, branches) -> torch.Tensor:
        task = self.params.ssl_task
        if task == "FAC":
            return self._fac(items, branches)
        views = self._two_views(inputs, mask="FM" in task, dropout=self.params.dropout_rate if "FD" in task else 0.0)
        (u1, i1), (u2, i2) = views
        t = self.params.ssl_temp
        return (info_nce(F.normalize(u1[users]), F.normalize(u2[users]), t)
                + info_nce(F.normalize(i1[items]), F.normalize(i2[items]), t))

    def _fac(self, items, branches) -> torch.Tensor:
        anchor, total = branches[0][1][items], 0.0
        for j, (head, modality_head) in enumerate(zip(self.fac_anchor, self.fac_modality)):
            anchor = head(anchor)
            total = total + info_nce(anchor, modality_head(branches[j + 1][1][items]), self.params.ssl_temp)
        return total

    def _two_views(self, inputs, mask: bool, dropout: float):
        views = []
        masked = augmentation_masks(len(inputs)) if mask else (None, None)
        for drop in masked:
            view_inputs = [torch.zeros_like(x) if j == drop else x for j, x in enumerate(inputs)]
            views.append(self._fuse(self._branches(view_inputs, dropout)))
        return views

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}


def augmentation_masks(n_branches: int) -> tuple[int, int]:
    """Two different branch indices whose item input each view zeroes (torch's global RNG)."""
    first = int(torch.randint(n_branches, ()).item())
    second = (first + 1 + int(torch.randint(n_branches - 1, ()).item())) % n_branches
    return first, second


def _xavier_linear(n_in: int, n_out: int) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.xavier_uniform_(layer.weight)
    return layer
