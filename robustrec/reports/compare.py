"""Put checkpoints of several reports side by side (``robustrec compare``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robustrec.reports.gains import SOURCE
from robustrec.reports.schema import ReportError, data_fingerprint, load_report


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


@dataclass
class ComparisonSection:
    """The reports of one dataset (one data fingerprint): its heading data, groups and report count."""

    dataset: dict
    groups: list[ComparisonGroup]
    reports: int


def load_comparison(paths: list[str | Path]) -> tuple[dict, list[ComparisonGroup]]:
    """(dataset, groups): every report validated; reports on different data are refused."""
    reports = _load(paths)
    prints = {data_fingerprint(report["dataset"]) for _, report in reports}
    if len(prints) > 1:
        listing = ", ".join(f"{path.name} ({report['dataset'].get('name')}, {data_fingerprint(report['dataset'])})"
                            for path, report in reports)
        raise ReportError(f"reports were made on different data: {listing} (a folder of reports is compared "
                          f"per dataset)")
    _check_features(reports)
    return reports[0][1]["dataset"], _groups(reports)


def load_sections(paths: list[str | Path]) -> list[ComparisonSection]:
    """Reports grouped by data fingerprint, one section per dataset in order of first appearance;
    within a section, groups as ``load_comparison`` makes them."""
    by_data: dict[str, list[tuple[Path, dict]]] = {}
    for path, report in _load(paths):
        by_data.setdefault(data_fingerprint(report["dataset"]), []).append((path, report))
    for reports in by_data.values():
        _check_features(reports)
    return [ComparisonSection(reports[0][1]["dataset"], _groups(reports), len(reports))
            for reports in by_data.values()]


def _check_features(reports: list[tuple[Path, dict]]) -> None:
    """Reports on the same interactions must also agree on every feature file they share."""
    seen: dict[str, dict[str, list[str]]] = {}  # modality -> feature fingerprint -> report names
    for path, report in reports:
        for modality, info in (report["dataset"].get("modalities") or {}).items():
            seen.setdefault(modality, {}).setdefault(info.get("fingerprint"), []).append(path.name)
    for modality, prints in seen.items():
        if len(prints) > 1:
            listing = "; ".join(f"{fp}: {', '.join(names)}" for fp, names in prints.items())
            raise ReportError(f"reports on {reports[0][1]['dataset'].get('name')} (data "
                              f"{data_fingerprint(reports[0][1]['dataset'])}) were made with different {modality} "
                              f"features ({listing})")


def _load(paths: list[str | Path]) -> list[tuple[Path, dict]]:
    return [(Path(path), load_report(path)) for path in expand_report_paths(paths)]


def _groups(reports: list[tuple[Path, dict]]) -> list[ComparisonGroup]:
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
    return list(groups.values())


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
