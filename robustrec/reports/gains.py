"""Derived numbers of a report: per-level rows and the Mirror Gradient ("flat-minima") gain.

Every function here works on report dictionaries only, so ``compare`` can recompute them over
checkpoints coming from several reports.
"""

from __future__ import annotations

import json

import numpy as np

from robustrec.evaluation.stats import drop_difference_test, finite_or_none, relative_drops


def metric_key(metric: str, k: int) -> str:
    return f"{metric}@{k}"


def trial_values(level: dict, key: str) -> np.ndarray:
    return np.asarray([trial["metrics"][key] for trial in level["trials"]], dtype=np.float64)


def level_drops(entry: dict, level: dict, key: str) -> np.ndarray | None:
    """Relative drop in % of every repeat of ``level`` (None when the clean value is 0)."""
    return relative_drops(entry["clean"][key], trial_values(level, key))


def summarize_level(clean: dict[str, float], level: dict) -> dict[str, dict]:
    """mean, std (ddof 1, 0 for one repeat) and relative drop % of every metric@K of a level."""
    out = {}
    for key, clean_value in clean.items():
        values = trial_values(level, key)
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        # mean of per-repeat differences: repeats equal to the clean value give exactly 0
        drop = (clean_value - values).mean() / clean_value * 100.0 if clean_value else None
        out[key] = {"mean": float(values.mean()), "std": float(std),
                    "drop_pct": finite_or_none(drop) if drop is not None else None}
    return out


def pair_key(entry: dict) -> str:
    """Checkpoints that differ only in training strategy share this key (model, data, params)."""
    config = entry["config"]
    return json.dumps([config.get("model"), config.get("dataset"), config.get("model_params", {})],
                      sort_keys=True)


#: entry key naming the report an entry came from, set by ``compare`` when it merges reports
SOURCE = "_report"


def mg_pairs(entries: list[dict]) -> list[tuple[dict, dict]]:
    """(baseline, MG) pairs: each MG checkpoint with the baseline of the same model, data and
    hyper-parameters trained with the same seed (else the first such baseline) **in the same report** (entries merged by ``compare`` carry their report in ``SOURCE``),
    so MG runs are compared with the baseline that went through the same draws and levels."""
    pairs = []
    for mg in (e for e in entries if e["mg"]):
        candidates = [e for e in entries if not e["mg"] and pair_key(e) == pair_key(mg)
                      and e.get(SOURCE) == mg.get(SOURCE)]
        # several seeds in one report: the baseline trained with the same seed (and modalities)
        # (and the same adversarial training: an AMR+MG run against its AMR baseline)
        twin = next((e for e in candidates if _twin_key(e) == _twin_key(mg) and _adversarial(e) == _adversarial(mg)),
                    None) or next((e for e in candidates if _twin_key(e) == _twin_key(mg)), None)
        baseline = twin or (candidates[0] if candidates else None)
        if baseline is not None:
            pairs.append((baseline, mg))
    return pairs


def _twin_key(entry: dict) -> tuple:
    config = entry["config"]
    return config.get("seed"), tuple(config.get("modalities") or ())


def _adversarial(entry: dict) -> str:
    return entry["config"].get("adversarial") or "none"


def _levels_by_strength(entry: dict) -> dict[float, dict]:
    return {float(level["strength"]): level for level in entry["levels"]}


def mg_gain(baseline: dict, mg: dict, key: str) -> list[dict]:
    """MG gain at every strength both checkpoints were tested at, for metric@K ``key``.

    clean_gain_pct: (clean_MG − clean_base)/clean_base in %; drop_*_pct: mean relative drops;
    drop_reduction_pts: drop_base − drop_MG in percentage points (> 0: MG drops less), with the
    repeat-level test of ``drop_difference_test``; flatness: mean training-loss rise of each.
    """
    out = []
    base_levels, mg_levels = _levels_by_strength(baseline), _levels_by_strength(mg)
    base_clean, mg_clean = baseline["clean"][key], mg["clean"][key]
    for strength in sorted(set(base_levels) & set(mg_levels)):
        base_level, mg_level = base_levels[strength], mg_levels[strength]
        base_drops, mg_drops = level_drops(baseline, base_level, key), level_drops(mg, mg_level, key)
        row = {"baseline": baseline["name"], "mg": mg["name"], "metric": key, "strength": strength,
               "clean_gain_pct": finite_or_none((mg_clean - base_clean) / base_clean * 100) if base_clean else None,
               "drop_baseline_pct": None, "drop_mg_pct": None, "drop_reduction_pts": None, "test": None,
               "flatness": {"baseline": _rise(base_level), "mg": _rise(mg_level)}}
        if base_drops is not None and mg_drops is not None:
            same_seeds = [t["seed"] for t in base_level["trials"]] == [t["seed"] for t in mg_level["trials"]]
            row.update(drop_baseline_pct=float(base_drops.mean()), drop_mg_pct=float(mg_drops.mean()),
                       drop_reduction_pts=float(base_drops.mean() - mg_drops.mean()),
                       test=drop_difference_test(base_drops, mg_drops, paired=same_seeds))
        out.append(row)
    return out


def _rise(level: dict) -> float | None:
    flatness = level.get("flatness") or {}
    return (flatness.get("loss_rise") or {}).get("mean")


def all_mg_gains(entries: list[dict], keys: list[str]) -> list[dict]:
    return [row for baseline, mg in mg_pairs(entries) for key in keys for row in mg_gain(baseline, mg, key)]
