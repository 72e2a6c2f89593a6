"""Protocol audit: how much of a published gain is selection on test?

The Mirror Gradient repository picks, per training log, the epoch whose *test* metrics sum
highest; MMRec picks the hyper-parameters and the seed by test. A study with ``selection =
"test"`` or ``"test-epoch"`` trains every grid point on every seed (its own choices stay on
validation) so that this module can recompute, from the same runs, what each protocol would
report — clearly labelled optimistic — and how far the gain of a strategy over plain moves:

- ``validation`` (robustrec's protocol): the grid point with the best validation metric on the
  first seed, test ``metric@k`` at the best-validation epoch, mean over seeds;
- ``test`` (hyper-parameters and seed chosen on test): the single run, over every grid point and
  seed, with the best test ``metric@k`` at its best-validation epoch;
- ``test-epoch`` (also the epoch chosen on test; needs ``selection = "test-epoch"``, which records
  test metrics after every epoch): over every run and epoch, the epoch whose test REC + PREC + MAP
  + NDCG @k is highest, and its test ``metric@k``.

Optimism of a strategy = its gain over plain under a test protocol minus its gain under
validation (percentage points). Nothing here trains or evaluates: it reads the manifest and the
runs' ``history.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

PROTOCOLS = ("validation", "test", "test-epoch")
LABEL = "OPTIMISTIC (selected on test): for auditing published protocols, never for claims"


def protocol_audit(study, manifest, folder: str | Path, key: str) -> list[dict] | None:
    """Per dataset × model × strategy: the test ``key`` each protocol reports, the gain over plain
    under each, and the optimism; None unless the study is an audit."""
    from robustrec.studies.plan import chosen_runs

    if not study.audits_test:
        return None
    folder = Path(folder)
    metric, k = key.split("@")
    chosen = chosen_runs(study, manifest)
    rows = []
    for dataset in study.datasets:
        for model in study.models:
            group = {}
            for strategy in study.strategies:
                runs = [c for c in manifest.cells.values() if c.kind == "train" and c.state == "done"
                        and (c.spec["dataset"], c.spec["model"], c.spec["strategy"]) == (dataset, model, strategy)]
                if not runs:
                    continue
                picked = [manifest.cells[cid] for cid in chosen.get((dataset, model, strategy), {}).values()
                          if cid in manifest.cells and manifest.cells[cid].state == "done"]
                values = {"validation": _mean([c.result["test"][key] for c in picked]) if picked else None}
                best = max(runs, key=lambda c: (c.result["test"][key], -c.spec["point_index"], -c.spec["seed"]))
                values["test"] = best.result["test"][key]
                epoch_pick = _best_epoch(runs, folder, k, key) if study.selection == "test-epoch" else None
                values["test-epoch"] = epoch_pick["value"] if epoch_pick else None
                group[strategy] = {"dataset": dataset, "model": model, "strategy": strategy, "values": values,
                                   "runs": len(runs), "seeds": len(picked),
                                   "test_pick": {"cell": best.id, "point": best.spec["point"], "seed": best.spec["seed"]},
                                   "test_epoch_pick": epoch_pick}
            plain = group.get("plain")
            for strategy, row in group.items():
                if plain is not None and strategy != "plain":
                    row["gain_pct"] = {p: _gain(row["values"][p], plain["values"][p]) for p in PROTOCOLS}
                    valid_gain = row["gain_pct"]["validation"]
                    row["optimism_pts"] = {p: (None if row["gain_pct"][p] is None or valid_gain is None
                                               else row["gain_pct"][p] - valid_gain) for p in ("test", "test-epoch")}
                rows.append(row)
    return rows


def _best_epoch(runs, folder: Path, k: str, key: str) -> dict | None:
    """Over every run and epoch: the epoch with the highest test REC+PREC+MAP+NDCG @k."""
    best = None
    for cell in runs:
        path = folder / cell.result["run_dir"] / "history.json"
        try:
            history = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for record in history:
            test = record.get("test")
            if not test:
                continue
            total = sum(test[f"{m}@{k}"] for m in ("recall", "precision", "map", "ndcg"))
            if best is None or total > best["sum"]:
                best = {"sum": total, "value": test[key], "epoch": record["epoch"], "cell": cell.id}
    return best


def _mean(values) -> float | None:
    return sum(values) / len(values) if values else None


def _gain(value, base) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return (value - base) / base * 100.0


def audit_table(rows: list[dict], key: str) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the audit table (strings)."""
    headers = ["dataset", "model", "strategy", f"{key} validation", "test", "test-epoch",
               "gain % validation", "test", "test-epoch", "optimism (pts) test", "test-epoch"]

    def num(value, digits=4):
        return "–" if value is None else f"{value:.{digits}f}"

    def pct(value):
        return "" if value is None else f"{value:+.2f}"

    out = []
    for row in rows:
        gain = row.get("gain_pct", {})
        optimism = row.get("optimism_pts", {})
        out.append([row["dataset"], row["model"], row["strategy"],
                    *[num(row["values"][p]) for p in PROTOCOLS],
                    *[pct(gain.get(p)) for p in PROTOCOLS],
                    *[pct(optimism.get(p)) for p in ("test", "test-epoch")]])
    return headers, out
