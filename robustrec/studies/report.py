"""The study report: clean metrics over seeds (the paper's Table 3) and drops under each stress
(Tables 4/5), with paired tests across training seeds and a multiple-comparison correction.

Every number is traceable: each row names the cells (and so the run folders and stress
reports) it was computed from. Nothing here trains or evaluates: it reads ``study.json``, the
runs' metrics and the stress reports.

- Clean rows: per dataset × model × strategy, the chosen grid point's test metrics (at the
  best-validation epoch) mean ± std over seeds; a strategy other than plain is compared with
  plain by a paired t-test over seeds on ``metric@k`` (improvement % of the means).
- Stress rows: per dataset × stress × level × model × strategy, the relative drop % of
  ``metric@k`` (each seed's mean over its repeats), mean with a 95% t-interval over seeds, and
  in how many seeds the drop is significant by the per-user paired test; a strategy other
  than plain is compared with plain on the drop by a paired t-test over seeds: the drop reduction,
  plain's drop − its drop in points (> 0: drops less), as perturb's and compare's MG gain tables.
- Each family (clean comparisons; stress comparisons; per-user drop tests) is corrected with
  Holm (default) or Benjamini–Hochberg; tables say which and print adjusted p-values.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robustrec.errors import RobustRecError
from robustrec.evaluation.stats import CORRECTIONS, adjust_p_values, seed_paired_test, t_interval
from robustrec.reports.formatting import clean_table, stress_table
from robustrec.reports.schema import write_atomic

ALPHA = 0.05
#: what the drop-reduction column (``reports.formatting.DROP_REDUCTION``) means
DROP_REDUCTION_MEANS = "drop reduction = plain's drop − this strategy's drop (pct points); > 0: drops less than plain"


class StudyReportError(RobustRecError):
    """A study folder has nothing to report (no finished cell)."""


def counts_text(counts: dict[str, int]) -> str:
    """Cell counts as words: "12 done, 2 failed" (states with no cell left out)."""
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "no cells"


def _one_line(text) -> str:
    return " ".join(str(text or "no error recorded").split())


def build_report(folder: str | Path, metric: str = "recall", k: int = 5, correction: str = "holm") -> dict:
    """The study report of a study folder as a dict (JSON-able)."""
    from robustrec.errors import ConfigError
    from robustrec.evaluation import METRICS
    from robustrec.studies.plan import Cell, Manifest, chosen_runs, read_manifest, refuse_stale
    from robustrec.studies.spec import study_from_dict

    if metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}, got {metric!r}")
    adjust_p_values([], correction)  # checks the name
    folder = Path(folder)
    body = read_manifest(folder)
    study = study_from_dict(body["study"])
    manifest = Manifest(folder, study, {cid: Cell(**rec) for cid, rec in body["cells"].items()})
    refuse_stale(folder, manifest)  # never combine new clean metrics with drops of old weights
    from robustrec.studies.audit import protocol_audit
    key = f"{metric}@{k}"
    chosen = chosen_runs(study, manifest)
    clean = _clean_rows(study, manifest, chosen, key)
    stress = _stress_rows(study, manifest, folder, key)
    counts = manifest.counts()
    if not clean and not stress:
        failed = [c for c in manifest.cells.values() if c.state == "failed"]
        first = f"; first failure: {failed[0].id}: {_one_line(failed[0].error)}" if failed else ""
        raise StudyReportError(f"study {study.name!r} in {folder} has nothing to report: no cell finished "
                               f"({counts_text(counts)}){first}; `robustrec study status {folder}` lists every cell")
    from robustrec.studies.baselines import LEGEND, mark_rows

    mark_rows(clean, study.baselines)
    _correct(clean, "vs_plain", correction)
    _correct(stress, "vs_plain", correction)
    _correct_user_tests(stress, correction)
    return {"format": "robustrec-study-report", "study": study.name, "folder": str(folder.resolve()),
            "metric": metric, "k": k, "key": key, "correction": CORRECTIONS[correction], "alpha": ALPHA,
            "cells": counts, "complete": counts["done"] == sum(counts.values()),
            "valid_metric": study.valid_metric, "seeds": study.seeds,
            "selection": study.selection, "clean": clean, "stress": stress,
            "baselines": study.baselines, "baseline_legend": LEGEND if study.baselines else "",
            "audit": protocol_audit(study, manifest, folder, key)}


def study_html(folder: str | Path, metric: str = "recall", k: int = 5, correction: str = "holm",
               study_report: dict | None = None, landscapes: list[str | Path] = (),
               command: str | None = None) -> str:
    """The HTML page of a study folder (``study_report``: ``build_report``'s dict, built if None)."""
    from robustrec.reports.html import render_study_html
    from robustrec.studies.plan import read_manifest

    folder = Path(folder)
    report = study_report if study_report is not None else build_report(folder, metric, k, correction)
    return render_study_html(folder, report, read_manifest(folder), landscapes, command)


def _clean_rows(study, manifest, chosen, key) -> list[dict]:
    rows = []
    valid_metric = study.valid_metric
    for (dataset, model, strategy), by_seed in chosen.items():
        done = {seed: manifest.cells[cid] for seed, cid in by_seed.items()
                if cid in manifest.cells and manifest.cells[cid].state == "done"}
        if not done:
            continue
        seeds = sorted(done)
        tests = {name: [done[s].result["test"][name] for s in seeds] for name in done[seeds[0]].result["test"]}
        valid = [done[s].result["valid"][valid_metric] for s in seeds]
        rows.append({"dataset": dataset, "model": model, "strategy": strategy, "seeds": seeds,
                     "point": done[seeds[0]].spec["point"], "valid": _spread(valid),
                     "test": {name: _spread(values) for name, values in tests.items()},
                     "per_seed": {str(s): done[s].result["test"][key] for s in seeds},
                     "cells": [done[s].id for s in seeds],
                     "runs": [done[s].result["run_dir"] for s in seeds]})
    by_group = {(r["dataset"], r["model"], r["strategy"]): r for r in rows}
    for row in rows:
        plain = by_group.get((row["dataset"], row["model"], "plain"))
        if row["strategy"] == "plain" or plain is None:
            continue
        seeds = [s for s in row["seeds"] if s in plain["seeds"]]
        mine = [row["per_seed"][str(s)] for s in seeds]
        base = [plain["per_seed"][str(s)] for s in seeds]
        test = seed_paired_test(mine, base)
        base_mean = float(np.mean(base)) if base else 0.0
        test["gain_pct"] = (float(np.mean(mine)) - base_mean) / base_mean * 100.0 if base_mean else None
        row["vs_plain"] = test
    return rows


def _stress_rows(study, manifest, folder: Path, key: str) -> list[dict]:
    rows = []
    cells = [c for c in manifest.cells.values() if c.kind == "stress" and c.state == "done"]
    groups: dict[tuple, dict] = {}
    for cell in cells:
        spec = cell.spec
        for report_path in cell.result["reports"]:
            report = json.loads((folder / report_path).read_text())
            title = report["settings"].get("title") or report["kind"]
            description = report["settings"].get("description", "")
            roles = dict(zip(spec["checkpoints"], zip(spec["models"], spec["strategies"])))
            for entry in report["checkpoints"]:
                model, strategy = _role_of(entry, roles, folder)
                if entry.get("unaffected"):
                    group = groups.setdefault((spec["dataset"], spec["stress_index"], title, None, model,
                                               strategy), _group(spec, title, description, None, model, strategy))
                    group["unaffected"] = entry["unaffected"]
                    group["cells"].append(cell.id)
                    continue
                for level in entry["levels"]:
                    group = groups.setdefault((spec["dataset"], spec["stress_index"], title, level["strength"],
                                               model, strategy),
                                              _group(spec, title, description, level["strength"], model, strategy))
                    drop = level["summary"][key]["drop_pct"]
                    group["per_seed"][str(spec["seed"])] = drop
                    group["user_p"][str(spec["seed"])] = level["user_test"][key]["p_value"]
                    group["user_d_z"][str(spec["seed"])] = level["user_test"][key].get("d_z")
                    group["moves_per_seed"][str(spec["seed"])] = _level_moves(level, key)
                    group["cells"].append(cell.id)
                    group["reports"].append(report_path)
    for group in groups.values():
        drops = [v for v in group["per_seed"].values() if v is not None]
        group["drop_pct"] = _spread(drops)
        low, high = t_interval(np.asarray(drops)) if len(drops) >= 2 else (None, None)
        group["drop_pct"]["ci95"] = [low, high]
        group["moves"] = _mean_moves(group.pop("moves_per_seed").values())
        rows.append(group)
    index = {(r["dataset"], r["stress_index"], r["title"], r["strength"], r["model"], r["strategy"]): r for r in rows}
    for row in rows:
        plain = index.get((row["dataset"], row["stress_index"], row["title"], row["strength"], row["model"], "plain"))
        if row["strategy"] == "plain" or plain is None or row.get("unaffected"):
            continue
        seeds = [s for s in row["per_seed"] if s in plain["per_seed"] and row["per_seed"][s] is not None
                 and plain["per_seed"][s] is not None]
        # the drop reduction, signed as perturb's and compare's MG gain: plain's drop − this drop
        row["vs_plain"] = seed_paired_test([plain["per_seed"][s] for s in seeds], [row["per_seed"][s] for s in seeds])
        row["vs_plain"]["what"] = DROP_REDUCTION_MEANS
    rows.sort(key=lambda r: (r["dataset"], r["stress_index"], r["title"], r["strength"] is None,
                             r["strength"] or 0, r["model"], r["strategy"] != "plain", r["strategy"]))
    return rows


def _group(spec, title, description, strength, model, strategy) -> dict:
    return {"dataset": spec["dataset"], "stress_index": spec["stress_index"], "kind": spec["kind"], "title": title,
            "description": description, "strength": strength, "model": model, "strategy": strategy,
            "per_seed": {}, "user_p": {}, "user_d_z": {}, "moves_per_seed": {}, "cells": [], "reports": []}


def _level_moves(level: dict, key: str) -> dict[str, float | None]:
    """The move numbers of a level at ``key``'s K (``evaluation.moves``): Jaccard, RBO, exposure
    (perturbed mean and change), edited/other items, slice drops %; {} for reports without them."""
    k = key.split("@")[1]
    out = {}
    for name, row in (level.get("moves") or {}).items():
        if name.split("|")[0].split("@")[-1] != k:
            continue
        out[name] = row.get("mean")
        if "change" in row:
            out[f"{name} change"] = row["change"]["mean"]
        if "drop_pct" in row:
            out[f"{name} drop_pct"] = row["drop_pct"]["mean"]
    return out


def _mean_moves(per_seed) -> dict[str, float | None]:
    """Mean over seeds of every move number (seeds without it left out)."""
    values: dict[str, list[float]] = {}
    for moves in per_seed:
        for name, value in moves.items():
            values.setdefault(name, [])
            if value is not None:
                values[name].append(value)
    return {name: float(np.mean(v)) if v else None for name, v in values.items()}


def _role_of(entry: dict, roles: dict, folder: Path) -> tuple[str, str]:
    """(model, strategy) of a report entry, by its run folder."""
    for path, role in roles.items():
        if Path(entry["path"]).resolve() == (folder / path).resolve():
            return role
    return entry["model"], entry["name"]


def _spread(values) -> dict:
    values = [float(v) for v in values]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "n": len(values)}


def _correct(rows: list[dict], field: str, method: str) -> None:
    tests = [row[field] for row in rows if field in row]
    for test, adjusted in zip(tests, adjust_p_values([t["p_value"] for t in tests], method)):
        test["p_adjusted"] = adjusted
        test["significant"] = adjusted is not None and adjusted < ALPHA


def _correct_user_tests(rows: list[dict], method: str) -> None:
    """Per-user drop tests (one per row and seed) as one family: seeds whose drop is significant."""
    flat = [(row, seed, p) for row in rows for seed, p in row["user_p"].items()]
    adjusted = adjust_p_values([p for _, _, p in flat], method)
    for row in rows:
        row["user_p_adjusted"] = {}
    for (row, seed, _), p in zip(flat, adjusted):
        row["user_p_adjusted"][seed] = p
    for row in rows:
        row["significant_seeds"] = sum(p is not None and p < ALPHA for p in row["user_p_adjusted"].values())


# --- rendering: Markdown and CSV (the table cells: robustrec.reports.formatting) ----------------------


def markdown(report: dict) -> str:
    lines = [f"# Study {report['study']}", "",
             f"Metric {report['key']} (test split; grid points chosen on validation {report['valid_metric']} with "
             f"seed {report['seeds'][0]}, selection '{report['selection']}'). Seeds: "
             f"{', '.join(map(str, report['seeds']))}. Paired t-tests over training seeds; p-values adjusted by "
             f"{report['correction']} within each table; * = adjusted p < {report['alpha']}. "
             f"Cells: {counts_text(report['cells'])}.", ""]
    if not report["complete"]:
        lines += ["**The study is not complete: these tables cover finished cells only.**", ""]
    for title, (headers, rows), note in (
            ("Clean metrics (mean ± std over seeds)", clean_table(report), report.get("baseline_legend", "")),
            ("Drops under stress", stress_table(report),
             "Drop: relative drop % of each seed's mean over its repeats; 95% t-interval over seeds. "
             "sig. seeds: seeds whose per-user paired test (adjusted) finds a drop. "
             f"{DROP_REDUCTION_MEANS.replace('this strategy', 'the strategy')}.")):
        lines += [f"## {title}", ""]
        if note:
            lines += [note, ""]
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + "|".join("---" for _ in headers) + "|")
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        lines.append("")
    if report.get("audit"):
        from robustrec.studies.audit import LABEL, audit_table

        headers, rows = audit_table(report["audit"], report["key"])
        lines += [f"## Protocol audit: {LABEL}", "",
                  "Validation: robustrec's protocol (grid point chosen on validation, mean over seeds). test: the "
                  "single run, over every grid point and seed, with the best test value (hyper-parameters and seed "
                  "chosen on test). test-epoch: also the epoch with the best test REC+PREC+MAP+NDCG. Optimism: the "
                  "gain over plain under a test protocol minus the gain under validation (points).", "",
                  "| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
                  *["| " + " | ".join(row) + " |" for row in rows], ""]
    lines += [f"Every row's cells, run folders and reports are listed in {output_names(report)['json']}.", ""]
    return "\n".join(lines)


# --- CSV: one value per cell, numbers as numbers (empty: none); display strings stay in Markdown ---

#: numeric columns of clean.csv besides the per-metric ``<metric@K>_mean``/``_std`` pairs
CLEAN_NUMERIC = ("seeds", "valid_mean", "valid_std", "diff_vs_plain", "diff_ci_low", "diff_ci_high", "gain_pct",
                 "p", "p_adj")
#: numeric columns of stress.csv
STRESS_NUMERIC = ("stress_index", "level", "seeds", "drop_mean", "drop_std", "ci_low", "ci_high",
                  "significant_seeds", "drop_reduction", "drop_reduction_ci_low", "drop_reduction_ci_high", "p",
                  "p_adj")


def clean_csv(report: dict) -> tuple[list[str], list[list]]:
    """clean.csv: per dataset × model × strategy, every test metric@K's mean and std over seeds and
    the paired test vs plain on ``report["key"]`` (diff = strategy − plain; gain % of plain's mean)."""
    keys = sorted({name for row in report["clean"] for name in row["test"]}, key=_metric_order)
    headers = ["dataset", "model", "strategy", "point", "metric", *CLEAN_NUMERIC[:3],
               *[f"{key}_{part}" for key in keys for part in ("mean", "std")], *CLEAN_NUMERIC[3:], "significant",
               "baseline", "does_not_beat"]
    rows = []
    for row in report["clean"]:
        test = row.get("vs_plain") or {}
        low, high = test.get("ci95") or [None, None]
        rows.append([row["dataset"], row["model"], row["strategy"],
                     " ".join(f"{name}={value}" for name, value in row["point"].items()), report["key"],
                     len(row["seeds"]), row["valid"]["mean"], row["valid"]["std"],
                     *[row["test"].get(key, {}).get(part) for key in keys for part in ("mean", "std")],
                     test.get("mean_difference"), low, high, test.get("gain_pct"), test.get("p_value"),
                     test.get("p_adjusted"), _flag(test), "yes" if row.get("baseline") else "no",
                     " ".join(row.get("not_beaten") or [])])
    return headers, rows


def stress_csv(report: dict) -> tuple[list[str], list[list]]:
    """stress.csv: per dataset × stress × level × model × strategy, the drop % of ``report["key"]``
    (mean, std and 95% interval over seeds), seeds with a significant per-user drop, and the test
    vs plain on the drop."""
    headers = ["dataset", "stress_index", "stress", "kind", "level", "model", "strategy", "metric", "unaffected",
               *STRESS_NUMERIC[2:], "significant"]
    rows = []
    for row in report["stress"]:
        drop = row.get("drop_pct") or {}
        low, high = drop.get("ci95") or [None, None]
        test = row.get("vs_plain") or {}
        t_low, t_high = test.get("ci95") or [None, None]
        rows.append([row["dataset"], row["stress_index"], row["title"], row["kind"], row["strength"], row["model"],
                     row["strategy"], report["key"], row.get("unaffected") or "", len(row["per_seed"]),
                     drop.get("mean"), drop.get("std"), low, high,
                     None if row.get("unaffected") else row["significant_seeds"],
                     test.get("mean_difference"), t_low, t_high, test.get("p_value"), test.get("p_adjusted"),
                     _flag(test)])
    return headers, rows


def _flag(test: dict) -> str:
    return "" if "significant" not in test else ("yes" if test["significant"] else "no")


def _metric_order(key: str) -> tuple:
    name, k = key.split("@")
    order = ["recall", "precision", "map", "ndcg"]
    return (order.index(name) if name in order else len(order), name, int(k))


#: the metric and correction whose files keep the plain names (study-report.json, clean.csv, ...)
DEFAULT_KEY, DEFAULT_CORRECTION = "recall@5", "holm"


def output_names(report: dict) -> dict[str, str]:
    """File names of a report's outputs, by what they hold: ``study-report.json``, ``clean.csv``,
    ``stress.csv``, ``drops.png`` for recall@5 with Holm; another metric@K or correction adds it to
    every name (``study-report-ndcg@5.json``, ``clean-ndcg@5-bh.csv``, ...), so reports of several
    metrics live side by side and none overwrites another."""
    short = {name: code for code, name in CORRECTIONS.items()}
    parts = [report["key"]] if report["key"] != DEFAULT_KEY else []
    correction = short.get(report["correction"], report["correction"])
    if correction != DEFAULT_CORRECTION:
        parts.append(correction)
    tag = "".join(f"-{part}" for part in parts)
    return {"json": f"study-report{tag}.json", "clean": f"clean{tag}.csv", "stress": f"stress{tag}.csv",
            "plot": f"drops{tag}.png"}


def write_outputs(report: dict, out_dir: Path, markdown_path: Path | None = None) -> list[Path]:
    """The report's JSON, clean and stress CSVs and drops plot (when there are drops) in ``out_dir``,
    named by ``output_names`` (study-report.json, clean.csv, stress.csv, drops.png for recall@5)."""
    import csv
    import io

    names = output_names(report)
    written = []

    def atomic(path: Path, text: str) -> None:
        written.append(write_atomic(path, lambda tmp: tmp.write_text(text, newline="")))

    atomic(out_dir / names["json"], json.dumps(report, indent=1, allow_nan=False) + "\n")
    for name, (headers, rows) in ((names["clean"], clean_csv(report)), (names["stress"], stress_csv(report))):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        writer.writerows([["" if cell is None else cell for cell in row] for row in rows])
        atomic(out_dir / name, buffer.getvalue())
    if markdown_path is not None:
        atomic(markdown_path, markdown(report))
    plotted = [r for r in report["stress"] if not r.get("unaffected") and r["drop_pct"]["mean"] is not None]
    if plotted:
        written.append(_plot(report, plotted, out_dir / names["plot"]))
    return written


#: drops.png: inches per bar and per facet (title, axis), figure width, tick label size (points)
BAR_INCHES, FACET_INCHES, PLOT_WIDTH, LABEL_POINTS = 0.26, 1.0, 8.0, 8


def drops_figure(report: dict, rows: list[dict]):
    """The drops figure: one panel per stress (dataset and stress test), a horizontal bar per
    model, level and strategy (mean drop % over seeds with its 95% interval), labels readable
    whatever the number of bars: the figure grows by ``BAR_INCHES`` per bar instead of squeezing."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    facets: dict[tuple, list[dict]] = {}
    for row in rows:
        facets.setdefault((row["dataset"], row["stress_index"], row["title"]), []).append(row)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    colors = {s: ("#4c72b0" if s == "plain" else f"C{i + 1}") for i, s in enumerate(strategies)}
    heights = [BAR_INCHES * len(bars) + FACET_INCHES for bars in facets.values()]
    fig, axes = plt.subplots(len(facets), 1, figsize=(PLOT_WIDTH, sum(heights) + 0.6), squeeze=False,
                             height_ratios=heights, layout="constrained")
    for ax, ((dataset, index, title), bars) in zip(axes[:, 0], facets.items()):
        means = [r["drop_pct"]["mean"] for r in bars]
        low = [m - (r["drop_pct"]["ci95"][0] if r["drop_pct"]["ci95"][0] is not None else m)
               for m, r in zip(means, bars)]
        high = [(r["drop_pct"]["ci95"][1] if r["drop_pct"]["ci95"][1] is not None else m) - m
                for m, r in zip(means, bars)]
        y = list(range(len(bars)))
        ax.barh(y, means, xerr=[low, high], color=[colors[r["strategy"]] for r in bars], capsize=2, height=0.7)
        ax.set_yticks(y, [f"{r['model']} · {r['strategy']} · {r['strength']:g}" for r in bars],
                      fontsize=LABEL_POINTS)
        ax.invert_yaxis()  # the report's order, top to bottom
        ax.axvline(0, color="black", linewidth=0.6)
        ax.tick_params(axis="x", labelsize=LABEL_POINTS)
        ax.set_title("\n".join(textwrap.wrap(f"#{index} {title} on {dataset}", 80)), fontsize=LABEL_POINTS + 1,
                     loc="left")
        ax.set_xlabel(f"drop % of {report['key']} (95% CI over seeds; > 0: worse)", fontsize=LABEL_POINTS)
    handles = [matplotlib.patches.Patch(color=colors[s], label=s) for s in strategies]
    fig.legend(handles=handles, loc="outside upper right", fontsize=LABEL_POINTS, ncols=len(strategies))
    fig.suptitle(f"study {report['study']}: drops under stress (model · strategy · level)", fontsize=LABEL_POINTS + 2,
                 x=0.02, ha="left")
    return fig


def _plot(report: dict, rows: list[dict], path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = drops_figure(report, rows)
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
