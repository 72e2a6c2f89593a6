"""Does a model beat the study's baselines? The mark of the clean table.

A model × strategy *beats* a baseline on a dataset when its test ``metric@k`` is higher beyond
seed noise: the paired t-test over the seeds both have (the model's run of seed s against the
baseline's run of seed s; ``evaluation.stats.seed_paired_test``) gives a positive mean
difference with p < 0.05 (two-sided, not corrected for the number of rows: the mark is a
warning, and leaving p uncorrected marks fewer models, never more). Everything else is marked
"does not beat": a lower or equal mean, a difference within the seeds' spread, and identical
results (difference 0, p = 1). The same positive difference on every seed (zero spread, no
p-value) beats. With fewer than two common seeds the seed noise cannot be
estimated, so no model can be shown to beat a baseline: the mark then reads "?" instead of "≤".
"""

from __future__ import annotations

from robustrec.evaluation.stats import seed_paired_test
from robustrec.studies.spec import BASELINE

#: the significance level of the "beats" test
BEAT_ALPHA = 0.05
#: the legend every rendering of the mark prints
LEGEND = ("≤ NAME: the clean metric does not beat baseline NAME beyond seed noise (paired t-test over seeds: "
          "mean difference > 0 with p < 0.05, uncorrected); ? NAME: fewer than two seeds, seed noise unknown. "
          "Baselines are fitted once per seed and are not stressed unless a [[stress]] lists them in models.")


def mark_rows(rows: list[dict], baselines: list[str]) -> None:
    """Add to each clean row of ``rows``: ``baseline`` (True for a baseline's own row), ``mark``
    (the table cell, ``mark``) and, for the others, ``vs_baselines`` (per baseline on the same
    dataset: the seed test and ``beats``) and ``not_beaten`` (the baselines it does not beat, in
    ``baselines`` order)."""
    by_group = {(r["dataset"], r["model"]): r for r in rows if r["strategy"] == BASELINE}
    for row in rows:
        row["baseline"] = row["strategy"] == BASELINE
        row["mark"] = ""
        if row["baseline"]:
            continue
        row["vs_baselines"], row["not_beaten"] = {}, []
        for name in baselines:
            base = by_group.get((row["dataset"], name))
            if base is None:
                continue
            test = beats(row["per_seed"], base["per_seed"])
            row["vs_baselines"][name] = test
            if not test["beats"]:
                row["not_beaten"].append(name)
        row["mark"] = mark(row)


def beats(mine: dict[str, float], base: dict[str, float]) -> dict:
    """The seed-paired test of ``mine`` against ``base`` (seed -> metric) and whether it beats it:
    True / False, or None with fewer than two common seeds (counted as not beating)."""
    seeds = [s for s in mine if s in base]
    test = seed_paired_test([mine[s] for s in seeds], [base[s] for s in seeds])
    mean = test["mean_difference"]
    if len(seeds) < 2:
        test["beats"] = None
    elif mean is None or mean <= 0:
        test["beats"] = False
    elif test["p_value"] is None:  # the same positive difference on every seed: no seed noise at all
        test["beats"] = True
    else:
        test["beats"] = bool(test["p_value"] < BEAT_ALPHA)
    return test


def mark(row: dict) -> str:
    """The clean table's cell: "" (beats every baseline, or is one), "≤ pop", "? pop", "≤ pop ≤ itemknn"."""
    parts = []
    for name in row.get("not_beaten") or []:
        parts.append(f"{'?' if row['vs_baselines'][name]['beats'] is None else '≤'} {name}")
    return " ".join(parts)
