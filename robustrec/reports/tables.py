"""Rich tables of robustness reports (built here, printed by the CLI)."""

from __future__ import annotations

from rich.table import Table

from robustrec.reports.gains import all_mg_gains, metric_key

LABELS = {"recall": "REC", "precision": "PREC", "map": "MAP", "ndcg": "NDCG"}
GREEK = {"sigma": "σ", "rate": "rate"}


def metric_label(metric: str, k: int) -> str:
    return f"{LABELS.get(metric, metric)}@{k}"


def _num(value, fmt: str = ".4f", missing: str = "–") -> str:
    return missing if value is None else format(value, fmt)


def _interval(ci, fmt: str = ".2f") -> str:
    low, high = ci if ci else (None, None)
    return "–" if low is None or high is None else f"[{low:{fmt}}, {high:{fmt}}]"


def _p(value) -> str:
    if value is None:
        return "–"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def results_table(entries: list[dict], metric: str, k: int, strength_name: str, title: str) -> Table:
    """One row per checkpoint and level: clean, perturbed mean ± std, drop %, test, flatness.

    A checkpoint the perturbation cannot reach (``entry["unaffected"]``, e.g. an ID-only model
    under caption injection) gets one row with its clean metric and the reason instead.

    drop % [95% CI]: relative drop of the mean, with the t-interval of the per-user paired
    difference scaled by the clean value; p (users): paired t-test over users; loss rise:
    mean ± std training-loss increase under weight noise of the same σ; ρ-sharp: one-step
    ρ-sharpness (see ``robustrec.flatness``).
    """
    key, label = metric_key(metric, k), metric_label(metric, k)
    table = Table(title=title, title_justify="left")
    for column, justify in (("checkpoint", "left"), ("MG", "center"),
                            (GREEK.get(strength_name, strength_name), "right"), (f"clean {label}", "right"),
                            (f"perturbed {label}", "right"), ("drop % [95% CI]", "right"),
                            ("p (users)", "right"), ("loss rise", "right"), ("ρ-sharp", "right")):
        table.add_column(column, justify=justify)
    for entry in entries:
        if entry.get("unaffected"):  # clean metric only; the perturbation cannot reach this model
            table.add_row(entry["name"], "yes" if entry["mg"] else "no", "–", _num(entry["clean"][key]),
                          entry["unaffected"], "–", "–", "–", "–")
        for level in entry["levels"]:
            summary, test = level["summary"][key], (level.get("user_test") or {}).get(key, {})
            clean = entry["clean"][key]
            ci = [None if v is None or not clean else v / clean * 100 for v in test.get("ci95", [None, None])]
            flat = level.get("flatness") or {}
            rise = flat.get("loss_rise")
            table.add_row(entry["name"], "yes" if entry["mg"] else "no", f"{level['strength']:g}",
                          _num(clean), f"{summary['mean']:.4f} ± {summary['std']:.4f}",
                          f"{_num(summary['drop_pct'], '.2f')} {_interval(ci)}", _p(test.get("p_value")),
                          "–" if not rise else f"{rise['mean']:.2e} ± {rise['std']:.1e}",
                          _num(flat.get("rho_sharpness"), ".2e"))
    return table


def gains_table(entries: list[dict], metric: str, k: int, strength_name: str) -> Table | None:
    """MG gain per (baseline, MG) pair and level; None when no pair exists."""
    rows = all_mg_gains(entries, [metric_key(metric, k)])
    if not rows:
        return None
    table = Table(title=f"Mirror Gradient gain ({metric_label(metric, k)}; drop reduction > 0: MG drops less)",
                  title_justify="left")
    for column in ("baseline → MG", GREEK.get(strength_name, strength_name), "clean gain %", "drop base %",
                   "drop MG %", "drop reduction (pts)", "95% CI", "p (repeats)", "loss rise base / MG"):
        table.add_column(column, justify="left" if column.startswith("baseline") else "right")
    for row in rows:
        test = row["test"] or {}
        flat = row["flatness"]
        flat_text = "–" if flat["baseline"] is None else f"{flat['baseline']:.2e} / {flat['mg']:.2e}"
        table.add_row(f"{row['baseline']} → {row['mg']}", f"{row['strength']:g}", _num(row["clean_gain_pct"], "+.2f"),
                      _num(row["drop_baseline_pct"], ".2f"), _num(row["drop_mg_pct"], ".2f"),
                      _num(row["drop_reduction_pts"], "+.2f"), _interval(test.get("ci95")),
                      _p(test.get("p_value")), flat_text)
    return table
