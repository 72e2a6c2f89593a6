"""Run a robustness study: clean + R perturbed evaluations of several checkpoints, as a report.

The runner is kind-agnostic: it takes any ``Perturbation`` objects (one per severity level)
and an optional per-level extra (the flatness figure for noise). Progress goes to callbacks;
the library never prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustrec.checkpoints import LoadedCheckpoint
from robustrec.errors import ConfigError
from robustrec.evaluation import DEFAULT_KS, METRICS, full_ranking
from robustrec.evaluation.moves import MoveContext, summarize_moves
from robustrec.perturbations.base import Perturbation, trial_seeds
from robustrec.reports.gains import all_mg_gains, metric_key, summarize_level
from robustrec.reports.schema import FORMAT, SCHEMA_VERSION, library_versions
from robustrec.evaluation.stats import UserDifferences, paired_difference_test

#: (model, perturbation, seeds) -> extra numbers stored with the level (e.g. flatness)
LevelExtra = Callable[[object, Perturbation, list[int]], dict]


class StudyCallback:
    """Progress hooks of ``run_study``."""

    def on_study_start(self, total_evaluations: int) -> None: ...

    def on_evaluation_end(self, checkpoint: str, strength: float | None, trial: int | None) -> None:
        """One evaluation finished; ``strength``/``trial`` are None for the clean one."""


@dataclass
class StudySettings:
    """What every checkpoint goes through; ``metric``/``k`` only choose what tables show first."""

    repeats: int = 10
    seed: int = 0
    split: str = "test"
    ks: tuple[int, ...] = DEFAULT_KS
    metric: str = "recall"
    k: int = 5
    #: users scored per block; 0 = automatic (``evaluation.ranking.score_block_users``)
    batch_size: int = 0
    extra_settings: dict = field(default_factory=dict)

    def validate(self) -> "StudySettings":
        if self.repeats < 1:
            raise ConfigError(f"--repeats must be >= 1, got {self.repeats}")
        if not 0 <= self.seed <= 2**63 - 1:
            raise ConfigError(f"--seed must be between 0 and 2^63-1, got {self.seed}")
        if self.metric not in METRICS:
            raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.k not in self.ks:
            raise ConfigError(f"--k must be one of {', '.join(map(str, self.ks))}, got {self.k}")
        if self.split not in ("valid", "test"):
            raise ConfigError(f"--split must be valid or test, got {self.split!r}")
        return self


def run_study(checkpoints: list[LoadedCheckpoint], data, perturbations: list[Perturbation],
              settings: StudySettings, callbacks: list[StudyCallback] | None = None,
              level_extra: LevelExtra | None = None) -> dict:
    """Evaluate every checkpoint clean and under every perturbation R times; return the report."""
    settings.validate()
    kinds = {p.kind for p in perturbations}
    if not perturbations or len(kinds) != 1:
        raise ConfigError("a study needs at least one perturbation, all of one kind")
    callbacks = callbacks or []
    seeds = trial_seeds(settings.seed, settings.repeats)
    affected = sum(perturbations[0].unaffected_reason(c.model) is None for c in checkpoints)
    for cb in callbacks:
        cb.on_study_start(len(checkpoints) + affected * len(perturbations) * settings.repeats)
    entries = [_study_checkpoint(c, data, perturbations, seeds, settings, callbacks, level_extra)
               for c in checkpoints]
    keys = [metric_key(m, k) for k in settings.ks for m in METRICS]
    first = perturbations[0]
    return {
        "format": FORMAT, "schema_version": SCHEMA_VERSION, "kind": first.kind,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": library_versions(),
        "dataset": data.describe(),
        "settings": {"perturbation": first.kind, "strength_name": first.strength_name,
                     "levels": [p.strength for p in perturbations],
                     "parameters": [p.parameters() for p in perturbations],
                     "repeats": settings.repeats, "seed": settings.seed, "trial_seeds": seeds,
                     "seed_derivation": "numpy SeedSequence(seed).spawn(repeats), first uint32 of each",
                     "split": settings.split, "ks": list(settings.ks), "metric": settings.metric,
                     "k": settings.k, **settings.extra_settings},
        "checkpoints": entries,
        "mg_gains": all_mg_gains(entries, keys),
    }


def _study_checkpoint(checkpoint: LoadedCheckpoint, data, perturbations, seeds, settings, callbacks,
                      level_extra) -> dict:
    run, model = checkpoint.run, checkpoint.model
    clean = _evaluate(model, data, settings)
    moves = MoveContext.build(data, settings.split, clean.users, settings.ks)
    clean_moves = moves.clean_moves(clean.top, clean.per_user, clean.hits)
    _notify(callbacks, run.name, None, None)
    levels = []
    unaffected = perturbations[0].unaffected_reason(model)
    for perturbation in perturbations if unaffected is None else []:
        trials = []
        differences = {key: UserDifferences(values) for key, values in clean.per_user.items()}
        for index, seed in enumerate(seeds):
            result = _evaluate(perturbation.apply(model, seed), data, settings)
            changed, items_note = _changed_mask(perturbation, seed, data.n_items)
            trials.append({"seed": seed, **perturbation.trial_record(seed), "metrics": result.summary(),
                           "moves": moves.trial_moves(clean.top, result.top, result.per_user, changed,
                                                      result.hits)})
            for key, running in differences.items():  # O(users) whatever the repeats
                running.add(result.per_user[key])
            _notify(callbacks, run.name, perturbation.strength, index)
        level = {"strength": perturbation.strength, "parameters": perturbation.parameters(), "trials": trials}
        level["summary"] = summarize_level(clean.summary(), level)
        level["moves"] = summarize_moves(clean_moves, [trial["moves"] for trial in trials])
        level["moves_items"] = items_note
        level["user_test"] = {key: paired_difference_test(running.mean()) for key, running in differences.items()}
        if level_extra is not None:
            level.update(level_extra(model, perturbation, seeds))
        levels.append(level)
    entry = {"name": run.name, "path": str(Path(run.path).resolve()), "weights_sha256": run.weights_sha256,
             "model": run.config.get("model"),
             "mg": bool(run.config.get("mg")), "config": run.config, "trained": run.metrics,
             "clean": clean.summary(), "clean_moves": clean_moves, "levels": levels}
    if unaffected is not None:  # clean metrics only: no perturbed trials, no fake robustness
        entry["unaffected"] = f"unaffected by construction: {unaffected}"
    return entry


def _changed_mask(perturbation: Perturbation, seed: int, n_items: int) -> tuple[np.ndarray | None, str]:
    """(mask of the items trial ``seed`` changes or None, what the edited-item numbers cover)."""
    items = perturbation.changed_items(seed)
    if items is None:
        return None, "not item-specific: the stress changes no particular items"
    mask = np.zeros(n_items, dtype=bool)
    mask[np.asarray(items, dtype=np.int64)] = True
    if mask.all():
        return None, "all items: every item is changed, no others to compare with"
    return mask, "items the stress changed (edited_*) vs the others (other_*)"


def _evaluate(model, data, settings: StudySettings):
    return full_ranking(model, data, settings.split, ks=settings.ks, batch_size=settings.batch_size)


def _notify(callbacks, name, strength, trial) -> None:
    for cb in callbacks:
        cb.on_evaluation_end(name, strength, trial)
