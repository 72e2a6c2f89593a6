"""Put checkpoints of several reports side by side (``robustrec compare``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustrec.reports.gains import SOURCE
from robustrec.reports.schema import ReportError, load_report


@dataclass
class ComparisonGroup:
    """Checkpoint entries of one perturbation kind (and title, when a report sets one, e.g. one
    modality fault), gathered from one or more reports."""

    kind: str
    strength_name: str
    entries: list[dict]
    #: the default metric and K of the first report of this kind
    metric: str = "recall"
    k: int = 5
    #: table heading: the reports' ``settings["title"]``, else the kind
    title: str = ""


def load_comparison(paths: list[str | Path]) -> tuple[dict, list[ComparisonGroup]]:
    """(dataset, groups): every report validated; reports on different data are refused."""
    paths = expand_report_paths(paths)
    reports = [(Path(path), load_report(path)) for path in paths]
    prints = {report["dataset"]["fingerprint"] for _, report in reports}
    if len(prints) > 1:
        listing = ", ".join(f"{path.name} ({report['dataset'].get('name')}, {report['dataset']['fingerprint']})"
                            for path, report in reports)
        raise ReportError(f"reports were made on different data: {listing}")
    groups: dict[tuple, ComparisonGroup] = {}
    seen: dict[tuple, set[str]] = {}  # names per group: a name is suffixed only when it repeats within one
    for index, (path, report) in enumerate(reports):
        settings = report["settings"]
        title = settings.get("title") or report["kind"]
        key = (report["kind"], settings["strength_name"], title)
        group = groups.setdefault(key, ComparisonGroup(report["kind"], settings["strength_name"], [],
                                                       settings["metric"], settings["k"], title))
        names = seen.setdefault(key, set())
        for entry in report["checkpoints"]:
            name = entry["name"] if entry["name"] not in names else f"{entry['name']} ({path.stem})"
            names.add(name)
            group.entries.append({**entry, "name": name, SOURCE: index})
    return reports[0][1]["dataset"], list(groups.values())


def expand_report_paths(paths: list[str | Path]) -> list[Path]:
    """Files as given; a folder stands for the ``*.json`` reports directly inside it (by name)."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.json") if p.is_file())
            if not found:
                raise ReportError(f"folder {str(path)!r} holds no report (*.json) file")
            out.extend(found)
        else:
            out.append(path)
    if not out:
        raise ReportError("no report given")
    return out
