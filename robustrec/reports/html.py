"""One self-contained HTML robustness report (``robustrec report html``, ``study report --html``).

The file needs no network when it is viewed: the styles, the script (plotly.js, inlined from the
``plotly`` package) and the figures' data are all inside it. What it shows:

- a leaderboard per stress budget (RobustBench style): model × strategy, clean metric, metric
  under each stress at that budget, drop with its 95% interval, and the worst case across kinds;
- a grid of stresses × models (CheckList style): each cell coloured by the drop and marked when
  the drop is significant after the multiple-comparison correction, with the seeds and users
  behind it;
- severity curves (drop vs strength with the 95% band) per stress, interactive;
- every strategy vs plain (MG vs plain in single reports): clean gain, drop reduction, corrected p,
  effect size when the reports carry one;
- flatness (loss rise under weight noise, ρ-sharpness) and loss landscapes when present;
- provenance: versions, data and feature fingerprints, the study file, the commands, and how
  each number was computed.

Two entry points build the page from what robustrec already wrote: ``render_study_html`` (a study's
report and manifest, read by ``studies.report.study_html``) and ``reports_html`` (report JSON files of
``robustrec perturb``). Both read the report dictionaries defensively (``.get``): fields added by
later versions (rank stability, exposure, effect sizes) are shown when present.
"""

from __future__ import annotations

import html as _html
import json
import math
import os
import shlex
from datetime import datetime, timezone
from pathlib import Path

from robustrec.errors import ConfigError
from robustrec.reports.schema import ReportError, load_report, write_atomic

ALPHA = 0.05
TEMPLATE = "templates/report.html.j2"
#: docs pages the methods section links to (relative to the repository root)
DOCS = {"html": "docs/html-report.md", "reports": "docs/reports.md", "studies": "docs/studies.md",
        "flatness": "docs/flatness.md"}
#: level / row fields shown in their own columns; anything else numeric goes to "other measures"
_LEVEL_KNOWN = {"strength", "parameters", "trials", "summary", "user_test", "tables", "flatness"}
#: names of extra measures other reports may carry (rank stability, exposure, effect size)
EXTRA_HINTS = ("overlap", "rbo", "exposure", "d_z", "gini", "long-tail", "popularity", "rank shift")


# --- public API ---------------------------------------------------------------------------------


def check_html_path(path: str | Path, flag: str = "--html") -> Path:
    """The output path, if it can be a file: a folder (or a path under a file) is a ConfigError."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} is a folder; give a file name (e.g. report.html)")
    probe = path.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{flag} {str(path)!r} cannot be created: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {str(path)!r}: {probe} is not writable")
    return path


def write_html(text: str, path: str | Path, flag: str = "--html") -> Path:
    """Write the page atomically (a temp file renamed onto ``path``: never half a file)."""
    path = check_html_path(path, flag)
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def render_study_html(folder: str | Path, report: dict, manifest: dict, landscapes: list[str | Path] = (),
                      command: str | None = None) -> str:
    """The HTML page of a study folder from its report (``robustrec.studies.report.build_report``) and
    manifest (``robustrec.studies.plan.read_manifest``); ``robustrec.studies.report.study_html`` reads both."""
    folder = Path(folder)
    context = _study_context(folder, report, manifest)
    context["landscapes"] = _landscape_figures(_find_landscapes(landscapes, [folder / "landscapes"]))
    context["commands"] = [f"{c}   # wrote this page" for c in [command] if c] + context["commands"]
    return _render(context)


def reports_html(paths: list[str | Path], landscapes: list[str | Path] = (), metric: str = "", k: int = 0,
                 correction: str = "holm", command: str | None = None) -> str:
    """The HTML page of stress reports written by ``robustrec perturb`` (all on the same data)."""
    from robustrec.reports.compare import expand_report_paths
    from robustrec.evaluation.stats import adjust_p_values

    adjust_p_values([], correction)  # checks the name
    files = expand_report_paths(paths)
    reports = [(path, load_report(path)) for path in files]
    prints = {report["dataset"]["fingerprint"] for _, report in reports}
    if len(prints) > 1:
        listing = ", ".join(f"{path.name} ({report['dataset'].get('name')}, {report['dataset']['fingerprint']})"
                            for path, report in reports)
        raise ReportError(f"reports were made on different data, one HTML report needs one dataset: {listing}")
    first = reports[0][1]["settings"]
    metric, k = metric or first["metric"], k or first["k"]
    key = f"{metric}@{k}"
    for path, report in reports:
        if not any(key in (entry.get("clean") or {}) for entry in report["checkpoints"]):
            raise ReportError(f"{path}: {key} is not in this report (its metrics: "
                              f"{', '.join(sorted(report['checkpoints'][0].get('clean') or {}))})")
    context = _reports_context(reports, key, correction)
    context["landscapes"] = _landscape_figures(_find_landscapes(landscapes, []))
    context["commands"] = [f"{c}   # wrote this page" for c in [command] if c] + context["commands"]
    return _render(context)


# --- small helpers ------------------------------------------------------------------------------


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _mean(values) -> float | None:
    values = [v for v in (map(_num, values)) if v is not None]
    return sum(values) / len(values) if values else None


def _label(model: str, strategy: str) -> str:
    return f"{model} · {strategy}"


def _effect(test: dict | None) -> float | None:
    """An effect size d_z carried by a test dict (``d_z``, or ``effect_size`` as number or dict)."""
    if not isinstance(test, dict):
        return None
    if _num(test.get("d_z")) is not None:
        return _num(test["d_z"])
    effect = test.get("effect_size")
    if isinstance(effect, dict):
        return _num(effect.get("d_z"))
    return _num(effect)


def _flatten(obj, prefix: str = "") -> dict[str, float]:
    """Numbers inside ``obj`` by dotted name (a dict with ``mean`` counts as its mean)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        if _num(obj.get("mean")) is not None and prefix:
            out[prefix] = _num(obj["mean"])
            return out
        for key, value in obj.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif _num(obj) is not None and prefix:
        out[prefix] = _num(obj)
    return out


#: what a stress moves (``evaluation.moves``), shown at the report's K: (field, part, column)
MOVE_COLUMNS = (("jaccard", "mean", "top-K overlap (Jaccard)"), ("rbo", "mean", "RBO"),
                ("long_tail_share", "change", "long-tail share Δ"), ("gini", "change", "exposure Gini Δ"),
                ("mean_popularity", "change", "popularity Δ"),
                ("edited_exposure_change", "mean", "edited items: exposure Δ"),
                ("edited_rank_shift", "mean", "edited items: rank shift"))


def _moves(level: dict, k: str) -> dict[str, float]:
    """The level's moves at K under readable names (mean over its trials)."""
    moves = level.get("moves") or {}
    out = {}
    for name, part, label in MOVE_COLUMNS:
        stat = moves.get(f"{name}@{k}")
        value = stat.get(part) if isinstance(stat, dict) else None
        if isinstance(value, dict):
            value = value.get("mean")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[label] = _num(value)
    return out


def _extras(level: dict, key: str) -> dict[str, float]:
    """Measures of a level beyond the known ones: what the stress moves (at the K of ``key``), the
    per-user effect size, and any other numeric field (for ``key`` when given per metric@K)."""
    out: dict[str, float] = _moves(level, key.split("@")[1])
    for name, value in level.items():
        if name in _LEVEL_KNOWN or name in ("moves", "moves_items"):
            continue
        if isinstance(value, dict) and key in value:
            value = value[key]
        out.update(_flatten(value, name))
    test = (level.get("user_test") or {}).get(key)
    if _effect(test) is not None:
        out["user_test.d_z"] = _effect(test)
    return out


def _t_interval(values: list[float]) -> list[float | None]:
    from robustrec.evaluation.stats import t_interval

    import numpy as np

    low, high = t_interval(np.asarray(values, dtype=float)) if len(values) >= 2 else (None, None)
    return [low, high]


def _dataset_info(dataset: dict) -> dict:
    info = {"name": dataset.get("name"), "fingerprint": dataset.get("fingerprint"),
            "interactions_fingerprint": dataset.get("interactions_fingerprint"),
            "users": dataset.get("users"), "items": dataset.get("items")}
    modalities = dataset.get("modalities") or {}
    info["features"] = {name: (m or {}).get("fingerprint") for name, m in modalities.items() if isinstance(m, dict)}
    return info


def _render_versions() -> dict[str, str]:
    import platform

    from robustrec import __version__

    out = {"robustrec": __version__, "python": platform.python_version()}
    for name in ("jinja2", "plotly", "numpy", "scipy", "torch"):
        try:
            from importlib.metadata import version

            out[name] = version(name)
        except Exception:  # noqa: BLE001 - a missing library is simply not listed
            continue
    return out


# --- the common page model ----------------------------------------------------------------------
#
# ``cells``: one dict per stress × level × model × strategy:
#   stress (label), stress_key, kind, strength_name, strength, model, strategy, label, clean,
#   perturbed, drop, ci [lo, hi], seeds, repeats, users, sig_k (seeds / tests significant after
#   correction), sig_n, unaffected (reason), extras {name: value}
# ``comparisons``: strategy vs plain per stress level (and clean rows)


def _leaderboards(cells: list[dict], clean: dict[str, dict]) -> list[dict]:
    """One table per budget tier: tier r takes each stress's r-th weakest level (its strongest when
    it has fewer); rows ranked by the worst-case drop across stresses (smallest first)."""
    stresses: dict[str, list[float]] = {}
    names: dict[str, dict] = {}
    for cell in cells:
        if cell["strength"] is not None:
            stresses.setdefault(cell["stress_key"], [])
            if cell["strength"] not in stresses[cell["stress_key"]]:
                stresses[cell["stress_key"]].append(cell["strength"])
            names[cell["stress_key"]] = {"stress": cell["stress"], "strength_name": cell["strength_name"]}
    if not stresses:
        return []
    for levels in stresses.values():
        levels.sort()
    tiers = max(len(levels) for levels in stresses.values())
    by_key = {(c["stress_key"], c["strength"], c["label"]): c for c in cells}
    labels = list(dict.fromkeys(c["label"] for c in cells))
    roles = {c["label"]: (c["model"], c["strategy"]) for c in cells}
    unaffected = {(c["stress_key"], c["label"]): c["unaffected"] for c in cells if c.get("unaffected")}
    boards = []
    for tier in range(tiers):
        columns = [{"key": key, **names[key], "strength": levels[min(tier, len(levels) - 1)],
                    "capped": tier >= len(levels)} for key, levels in stresses.items()]
        rows = []
        for label in labels:
            entries, worst = [], None
            for column in columns:
                cell = by_key.get((column["key"], column["strength"], label))
                reason = unaffected.get((column["key"], label))
                entries.append({"cell": cell, "unaffected": reason})
                if cell is not None and cell["drop"] is not None and (worst is None or cell["drop"] > worst["drop"]):
                    worst = cell
            if not any(e["cell"] for e in entries) and not any(e["unaffected"] for e in entries):
                continue
            model, strategy = roles[label]
            rows.append({"label": label, "model": model, "strategy": strategy,
                         "clean": clean.get(label) or {"mean": None, "std": None, "seeds": None},
                         "entries": entries, "worst": worst,
                         "tested": sum(e["cell"] is not None for e in entries)})
        rows.sort(key=lambda r: (r["worst"] is None, r["worst"]["drop"] if r["worst"] else 0.0, r["label"]))
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank if row["worst"] is not None else None
        name = ("all levels" if tiers == 1 else
                f"budget {tier + 1} of {tiers}" + (" (weakest)" if tier == 0 else " (strongest)" if tier == tiers - 1 else ""))
        boards.append({"name": name, "columns": columns, "rows": rows})
    return boards


def _grid(cells: list[dict]) -> dict:
    """Rows: stress × level; columns: model × strategy; background by drop."""
    labels = list(dict.fromkeys(c["label"] for c in cells))
    leveled = {c["stress_key"] for c in cells if c["strength"] is not None}
    # an unaffected checkpoint (no levels) shows in every level row of its stress
    row_keys = list(dict.fromkeys((c["stress_key"], c["strength"]) for c in cells
                                  if c["strength"] is not None or c["stress_key"] not in leveled))
    by_key = {(c["stress_key"], c["strength"], c["label"]): c for c in cells}
    for c in cells:
        if c.get("unaffected"):
            for stress_key, strength in row_keys:
                if stress_key == c["stress_key"]:
                    by_key.setdefault((stress_key, strength, c["label"]), c)
    scale = max([abs(c["drop"]) for c in cells if c["drop"] is not None] + [1e-9])
    rows = []
    for stress_key, strength in row_keys:
        sample = next(c for c in cells if c["stress_key"] == stress_key and c["strength"] == strength)
        out = []
        for label in labels:
            cell = by_key.get((stress_key, strength, label))
            out.append({"cell": cell, "style": _colour(cell["drop"] if cell else None, scale)})
        rows.append({"stress": sample["stress"], "strength_name": sample["strength_name"], "strength": strength,
                     "cells": out})
    return {"labels": labels, "rows": rows, "scale": scale}


def _colour(drop: float | None, scale: float) -> str:
    if drop is None:
        return "background:#f3f3f3"
    share = min(1.0, abs(drop) / scale)
    lightness = 97 - 42 * share
    hue = 4 if drop > 0 else 212
    return f"background:hsl({hue},75%,{lightness:.0f}%)"


def _severity_figures(cells: list[dict], key: str) -> list[dict]:
    figures = []
    stresses = list(dict.fromkeys(c["stress_key"] for c in cells if c["strength"] is not None))
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
               "#7f7f7f", "#bcbd22"]
    for index, stress_key in enumerate(stresses):
        mine = [c for c in cells if c["stress_key"] == stress_key and c["strength"] is not None and c["drop"] is not None]
        if not mine:
            continue
        data = []
        for n, label in enumerate(dict.fromkeys(c["label"] for c in mine)):
            points = sorted((c for c in mine if c["label"] == label), key=lambda c: c["strength"])
            colour = palette[n % len(palette)]
            xs = [c["strength"] for c in points]
            lows = [c["ci"][0] if c["ci"][0] is not None else c["drop"] for c in points]
            highs = [c["ci"][1] if c["ci"][1] is not None else c["drop"] for c in points]
            data.append({"x": xs + xs[::-1], "y": highs + lows[::-1], "fill": "toself", "fillcolor": colour,
                         "opacity": 0.18, "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False,
                         "legendgroup": label, "type": "scatter", "mode": "lines"})
            data.append({"x": xs, "y": [c["drop"] for c in points], "name": label, "legendgroup": label,
                         "type": "scatter", "mode": "lines+markers", "line": {"color": colour},
                         "error_y": {"type": "data", "symmetric": False, "visible": True, "thickness": 1,
                                     "array": [hi - c["drop"] for c, hi in zip(points, highs)],
                                     "arrayminus": [c["drop"] - lo for c, lo in zip(points, lows)]},
                         "customdata": [[_fmt(lo, 2), _fmt(hi, 2), c["seeds"], _fmt_int(c["users"])]
                                        for c, lo, hi in zip(points, lows, highs)],
                         "hovertemplate": f"{_html.escape(label)}<br>{_html.escape(points[0]['strength_name'])}"
                                          "=%{x}<br>drop %{y:.2f}% [%{customdata[0]}, %{customdata[1]}]"
                                          "<br>seeds %{customdata[2]}, users %{customdata[3]}<extra></extra>"})
        strengths = [c["strength"] for c in mine]
        log = min(strengths) > 0 and max(strengths) / min(strengths) >= 100
        figures.append({"id": f"severity-{index}", "title": mine[0]["stress"], "data": data, "layout": {
            "title": {"text": f"{mine[0]['stress']}: drop of {key} (95% band)"},
            "xaxis": {"title": {"text": mine[0]["strength_name"]}, "type": "log" if log else "linear"},
            "yaxis": {"title": {"text": f"drop % of {key}"}, "zeroline": True},
            "height": 380, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "hovermode": "closest"}})
    return figures


def _flatness_figures(points: list[dict]) -> list[dict]:
    """Loss rise vs σ per checkpoint/label, one figure per stress."""
    figures = []
    for index, stress in enumerate(dict.fromkeys(p["stress"] for p in points)):
        mine = [p for p in points if p["stress"] == stress and p["rise"] is not None]
        if not mine:
            continue
        data = []
        for label in dict.fromkeys(p["label"] for p in mine):
            pts = sorted((p for p in mine if p["label"] == label), key=lambda p: p["strength"])
            data.append({"x": [p["strength"] for p in pts], "y": [p["rise"] for p in pts], "name": label,
                         "type": "scatter", "mode": "lines+markers",
                         "error_y": {"type": "data", "array": [p["rise_std"] or 0 for p in pts], "visible": True},
                         "customdata": [[_fmt(p["sharp"], 3, "e")] for p in pts],
                         "hovertemplate": f"{_html.escape(label)}<br>σ=%{{x}}<br>loss rise %{{y:.3e}}"
                                          "<br>ρ-sharpness %{customdata[0]}<extra></extra>"})
        strengths = [p["strength"] for p in mine]
        log = min(strengths) > 0 and max(strengths) / min(strengths) >= 100
        figures.append({"id": f"flatness-{index}", "title": stress, "data": data, "layout": {
            "title": {"text": f"{stress}: training-loss rise under weight noise (mean ± std)"},
            "xaxis": {"title": {"text": "σ"}, "type": "log" if log else "linear"},
            "yaxis": {"title": {"text": "loss rise"}, "exponentformat": "e"},
            "height": 360, "margin": {"l": 70, "r": 20, "t": 50, "b": 50}}})
    return figures


def _find_landscapes(given: list[str | Path], defaults: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in [Path(p) for p in given]:
        if path.is_dir():
            found.extend(sorted(path.glob("landscape-*.json")))
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"--landscape {str(path)!r} not found")
    for path in defaults:
        if path.is_dir():
            found.extend(sorted(path.glob("landscape-*.json")))
    return list(dict.fromkeys(found))


def _landscape_figures(paths: list[Path]) -> list[dict]:
    figures = []
    for index, path in enumerate(paths):
        try:
            result = json.loads(path.read_text())
            axis, surface, line = result["axis"], result["surface"], result["slice"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path} is not a landscape file of `robustrec landscape` ({exc})") from None
        name = result.get("run") or path.stem
        data = [{"type": "contour", "x": axis, "y": axis, "z": surface, "colorscale": "Viridis",
                 "colorbar": {"title": {"text": "loss"}, "x": 0.46}, "xaxis": "x", "yaxis": "y",
                 "hovertemplate": "a=%{x:.3g}<br>b=%{y:.3g}<br>loss %{z:.4f}<extra></extra>"},
                {"type": "scatter", "mode": "lines+markers", "x": axis, "y": line, "xaxis": "x2", "yaxis": "y2",
                 "name": "slice b=0", "hovertemplate": "a=%{x:.3g}<br>loss %{y:.4f}<extra></extra>"}]
        layout = {"title": {"text": f"{name}: {result.get('grid')}×{result.get('grid')} over ±{result.get('span')}, "
                                    f"{result.get('normalization')} normalisation"},
                  "xaxis": {"domain": [0, 0.42], "title": {"text": "direction 1"}},
                  "yaxis": {"title": {"text": "direction 2"}},
                  "xaxis2": {"domain": [0.62, 1], "anchor": "y2", "title": {"text": "step along direction 1"}},
                  "yaxis2": {"anchor": "x2", "title": {"text": "training loss"}},
                  "height": 380, "showlegend": False, "margin": {"l": 60, "r": 20, "t": 50, "b": 50}}
        figures.append({"id": f"landscape-{index}", "title": name, "file": str(path), "data": data, "layout": layout,
                        "center_loss": result.get("center_loss"), "model": result.get("model"), "mg": result.get("mg"),
                        "dataset": result.get("dataset")})
    return figures


# --- a study ------------------------------------------------------------------------------------


def _study_context(folder: Path, report: dict, manifest: dict) -> dict:
    key = report.get("key") or f"{report.get('metric')}@{report.get('k')}"
    study = manifest.get("study") or {}
    cells_by_id = manifest.get("cells") or {}
    # per (stress_index, title, strength, model, strategy): the stress reports' numbers per seed
    per: dict[tuple, dict] = {}
    reports_read: dict[str, dict] = {}
    strength_names: dict[tuple, str] = {}
    for cell in cells_by_id.values():
        if cell.get("kind") != "stress" or cell.get("state") != "done":
            continue
        spec, result = cell.get("spec") or {}, cell.get("result") or {}
        roles = {(folder / path).resolve(): role for path, role in
                 zip(spec.get("checkpoints", []), zip(spec.get("models", []), spec.get("strategies", [])))}
        for report_path in result.get("reports", []):
            try:
                stress_report = reports_read.setdefault(report_path, json.loads((folder / report_path).read_text()))
            except (OSError, ValueError):
                continue
            settings = stress_report.get("settings") or {}
            title = settings.get("title") or stress_report.get("kind")
            strength_names[(spec.get("dataset"), spec.get("stress_index"))] = settings.get("strength_name")
            for entry in stress_report.get("checkpoints") or []:
                role = roles.get(Path(entry.get("path", "")).resolve(), (entry.get("model"), entry.get("name")))
                for level in entry.get("levels") or []:
                    slot = per.setdefault((spec.get("dataset"), spec.get("stress_index"), title, level.get("strength"),
                                           *role), {"perturbed": [], "clean": [], "users": [], "repeats": [],
                                                    "extras": [], "rise": [], "rise_std": [], "sharp": []})
                    summary = (level.get("summary") or {}).get(key) or {}
                    slot["perturbed"].append(summary.get("mean"))
                    slot["clean"].append((entry.get("clean") or {}).get(key))
                    slot["users"].append(((level.get("user_test") or {}).get(key) or {}).get("n"))
                    slot["repeats"].append(len(level.get("trials") or []))
                    slot["extras"].append(_extras(level, key))
                    flat = level.get("flatness") or {}
                    slot["rise"].append((flat.get("loss_rise") or {}).get("mean"))
                    slot["rise_std"].append((flat.get("loss_rise") or {}).get("std"))
                    slot["sharp"].append(flat.get("rho_sharpness"))
    datasets = list(dict.fromkeys(r.get("dataset") for r in report.get("stress", []) + report.get("clean", [])))
    multi = len(datasets) > 1
    cells, comparisons, flat_points = [], [], []
    rows = report.get("stress") or []
    index = {(r.get("dataset"), r.get("stress_index"), r.get("title"), r.get("strength"), r.get("model"),
              r.get("strategy")): r for r in rows}
    for row in rows:
        stress_key = f"{row.get('dataset')}#{row.get('stress_index')}"
        stress = f"#{row.get('stress_index')} {row.get('title')}" + (f" ({row.get('dataset')})" if multi else "")
        strategy = row.get("strategy") if not multi else f"{row.get('strategy')} ({row.get('dataset')})"
        label = _label(row.get("model"), strategy)
        slot = per.get((row.get("dataset"), row.get("stress_index"), row.get("title"), row.get("strength"),
                        row.get("model"), row.get("strategy")), {})
        drop = row.get("drop_pct") or {}
        n_seeds = len(row.get("per_seed") or {})
        extras = _merge_extras(slot.get("extras", []))
        extras.update({f"row.{name}": value for name, value in _flatten(
            {k: v for k, v in row.items() if k not in _STUDY_ROW_KNOWN}).items()})
        if _effect(row.get("vs_plain")) is not None:
            extras["vs_plain.d_z"] = _effect(row.get("vs_plain"))
        cells.append({"stress": stress, "stress_key": stress_key, "kind": row.get("kind"),
                      "description": row.get("description", ""), "strength_name": strength_names.get((row.get("dataset"), row.get("stress_index")))
                      or _strength_name(study, row),
                      "strength": row.get("strength"), "model": row.get("model"), "strategy": strategy,
                      "label": label, "clean": _mean(slot.get("clean", [])), "perturbed": _mean(slot.get("perturbed", [])),
                      "drop": drop.get("mean"), "drop_std": drop.get("std"), "ci": list(drop.get("ci95") or [None, None]),
                      "seeds": n_seeds, "repeats": max(slot.get("repeats") or [0]) or None,
                      "users": max([u for u in slot.get("users", []) if u] or [0]) or None,
                      "sig_k": row.get("significant_seeds"), "sig_n": len(row.get("user_p_adjusted") or {}) or n_seeds,
                      "unaffected": row.get("unaffected"), "extras": extras, "cells": row.get("cells", []),
                      "reports": sorted(set(row.get("reports", [])))})
        if _mean(slot.get("rise", [])) is not None:
            flat_points.append({"stress": stress, "label": label, "strength": row.get("strength"),
                                "rise": _mean(slot["rise"]), "rise_std": _mean(slot["rise_std"]),
                                "sharp": _mean(slot["sharp"])})
        test = row.get("vs_plain")
        plain = index.get((row.get("dataset"), row.get("stress_index"), row.get("title"), row.get("strength"),
                           row.get("model"), "plain"))
        if test is not None and plain is not None:
            seeds = [s for s in (row.get("per_seed") or {}) if s in (plain.get("per_seed") or {})
                     and row["per_seed"][s] is not None and plain["per_seed"][s] is not None]
            reductions = [plain["per_seed"][s] - row["per_seed"][s] for s in seeds]
            comparisons.append({"label": label, "stress": stress, "strength_name": cells[-1]["strength_name"],
                                "strength": row.get("strength"), "model": row.get("model"),
                                "strategy": row.get("strategy"), "baseline": _label(row.get("model"), "plain"),
                                "reduction": _mean(reductions), "ci": _t_interval(reductions), "n": len(reductions),
                                "p": test.get("p_value"), "p_adjusted": test.get("p_adjusted"),
                                "significant": test.get("significant"), "d_z": _effect(test),
                                "test": test.get("test"), "drop_plain": (plain.get("drop_pct") or {}).get("mean"),
                                "drop": drop.get("mean")})
    clean_rows = []
    clean_by_label = {}
    for row in report.get("clean") or []:
        strategy = row.get("strategy") if not multi else f"{row.get('strategy')} ({row.get('dataset')})"
        label = _label(row.get("model"), strategy)
        spread = (row.get("test") or {}).get(key) or {}
        test = row.get("vs_plain") or None
        item = {"dataset": row.get("dataset"), "model": row.get("model"), "strategy": strategy,
                "label": label, "mean": spread.get("mean"), "std": spread.get("std"), "seeds": len(row.get("seeds") or []),
                "point": row.get("point") or {}, "gain": (test or {}).get("gain_pct"),
                "p": (test or {}).get("p_value"), "p_adjusted": (test or {}).get("p_adjusted"),
                "significant": (test or {}).get("significant"), "d_z": _effect(test), "has_test": test is not None,
                "runs": row.get("runs", []), "mark": row.get("mark") or ""}
        clean_rows.append(item)
        clean_by_label[label] = item
    for comparison in comparisons:  # the clean gain of the same model and strategy (paired over seeds)
        clean_row = clean_by_label.get(comparison["label"]) or {}
        comparison["clean_gain"] = clean_row.get("gain")
        comparison["clean_p_adjusted"] = clean_row.get("p_adjusted")
    stress_reports = list(reports_read.values())
    first = stress_reports[0] if stress_reports else {}
    inputs = _study_inputs(cells_by_id)
    study_path = study.get("path")
    study_text = None
    if study_path and Path(study_path).is_file():
        try:
            study_text = Path(study_path).read_text()
        except (OSError, UnicodeDecodeError):
            study_text = None
    correction = report.get("correction", "")
    title = f"Study {report.get('study')}"
    return {
        "title": title, "mode": "study", "key": key, "metric": report.get("metric"), "k": report.get("k"),
        "correction": correction, "alpha": report.get("alpha", ALPHA),
        "subtitle": f"{len(study.get('models') or [])} model(s) × {len(study.get('strategies') or [])} strateg(ies) × "
                    f"{len(report.get('seeds') or [])} seed(s), {len(study.get('stresses') or [])} stress test(s); "
                    f"data: {', '.join(map(str, datasets))}",
        "complete": report.get("complete", True), "cell_counts": report.get("cells") or {},
        "clean_rows": clean_rows, "cells": cells, "comparisons": comparisons,
        "baseline_legend": report.get("baseline_legend") or "",
        "leaderboards": _leaderboards(cells, {label: {"mean": r["mean"], "std": r["std"], "seeds": r["seeds"]}
                                              for label, r in clean_by_label.items()}),
        "grid": _grid(cells), "severity": _severity_figures(cells, key), "flatness": _flatness_figures(flat_points),
        "extra_names": _extra_names(cells),
        "significance": (f"a seed counts as significant when its per-user paired t-test, {correction}-adjusted over "
                         f"every (stress, level, model, strategy, seed) test, gives p < {report.get('alpha', ALPHA)}"),
        "interval": "95% t-interval over training seeds of each seed's drop (mean over its repeats)",
        "provenance": {
            "versions_render": _render_versions(), "versions_reports": _unique_versions(stress_reports),
            "datasets": [_dataset_info(r.get("dataset") or {}) for r in _one_per_dataset(stress_reports)],
            "study_folder": report.get("folder") or str(folder.resolve()), "study_path": study_path,
            "study_text": study_text, "study_definition": json.dumps(study, indent=1, sort_keys=True),
            "manifest_fingerprint": manifest.get("fingerprint"), "inputs": inputs,
            "reports": sorted(reports_read), "selection": report.get("selection"),
            "valid_metric": report.get("valid_metric"), "seeds": report.get("seeds"),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stress_settings": [{"report": name, "kind": r.get("kind"), "settings": json.dumps(r.get("settings"), sort_keys=True)}
                                for name, r in sorted(reports_read.items())][:50],
        },
        "commands": [f"robustrec study run {shlex.quote(str(study_path or 'STUDY.toml'))} --out "
                     f"{shlex.quote(str(folder))}   # runs (or resumes) the study: trainings and stress cells",
                     f"robustrec study report {shlex.quote(str(folder))} --metric {report.get('metric')} --k "
                     f"{report.get('k')} --correction {_correction_flag(correction)}   # the tables, CSVs and "
                     f"study-report JSON these numbers come from"],
        "docs": DOCS, "first_report_created": first.get("created"),
    }


_STUDY_ROW_KNOWN = {"dataset", "stress_index", "kind", "title", "description", "strength", "model", "strategy",
                    "per_seed", "user_p", "cells", "reports", "drop_pct", "vs_plain", "user_p_adjusted",
                    "significant_seeds", "unaffected",
                    # the moves and per-user d_z of a row are its reports' levels' (shown from there)
                    "moves", "user_d_z"}


def _correction_flag(name: str) -> str:
    from robustrec.evaluation.stats import CORRECTIONS

    return next((flag for flag, shown in CORRECTIONS.items() if shown == name), name or "holm")


def _strength_name(study: dict, row: dict) -> str:
    stresses = study.get("stresses") or []
    index = row.get("stress_index")
    if isinstance(index, int) and 1 <= index <= len(stresses):
        options = stresses[index - 1].get("options") or {}
        listed = [name for name, value in options.items() if isinstance(value, list)]
        if listed:
            return listed[0]
    return "strength"


def _merge_extras(per_seed: list[dict]) -> dict[str, float]:
    names = list(dict.fromkeys(name for extras in per_seed for name in extras))
    return {name: _mean([extras.get(name) for extras in per_seed]) for name in names}


def _extra_names(cells: list[dict]) -> list[str]:
    names = list(dict.fromkeys(name for c in cells for name in c["extras"]))
    # the known extra measures first
    return sorted(names, key=lambda n: not any(h in n.lower() for h in EXTRA_HINTS))  # stable: curated order kept


def _study_inputs(cells: dict) -> list[dict]:
    """Every trained run a stress cell read: its cell, weights and config SHA-256, data and features."""
    seen: dict[str, dict] = {}
    for cell in cells.values():
        for item in (cell.get("spec") or {}).get("inputs") or []:
            output = item.get("output") or {}
            seen.setdefault(item.get("cell"), {
                "cell": item.get("cell"), "weights_sha256": output.get("weights_sha256"),
                "config_sha256": output.get("config_sha256"),
                "interactions_fingerprint": output.get("interactions_fingerprint"),
                "features": ", ".join(f"{k} {v}" for k, v in (output.get("features") or {}).items())})
    return sorted(seen.values(), key=lambda r: str(r["cell"]))


def _unique_versions(reports: list[dict]) -> list[dict]:
    out = []
    for report in reports:
        versions = report.get("versions") or {}
        if versions and versions not in out:
            out.append(versions)
    return out


def _one_per_dataset(reports: list[dict]) -> list[dict]:
    seen = {}
    for report in reports:
        dataset = report.get("dataset") or {}
        seen.setdefault(dataset.get("fingerprint"), report)
    return list(seen.values())


# --- stress reports -----------------------------------------------------------------------------


def _reports_context(reports: list[tuple[Path, dict]], key: str, correction: str) -> dict:
    from robustrec.evaluation.stats import CORRECTIONS, adjust_p_values

    cells, flat_points, comparisons, clean = [], [], [], {}
    seen_names: dict[str, set] = {}
    for path, report in reports:
        settings = report.get("settings") or {}
        title = settings.get("title") or report["kind"]
        strength_name = settings.get("strength_name", "strength")
        stress_key = f"{report['kind']}|{strength_name}|{title}"
        names = seen_names.setdefault(stress_key, set())
        for entry in report["checkpoints"]:
            model = entry.get("name") or entry.get("model")
            if model in names and not any(c["stress_key"] == stress_key and c["model"] == model and
                                          c["source"] == str(path) for c in cells):
                model = f"{model} ({path.stem})"
            names.add(model)
            config = entry.get("config") or {}
            strategy = "MG" if entry.get("mg") else "plain"
            if (config.get("adversarial") or "none") != "none":
                strategy = f"{config['adversarial']}" + ("+MG" if entry.get("mg") else "")
            label = _label(model, strategy)
            clean_value = (entry.get("clean") or {}).get(key)
            clean.setdefault(label, {"mean": clean_value, "std": None, "seeds": 1, "model_name": entry.get("model"),
                                     "training_seed": config.get("seed"), "path": entry.get("path"),
                                     "weights_sha256": entry.get("weights_sha256")})
            base = {"stress": title, "stress_key": stress_key, "kind": report["kind"],
                    "description": settings.get("description", ""), "strength_name": strength_name,
                    "model": model, "strategy": strategy, "label": label, "clean": clean_value, "seeds": 1,
                    "source": str(path)}
            if entry.get("unaffected"):
                cells.append({**base, "strength": None, "perturbed": None, "drop": None, "ci": [None, None],
                              "repeats": None, "users": None, "sig_k": None, "sig_n": None, "p": None,
                              "unaffected": entry["unaffected"], "extras": {}, "reports": [path.name]})
                continue
            for level in entry.get("levels") or []:
                summary = (level.get("summary") or {}).get(key) or {}
                test = (level.get("user_test") or {}).get(key) or {}
                ci = [None if _num(v) is None or not clean_value else v / clean_value * 100
                      for v in (test.get("ci95") or [None, None])]
                cells.append({**base, "strength": _num(level.get("strength")), "perturbed": summary.get("mean"),
                              "drop": summary.get("drop_pct"), "ci": ci, "repeats": len(level.get("trials") or []),
                              "users": test.get("n"), "p": test.get("p_value"), "sig_n": 1,
                              "unaffected": None, "extras": _extras(level, key), "reports": [path.name]})
                flat = level.get("flatness") or {}
                rise = flat.get("loss_rise") or {}
                if _num(rise.get("mean")) is not None:
                    flat_points.append({"stress": title, "label": label, "strength": _num(level.get("strength")),
                                        "rise": rise.get("mean"), "rise_std": rise.get("std"),
                                        "sharp": flat.get("rho_sharpness")})
        for gain in report.get("mg_gains") or []:
            if gain.get("metric") != key:
                continue
            test = gain.get("test") or {}
            comparisons.append({"stress": title, "strength_name": strength_name, "strength": gain.get("strength"),
                                "model": gain.get("mg"), "strategy": "MG", "baseline": gain.get("baseline"),
                                "clean_gain": gain.get("clean_gain_pct"), "reduction": gain.get("drop_reduction_pts"),
                                "ci": list(test.get("ci95") or [None, None]), "n": test.get("n"),
                                "p": test.get("p_value"), "d_z": _effect(test), "test": test.get("test"),
                                "drop_plain": gain.get("drop_baseline_pct"), "drop": gain.get("drop_mg_pct"),
                                "flatness": gain.get("flatness") or {}})
    # one family: every per-user drop test in this page; another: every MG-vs-baseline test
    tested = [c for c in cells if c.get("p") is not None or (c["strength"] is not None and not c["unaffected"])]
    for cell, adjusted in zip(tested, adjust_p_values([c.get("p") for c in tested], correction)):
        cell["p_adjusted"] = adjusted
        cell["sig_k"] = int(adjusted is not None and adjusted < ALPHA)
    for comparison, adjusted in zip(comparisons, adjust_p_values([c["p"] for c in comparisons], correction)):
        comparison["p_adjusted"] = adjusted
        comparison["significant"] = adjusted is not None and adjusted < ALPHA
    shown_correction = CORRECTIONS[correction]
    datasets = _one_per_dataset([r for _, r in reports])
    clean_rows = [{"model": label.split(" · ")[0], "strategy": label.split(" · ", 1)[1], "label": label,
                   "mean": c["mean"], "std": None, "seeds": 1, "point": {}, "gain": None, "p": None, "p_adjusted": None,
                   "has_test": False, "significant": None, "d_z": None, "runs": [c["path"]], "training_seed": c["training_seed"],
                   "weights_sha256": c["weights_sha256"]} for label, c in clean.items()]
    dataset_name = (reports[0][1].get("dataset") or {}).get("name")
    return {
        "title": f"Robustness report: {dataset_name}", "mode": "reports", "key": key, "metric": key.split("@")[0],
        "k": key.split("@")[1], "correction": shown_correction, "alpha": ALPHA,
        "subtitle": f"{len(reports)} stress report(s), {len(clean)} checkpoint(s) on {dataset_name} "
                    f"(data {(reports[0][1].get('dataset') or {}).get('fingerprint')})",
        "complete": True, "cell_counts": {}, "clean_rows": clean_rows, "cells": cells, "comparisons": comparisons,
        "baseline_legend": "",
        "leaderboards": _leaderboards(cells, clean), "grid": _grid(cells), "severity": _severity_figures(cells, key),
        "flatness": _flatness_figures(flat_points), "extra_names": _extra_names(cells),
        "significance": (f"significant when the per-user paired t-test's p-value, {shown_correction}-adjusted over "
                         f"every (report, checkpoint, level) test on this page, is < {ALPHA}"),
        "interval": "95% t-interval of the per-user paired difference clean − perturbed, scaled by the clean value",
        "provenance": {
            "versions_render": _render_versions(), "versions_reports": _unique_versions([r for _, r in reports]),
            "datasets": [_dataset_info(r.get("dataset") or {}) for r in datasets],
            "study_folder": None, "study_path": None, "study_text": None, "study_definition": None,
            "manifest_fingerprint": None, "inputs": [
                {"cell": c["path"], "weights_sha256": c["weights_sha256"], "config_sha256": None,
                 "interactions_fingerprint": None, "features": ""} for c in clean.values()],
            "reports": [str(path) for path, _ in reports], "selection": None, "valid_metric": None, "seeds": None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "stress_settings": [{"report": str(path), "kind": r.get("kind"),
                                 "settings": json.dumps(r.get("settings"), sort_keys=True)} for path, r in reports],
        },
        "commands": [_perturb_command(path, report) for path, report in reports],
        "docs": DOCS, "first_report_created": reports[0][1].get("created"),
    }


def _perturb_command(path: Path, report: dict) -> str:
    settings = report.get("settings") or {}
    paths = " ".join(shlex.quote(str(e.get("path"))) for e in report.get("checkpoints") or [])
    levels = ",".join(f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in settings.get("levels") or [])
    return (f"robustrec perturb {report.get('kind')} {paths} --{settings.get('strength_name', 'strength')} {levels} "
            f"--repeats {settings.get('repeats')} --seed {settings.get('seed')}   "
            f"# wrote {path.name}; reconstructed from its settings (reports do not store the command line)")


# --- rendering ----------------------------------------------------------------------------------


def _fmt(value, digits: int = 4, style: str = "f") -> str:
    value = _num(value)
    if value is None:
        return "–"
    return format(value, f".{digits}{style}")


def _fmt_int(value) -> str:
    value = _num(value)
    return "–" if value is None else f"{int(value):,}"


def _fmt_p(value) -> str:
    value = _num(value)
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _fmt_ci(ci, digits: int = 2) -> str:
    low, high = (list(ci or []) + [None, None])[:2]
    if _num(low) is None or _num(high) is None:
        return ""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _fmt_strength(value) -> str:
    value = _num(value)
    return "–" if value is None else f"{value:g}"


def _finite(obj):
    """``obj`` with NaN and ±inf as None (plotly draws a gap; JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    return obj


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(_finite(obj), allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def _plotly_js() -> str:
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise ConfigError("the HTML report needs plotly: pip install 'robustrec[report]'") from None
    return get_plotlyjs().replace("</script", "<\\/script")


def _render(context: dict) -> str:
    try:
        import jinja2
    except ImportError:
        raise ConfigError("the HTML report needs Jinja2: pip install 'robustrec[report]'") from None
    from importlib.resources import files

    source = files("robustrec.reports").joinpath(TEMPLATE).read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=_fmt, int=_fmt_int, p=_fmt_p, ci=_fmt_ci, strength=_fmt_strength)
    figures = context["severity"] + context["flatness"] + context["landscapes"]
    specs = [{"id": f["id"], "data": f["data"], "layout": f["layout"]} for f in figures]
    context = {**context, "figure_json": _script_json(specs), "plotly_js": _plotly_js(), "n_figures": len(specs)}
    return env.from_string(source).render(**context)
