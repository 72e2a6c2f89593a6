"""Plain-string cells of a study report's tables (terminal, Markdown): numbers with their spread,
p-values, and the clean and stress tables as (headers, rows).

Built by ``robustrec.studies.report`` (Markdown) and ``robustrec.reports.tables`` (rich tables); it
reads only the report dict, never a study folder.
"""

from __future__ import annotations

#: the strategy-vs-plain drop comparison, in the words and sign of perturb's and compare's MG gain
#: tables (``reports.gains``: drop_reduction_pts = baseline's drop − MG's drop)
DROP_REDUCTION = "drop reduction vs plain (pts)"


def fmt_spread(spread: dict, scale: float = 1.0, digits: int = 4) -> str:
    if spread.get("mean") is None:
        return "–"
    return f"{spread['mean'] * scale:.{digits}f} ± {spread['std'] * scale:.{digits}f}"


def fmt_p(value) -> str:
    if value is None:
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def clean_table(report: dict) -> tuple[list[str], list[list[str]]]:
    key = report["key"]
    metric, k = key.split("@")
    names = ["recall", "precision", "map", "ndcg"]
    headers = ["dataset", "model", "strategy", "point", "seeds", f"valid {report['valid_metric']}",
               *[f"{n.upper()[:4] if n != 'recall' else 'REC'}@{k}" for n in names],
               f"{key} vs plain", "p", f"p ({report['correction']})"]
    marked = bool(report.get("baselines"))
    if marked:  # the study's baselines: which rows do not beat them (robustrec.studies.baselines)
        headers.append("vs baselines")
    rows = []
    for row in report["clean"]:
        test = row.get("vs_plain")
        gain = "" if not test or test.get("gain_pct") is None else f"{test['gain_pct']:+.1f}%"
        point = " ".join(f"{name}={value}" for name, value in row["point"].items()) or "–"
        rows.append([row["dataset"], row["model"], row["strategy"], point, str(len(row["seeds"])),
                     fmt_spread(row["valid"]),
                     *[fmt_spread(row["test"].get(f"{n}@{k}", {})) for n in names], gain,
                     fmt_p(test["p_value"]) if test else "", adjusted_p(test) if test else ""])
        if marked:
            rows[-1].append(row.get("mark") or "")
    return headers, rows


def stress_table(report: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["dataset", "stress", "level", "model", "strategy", f"drop % {report['key']} (95% CI)",
               "sig. seeds", DROP_REDUCTION, "p", f"p ({report['correction']})"]
    rows = []
    for row in report["stress"]:
        stress = f"#{row['stress_index']} {row['title']}"
        if row.get("unaffected"):
            rows.append([row["dataset"], stress, "", row["model"], row["strategy"], "unaffected by construction",
                         "", "", "", ""])
            continue
        drop = row["drop_pct"]
        low, high = drop.get("ci95", [None, None])
        ci = f" [{low:.2f}, {high:.2f}]" if low is not None else ""
        value = "–" if drop["mean"] is None else f"{drop['mean']:.2f}{ci}"
        test = row.get("vs_plain")
        delta = "" if not test or test["mean_difference"] is None else f"{test['mean_difference']:+.2f}"
        rows.append([row["dataset"], stress, f"{row['strength']:g}", row["model"], row["strategy"], value,
                     f"{row['significant_seeds']}/{len(row['per_seed'])}", delta,
                     fmt_p(test["p_value"]) if test else "", adjusted_p(test) if test else ""])
    return headers, rows


def adjusted_p(test: dict) -> str:
    """The adjusted p-value, with * when significant."""
    text = fmt_p(test.get("p_adjusted"))
    return text + (" *" if test.get("significant") else "")
