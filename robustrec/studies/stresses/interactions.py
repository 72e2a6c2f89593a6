"""The ``interactions`` kind: a share of each user's training interactions dropped, or fake ones added,
at inference; graph models rebuild their graphs, weights stay (docs/stress/interactions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from robustrec.studies.stresses.base import Repeats, StressSpec, option, parse_levels
from robustrec.studies.stresses.registry import register_stress


@register_stress
@dataclass
class InteractionsStress(StressSpec):
    """Drop a share of each user's training interactions, or add fake ones, at inference; re-rank R times.

    For a user with n training interactions, ⌊rate·n + ½⌋ are dropped (--mode drop, uniformly) or
    added (--mode add) with items the user never interacted with in any split, chosen by a
    shilling profile: random (uniform), average (probability ∝ training popularity + 1) or
    bandwagon (the most popular half, then random filler). Graph models (LightGCN, LayerGCN,
    SelfCF, FREEDOM, DualGNN, DRAGON, BM3, SLMRec, MMGCN, GRCN) rebuild their graphs from the
    edited interactions; their weights are not retrained. Models whose scores do not read the
    graph at inference (BPRMF, VBPR) are reported unaffected by construction. Evaluation masks
    the original training interactions.
    """

    kind: ClassVar[str] = "interactions"
    repeats: ClassVar[Repeats] = Repeats(5, "Draws per rate.")
    mode: str = option("drop", "drop (remove interactions) or add (fake interactions, --profile).")
    rate: str = option("0.1", "Share of each user's training interactions dropped or added, or a comma list.")
    profile: str = option("random", "--mode add: random (items uniformly), average (∝ popularity + 1) or "
                          "bandwagon (most popular half, random filler).")

    def check(self) -> "InteractionsStress":
        from robustrec.perturbations.base import check_rate
        from robustrec.perturbations.interactions import check_mode

        check_mode(self.mode, self.profile)
        self._rates = [check_rate(value) for value in parse_levels(self.rate, "--rate")]
        return self

    def perturbations(self, checkpoints, data) -> list:
        from robustrec.perturbations.interactions import InteractionEdit

        known = data.train + data.valid + data.test
        return [InteractionEdit(self.mode, rate, data.train, known, self.profile) for rate in self._rates]

    def report_settings(self, data) -> dict:
        what = ("drop: a uniform share of each user's training interactions" if self.mode == "drop" else
                f"add, {self.profile} profile: fake interactions with items the user never had")
        sizes = np.diff(data.train.indptr)
        return {"title": "interactions", "description": what, "mode": self.mode,
                "profile": self.profile if self.mode == "add" else None, "file_tag": self.mode,
                "per_user": "k_u = floor(rate * n_u + 1/2) of user u's n_u training interactions",
                "masking": "evaluation masks the original training interactions",
                "train_interactions": int(data.train.nnz), "median_user_interactions": float(np.median(sizes))}

    @classmethod
    def contract_perturbation(cls, data, strength, encoder):
        from robustrec.perturbations.interactions import InteractionEdit

        return InteractionEdit("add", strength, data.train, data.train + data.valid + data.test, "bandwagon")
