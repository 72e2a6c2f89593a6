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
    """Metric vs strength on a log x axis (zero strengths are left out), one line per checkpoint,
    error bars = std over repeats, dashed line in the same colour = that checkpoint's clean value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, strength_name = metric_key(metric, k), report["settings"]["strength_name"]
    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for index, entry in enumerate(report["checkpoints"]):
        levels = sorted((lv for lv in entry["levels"] if lv["strength"] > 0), key=lambda lv: lv["strength"])
        color = f"C{index}"
        if levels:
            axes.errorbar([lv["strength"] for lv in levels], [lv["summary"][key]["mean"] for lv in levels],
                          yerr=[lv["summary"][key]["std"] for lv in levels], marker="o", capsize=3,
                          color=color, label=entry["name"])
        axes.axhline(entry["clean"][key], color=color, linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_xlabel(f"{strength_name} (log scale); dashed: clean")
    axes.set_ylabel(metric_label(metric, k))
    axes.set_title(f"{report['settings'].get('title') or report['kind']} severity on {report['dataset']['name']} "
                   f"({len(report['settings']['trial_seeds'])} repeats, mean ± std)")
    axes.legend()
    figure.tight_layout()
    try:
        return write_atomic(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(figure)
