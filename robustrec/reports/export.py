"""Exports of a report: CSV rows (every checkpoint, level, metric@K) and a severity-curve PNG."""

from __future__ import annotations

import csv
from pathlib import Path

from robustrec.reports.gains import metric_key
from robustrec.reports.schema import write_atomic
from robustrec.reports.tables import metric_label

CSV_COLUMNS = ("checkpoint", "model", "mg", "strength_name", "strength", "metric", "clean", "perturbed_mean",
               "perturbed_std", "drop_pct", "user_ci95_low", "user_ci95_high", "user_p_value", "repeats",
               "loss_rise_mean", "loss_rise_std", "rho_sharpness")


def csv_rows(report: dict):
    strength_name = report["settings"]["strength_name"]
    for entry in report["checkpoints"]:
        for level in entry["levels"]:
            flat = level.get("flatness") or {}
            rise = flat.get("loss_rise") or {}
            for key, summary in level["summary"].items():
                test = (level.get("user_test") or {}).get(key, {})
                low, high = test.get("ci95", [None, None])
                yield {"checkpoint": entry["name"], "model": entry["model"], "mg": entry["mg"],
                       "strength_name": strength_name, "strength": level["strength"], "metric": key,
                       "clean": entry["clean"][key], "perturbed_mean": summary["mean"],
                       "perturbed_std": summary["std"], "drop_pct": summary["drop_pct"],
                       "user_ci95_low": low, "user_ci95_high": high, "user_p_value": test.get("p_value"),
                       "repeats": len(level["trials"]), "loss_rise_mean": rise.get("mean"),
                       "loss_rise_std": rise.get("std"), "rho_sharpness": flat.get("rho_sharpness")}


def write_csv(report: dict, path: str | Path) -> Path:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            writer.writerows(csv_rows(report))

    return write_atomic(path, write)


def write_severity_plot(report: dict, path: str | Path, metric: str, k: int) -> Path:
    """Relative drop (%) of the metric against strength, one line per checkpoint, with the
    per-user paired 95% interval of the drop as a band (the tables' "drop % [95% CI]"); a
    log x axis when every strength is positive and they span more than a factor 10. The
    same plot for every kind of stress test: only ``strength_name`` and the title vary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, strength_name = metric_key(metric, k), report["settings"]["strength_name"]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    strengths = sorted({lv["strength"] for entry in report["checkpoints"] for lv in entry["levels"]})
    for index, entry in enumerate(report["checkpoints"]):
        clean = entry["clean"][key]
        levels = sorted(entry["levels"], key=lambda lv: lv["strength"])
        if not levels or not clean:
            continue
        x = [lv["strength"] for lv in levels]
        drops = [lv["summary"][key]["drop_pct"] for lv in levels]
        bands = [((lv.get("user_test") or {}).get(key) or {}).get("ci95") or [None, None] for lv in levels]
        low = [d if b[0] is None else b[0] / clean * 100 for d, b in zip(drops, bands)]
        high = [d if b[1] is None else b[1] / clean * 100 for d, b in zip(drops, bands)]
        color = f"C{index}"
        axes.plot(x, drops, marker="o", color=color, label=entry["name"])
        axes.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    if strengths and strengths[0] > 0 and strengths[-1] / strengths[0] > 10:
        axes.set_xscale("log")
    axes.set_xlabel(strength_name)
    axes.set_ylabel(f"drop of {metric_label(metric, k)} (%, > 0: worse)")
    axes.set_title(f"{report['settings'].get('title') or report['kind']} on {report['dataset']['name']} "
                   f"({len(report['settings']['trial_seeds'])} repeats; band: per-user 95% CI)")
    axes.legend()
    figure.tight_layout()
    try:
        return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(figure)
