"""The robustness report: a versioned JSON document, written atomically, validated on load.

Top level (schema version 1)::

  format          "robustrec-report" (marks the file as ours)
  schema_version  1
  kind            perturbation kind ("noise", "caption", "modality", ...: any name, reports are
                  kind-agnostic)
  created         ISO time
  versions        robustrec, python, torch, numpy, scipy
  dataset         name, users, items, fingerprint (all checkpoints share it)
  settings        perturbation parameters, strength_name, levels, repeats, seed, trial_seeds,
                  split, ks, default metric and k, flatness settings; optional "title" (table
                  heading, e.g. "modality: missing audio (fill mean)"; default: the kind) and
                  "description" (one-line summary of the kind's settings)
  checkpoints     one entry per checkpoint: name, path, weights_sha256 (of the model.safetensors
                  evaluated; a study report refuses an entry whose run folder now holds other
                  weights), model, mg, config (the full TrainConfig),
                  clean {metric@K: value}, levels [ {strength, parameters,
                  trials [{seed, metrics {metric@K}}], summary {metric@K: {mean, std, drop_pct}},
                  user_test {metric@K: paired per-user test}, flatness {...} } ];
                  trials may carry kind-specific counts (caption: changed_items,
                  drawn_without_caption; modality: changed_items, items); an entry with
                  "unaffected" (a reason) has no levels:
                  the perturbation cannot change that model's scores by construction
  mg_gains        MG-vs-baseline pairs at every level and metric@K (see ``reports.gains``)
"""

from __future__ import annotations

import json
from pathlib import Path

from robustrec.errors import RobustRecError
from robustrec.files import write_text_atomic
from robustrec.files import write_atomic  # noqa: F401  (re-exported: callers import it from here)

FORMAT = "robustrec-report"
SCHEMA_VERSION = 1
TOP_KEYS = ("kind", "created", "versions", "dataset", "settings", "checkpoints")
SETTINGS_KEYS = ("strength_name", "levels", "repeats", "seed", "trial_seeds", "ks", "metric", "k")
CHECKPOINT_KEYS = ("name", "model", "mg", "config", "clean", "levels")
LEVEL_KEYS = ("strength", "trials", "summary")


class ReportError(RobustRecError):
    """A file is not a (valid) robustrec report."""


def library_versions() -> dict[str, str]:
    import platform

    import numpy
    import scipy
    import torch

    from robustrec import __version__

    return {"robustrec": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": numpy.__version__, "scipy": scipy.__version__}


def validate(report: object, source: str = "report") -> dict:
    """Return ``report`` if it is a robustrec report this version understands, else ReportError."""
    if not isinstance(report, dict) or report.get("format") != FORMAT:
        raise ReportError(f"{source} is not a robustrec report (no \"format\": \"{FORMAT}\" field)")
    version = report.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= SCHEMA_VERSION:
        raise ReportError(f"{source} has report schema version {version!r}; this robustrec reads "
                          f"versions 1 to {SCHEMA_VERSION}")
    _require(report, TOP_KEYS, source)
    if not isinstance(report["kind"], str) or not report["kind"]:
        raise ReportError(f"{source}: report kind must be a non-empty string, got {report['kind']!r}")
    _require(report["settings"], SETTINGS_KEYS, f"{source} settings")
    if not isinstance(report["dataset"], dict) or "fingerprint" not in report["dataset"]:
        raise ReportError(f"{source}: dataset fingerprint missing")
    if not isinstance(report["checkpoints"], list) or not report["checkpoints"]:
        raise ReportError(f"{source}: no checkpoints")
    for entry in report["checkpoints"]:
        _require(entry, CHECKPOINT_KEYS, f"{source} checkpoint")
        for level in entry["levels"]:
            _require(level, LEVEL_KEYS, f"{source} checkpoint {entry['name']!r} level")
    return report


def data_fingerprint(dataset: dict) -> str:
    """The data fingerprint robustrec shows for a dataset summary (``InteractionData.describe()``,
    a report's ``dataset``, a run's data.json): the interactions fingerprint, a content hash of the
    user and item counts and the train/valid/test interactions. It is what ``data inspect``
    prints, what report headings and ``compare`` group by, and what checkpoints are checked
    against ("trained on different data"); it does not change with the feature files a command
    loaded (each feature file has its own fingerprint, under ``modalities``). Summaries written
    before interactions fingerprints existed: their ``fingerprint``."""
    return dataset.get("interactions_fingerprint") or dataset["fingerprint"]


def _require(obj: object, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(obj, dict):
        raise ReportError(f"{where} is malformed (expected an object)")
    missing = [key for key in keys if key not in obj]
    if missing:
        raise ReportError(f"{where} is malformed: missing {', '.join(missing)}")


def load_report(path: str | Path) -> dict:
    """Read and validate a report file; anything else is a one-line ReportError."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report {str(path)!r} not found")
    try:  # not read_json: a file that is not JSON is first of all "not a robustrec report"
        report = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path} is not a robustrec report (not valid JSON: {exc})") from None
    except OSError as exc:
        raise ReportError(f"report {path} is unreadable ({exc.strerror or exc})") from None
    return validate(report, str(path))


def report_path(report_dir: str | Path, kind: str, dataset: str, stamp: str) -> Path:
    """``<dir>/<kind>-<dataset>-<stamp>.json``, with -2, -3, ... if that name is taken."""
    base = Path(report_dir) / f"{kind}-{dataset}-{stamp}"
    path, n = base.with_suffix(".json"), 1
    while path.exists():
        n += 1
        path = Path(f"{base}-{n}.json")
    return path


def save_report(report: dict, path: str | Path) -> Path:
    validate(report, "report to write")
    text = json.dumps(report, indent=1, allow_nan=False) + "\n"
    return write_text_atomic(path, text)
