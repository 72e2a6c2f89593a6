"""LGMRec (Guo et al., AAAI 2024), on any set of item modalities."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
import torch.nn.functional as F

from robustrec.models.base import Recommender, bpr_loss, check_params
from robustrec.models.graph import normalized_bipartite, row_normalize, spmm, to_torch_csr, transpose_csr
from robustrec.models.lightgcn import propagate_mean
from robustrec.models.registry import register


def hyper_contrast(anchor: torch.Tensor, positive: torch.Tensor, memberships: torch.Tensor,
                   latent: torch.Tensor, temperature: float) -> torch.Tensor:
    """Σ_b −log softmax_b: cos(anchor_b, positive_b) against cos(anchor_b, every row of
    ``memberships @ latent``) / temperature (LGMRec's hypergraph contrast, summed over the batch).

    The rows contrasted against are hypergraph embeddings, memberships (N × h) @ latent (h × d)
    with h hyperedges, so their cosines are computed in h dimensions: (â Lᵀ) (M / ‖M L‖)ᵀ, a
    B × h × N product instead of B × d × N (16× fewer operations at d = 64, h = 4); same values."""
    unit = F.normalize(anchor, dim=1)
    gram = latent @ latent.t()
    norms = ((memberships @ gram) * memberships).sum(1).clamp_min(1e-24).sqrt().clamp_min(1e-12)
    # 1/temperature scales the B × h factor, not the B × N logits (one pass less each way)
    logits = ((unit @ latent.t()) / temperature) @ (memberships / norms[:, None]).t()
    positive_logits = (unit * F.normalize(positive, dim=1)).sum(1) / temperature
    return (torch.logsumexp(logits, 1) - positive_logits).sum()


@register
class LGMRec(Recommender):
    """Local (collaborative + per-modality graph) and global (hypergraph) embeddings.

    - Collaborative graph embedding (CGE): LightGCN mean over ``n_ui_layers`` of the
      normalised user–item graph (0 layers: the ID embeddings, MMRec's ``cf_model: mf``).
    - Modality graph embedding (MGE), per modality m: items F_m W_m (no bias), users the mean
      of their training items' projections, then ``n_mm_layers`` propagations over the
      normalised user–item graph (the last layer, not a mean).
    - Global hypergraph embedding (GHE), per modality m: ``hyper_num`` hyperedges; item
      memberships = Gumbel-softmax(F_m H_m, τ 0.2), user memberships = Gumbel-softmax of the sum
      of their items' logits (at inference plain softmax(logits/τ), so scores are deterministic;
      MMRec samples Gumbel noise when it scores too); both dropped out (keep ``keep_rate``) in
      training; ``n_hyper_layers`` rounds of hyperedge ↔ item message passing of the CGE items.
    - Representation: CGE + Σ_m normalize(MGE_m) + ``alpha`` · normalize(Σ_m GHE_m).
    - Loss: BPR + ``cl_weight`` · hypergraph contrast between modalities (for every pair
      m < m' in canonical order: users' GHE_m against GHE_m', negatives all users, and the same
      for the positive items; MMRec's image→text pair for image+text; none with one modality)
      + ``reg_weight`` · (‖u‖ + ‖p‖ + ‖n‖) / batch (L2 norms, not squared, as MMRec).

    Defaults are MMRec's LGMRec.yaml (its Baby setting): embedding 64 (also the modality
    projections' width, MMRec's feat_embed_dim), n_ui_layers 2, n_mm_layers 2,
    n_hyper_layers 1, hyper_num 4, keep_rate 0.5, alpha 0.3, cl_weight 1e-4, reg_weight 1e-6,
    temperature 0.2.
    """

    name = "lgmrec"
    paper = ("Guo et al., LGMRec: Local and Global Graph Learning for Multimodal Recommendation, "
             "AAAI 2024")
    multimodal = True
    features_at_inference = True
    graph_at_inference = True
    loss_reads_features = True  # F_m W_m and F_m H_m are computed from the buffers every forward

    @dataclass
    class Params:
        embedding_dim: int = 64
        n_ui_layers: int = 2
        n_mm_layers: int = 2
        n_hyper_layers: int = 1
        hyper_num: int = 4
        keep_rate: float = 0.5
        alpha: float = 0.3
        cl_weight: float = 1e-4
        reg_weight: float = 1e-6
        temperature: float = 0.2

        def __post_init__(self) -> None:
            checks = [(self.embedding_dim >= 1, "embedding_dim must be >= 1"),
                      (self.n_ui_layers >= 0 and self.n_mm_layers >= 0, "layer counts must be >= 0"),
                      (self.n_hyper_layers >= 1, f"n_hyper_layers must be >= 1, got {self.n_hyper_layers}"),
                      (self.hyper_num >= 1, f"hyper_num must be >= 1, got {self.hyper_num}"),
                      (0.0 < self.keep_rate <= 1.0, f"keep_rate must be in (0, 1], got {self.keep_rate}"),
                      (self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}"),
                      (self.cl_weight >= 0 and self.reg_weight >= 0, "loss weights must be >= 0"),
                      (self.temperature > 0, f"temperature must be > 0, got {self.temperature}")]
            check_params("lgmrec", checks)

    def __init__(self, data, params: Params) -> None:
        super().__init__(data, params)
        dim, hyper = params.embedding_dim, params.hyper_num
        self.user_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_users, dim)))
        self.item_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(self.n_items, dim)))
        widths = {m: f.shape[1] for m, f in self.features().items()}
        self.projections = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(w, dim))) for m, w in widths.items()})
        self.hyperedges = nn.ParameterDict(
            {m: nn.Parameter(nn.init.xavier_uniform_(torch.empty(w, hyper))) for m, w in widths.items()})
        self.drop = nn.Dropout(1.0 - params.keep_rate)
        self.interactions_changed(sp.csr_matrix(data.train, dtype=np.float32))

    def interactions_changed(self, train) -> None:
        """The user–item graph, the users' item sums and means (every view reads them)."""
        self.adjacency = self.place(normalized_bipartite(train))
        user_items = to_torch_csr(train)  # raw: users' hyperedge logits sum their items'
        self.user_items, self.user_items_t = self.place(user_items), self.place(transpose_csr(user_items))
        mean = to_torch_csr(row_normalize(train))  # users' modality features: the mean of their items'
        self.user_mean, self.user_mean_t = self.place(mean), self.place(transpose_csr(mean))

    # --- representations ----------------------------------------------------------------
    def _memberships(self, logits: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.drop(F.gumbel_softmax(logits, tau=self.params.temperature, hard=False, dim=1))
        return torch.softmax(logits / self.params.temperature, dim=1)

    def forward_parts(self):
        """(all representations (users + items) × dim, {m: (user memberships, item memberships,
        hyperedge latents)})."""
        p = self.params
        ego = torch.cat([self.user_embedding, self.item_embedding])
        cge = propagate_mean(self.adjacency, ego, p.n_ui_layers)
        cge_items = cge[self.n_users:]
        local, global_sum, hyper = cge, 0.0, {}
        for m, features in self.features().items():
            # one pass over the (wide) features for both the projection and the hyperedge logits
            both = features @ torch.cat([self.projections[m], self.hyperedges[m]], 1)
            item_feats, item_logits = both[:, : p.embedding_dim], both[:, p.embedding_dim:]
            mge = torch.cat([spmm(self.user_mean, item_feats, self.user_mean_t), item_feats])
            for _ in range(p.n_mm_layers):
                mge = spmm(self.adjacency, mge)
            local = local + F.normalize(mge, dim=1)
            user_logits = spmm(self.user_items, item_logits, self.user_items_t)
            items_h, users_h = self._memberships(item_logits), self._memberships(user_logits)
            item_side = cge_items
            for _ in range(p.n_hyper_layers):
                latent = items_h.t() @ item_side
                item_side = items_h @ latent
            hyper[m] = (users_h, items_h, latent)
            global_sum = global_sum + torch.cat([users_h, items_h]) @ latent
        return local + p.alpha * F.normalize(global_sum, dim=1), hyper

    def final_embeddings(self):
        out, _ = self.forward_parts()
        return out[: self.n_users], out[self.n_users:]

    def loss(self, users, pos, neg):
        p = self.params
        out, hyper = self.forward_parts()
        u, pi, ni = out[users], out[self.n_users + pos], out[self.n_users + neg]
        loss = bpr_loss((u * pi).sum(1), (u * ni).sum(1))
        if p.cl_weight > 0:
            contrast = 0.0
            for a, b in combinations(self.feature_names, 2):
                (ua, ia, la), (ub, ib, lb) = hyper[a], hyper[b]
                contrast = contrast + hyper_contrast(ua[users] @ la, ub[users] @ lb, ub, lb, p.temperature)
                contrast = contrast + hyper_contrast(ia[pos] @ la, ib[pos] @ lb, ib, lb, p.temperature)
            loss = loss + p.cl_weight * contrast
        if p.reg_weight > 0:
            loss = loss + p.reg_weight * (u.norm() + pi.norm() + ni.norm()) / len(users)
        return loss

    def embedding_tables(self):
        return {"user": self.user_embedding, "item": self.item_embedding}


__all__ = ["LGMRec", "hyper_contrast"]
