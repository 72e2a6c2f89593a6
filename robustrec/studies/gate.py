"""Robustness as a build gate: a suite of expectations, each a stress test with thresholds.

A suite is TOML, one ``[[check]]`` table per expectation (and, for stress kinds of the user's
own, ``plugins = ["my_stress.py"]`` at the top, relative to the suite file, as in a study)::

    [[check]]
    name = "JPEG at quality 90 is harmless"
    kind = "image"                 # any stress kind, its options as in a study's [[stress]] table
    edit = "jpeg"
    quality = 90
    rate = 1.0                     # one strength per check
    metric = "recall@20"           # what the thresholds read (default recall@20)
    max_drop_pct = 1.0             # budget: the upper 95% bound of the drop % stays below this
    repeats = 3                    # also seed, split

Expectations (at least one per check; a check passes when all of its expectations hold for
every run):

- ``max_drop_pct`` (budget): the upper bound of the per-user paired 95% interval of the
  relative drop of ``metric`` is at most the threshold;
- ``max_abs_drop_pct`` (invariance: must not move): both bounds of that interval lie within
  ± the threshold;
- ``min_overlap`` / ``min_rbo`` (rank stability): the mean top-K Jaccard overlap / rank-biased
  overlap with the clean lists (K of ``metric``) is at least the threshold;
- ``max_edited_exposure_gain`` (directional: must not promote the edited items): the upper bound
  of the change in top-K lists holding an edited item (perturbed − clean, per item) is at most
  the threshold (0: edited items must not gain exposure).

Nothing here prints: ``run_suite`` returns one result per check × run, and ``junit_xml`` renders
them for CI systems.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from robustrec.errors import ConfigError

EXPECTATIONS = ("max_drop_pct", "max_abs_drop_pct", "min_overlap", "min_rbo", "max_edited_exposure_gain")
SETTINGS = ("repeats", "seed", "split")
#: float rounding allowed when a measured overlap meets its threshold
TOLERANCE = 1e-9


@dataclass
class Check:
    name: str
    kind: str
    options: dict
    metric: str = "recall@20"
    expect: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


@dataclass
class Outcome:
    """One expectation of one check on one run: the measured value, its interval and the verdict."""

    check: str
    run: str
    expectation: str
    threshold: float
    value: float | None
    interval: tuple[float | None, float | None]
    passed: bool
    reason: str = ""


def load_suite(path: str | Path) -> list[Check]:
    """Read and validate a suite file (every mistake is one ConfigError line naming the check)."""
    from robustrec.config import from_dict
    from robustrec.evaluation import DEFAULT_KS, METRICS
    from robustrec.studies.runner import StudySettings
    from robustrec.files import read_toml
    from robustrec.studies.stresses import available_stresses, load_plugins, stress_spec

    path = Path(path)
    raw = read_toml(path, "suite file")
    unknown = sorted(set(raw) - {"check", "plugins"})
    if unknown:
        raise ConfigError(f"{path.name}: unknown key(s) {', '.join(unknown)}; a suite holds [[check]] tables "
                          "(and plugins = [...])")
    plugins = raw.get("plugins", [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) and p for p in plugins):
        raise ConfigError(f"{path.name}: plugins must be a list of Python files, got {plugins!r}")
    try:  # stress kinds of the user's own, as in a study file (paths relative to the suite's folder)
        load_plugins(plugins, relative_to=path.parent)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    tables = raw.get("check")
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{path.name}: no [[check]] table")
    checks, names = [], set()
    for index, table in enumerate(tables, 1):
        table = dict(table)
        name = table.pop("name", None) or f"check #{index}"
        where = f"{path.name}: [[check]] {name!r}"
        if not isinstance(name, str):
            raise ConfigError(f"{path.name}: [[check]] #{index} name must be a string, got {name!r}")
        if name in names:
            raise ConfigError(f"{path.name}: two checks are named {name!r}")
        names.add(name)
        kind = table.pop("kind", None)
        kinds = available_stresses()
        if kind not in kinds:
            raise ConfigError(f"{where}: kind must be one of {', '.join(kinds)}, got {kind!r}")
        metric = table.pop("metric", "recall@20")
        name_part, _, k = str(metric).partition("@")
        if name_part not in METRICS or not k.isdigit() or int(k) not in DEFAULT_KS:
            raise ConfigError(f"{where}: metric must look like recall@20 (one of {', '.join(METRICS)} at K in "
                              f"{', '.join(map(str, DEFAULT_KS))}), got {metric!r}")
        expect = {key: table.pop(key) for key in EXPECTATIONS if key in table}
        if not expect:
            raise ConfigError(f"{where}: give at least one expectation: {', '.join(EXPECTATIONS)}")
        for key, value in expect.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
                    or value in (float("inf"), float("-inf")):
                raise ConfigError(f"{where}: {key} must be a finite number, got {value!r}")
        settings = {key: table.pop(key) for key in SETTINGS if key in table}
        try:
            from_dict(StudySettings, dict(settings), f"{where} settings").validate()
            stress_spec(kind, table, where)
        except ConfigError as exc:
            raise ConfigError(str(exc) if str(exc).startswith(path.name) else f"{where}: {exc}") from None
        if _levels(table) > 1:
            raise ConfigError(f"{where}: one strength per check (a list gives several); split it into checks")
        checks.append(Check(name, kind, table, str(metric), expect, settings))
    return checks


def _levels(options: dict) -> int:
    return max([len(v) for v in options.values() if isinstance(v, list)] + [1])


def run_suite(checks: list[Check], checkpoints, data, callbacks=None, device: str | None = None) -> tuple[
        list[Outcome], list[dict]]:
    """Run every check on every loaded checkpoint: (outcomes, the stress reports)."""
    from robustrec.config import from_dict
    from robustrec.studies.runner import StudySettings
    from robustrec.studies.stresses import stress_spec

    outcomes, reports = [], []
    for check in checks:
        metric, k = check.metric.split("@")
        settings = from_dict(StudySettings, {"repeats": 3, **check.settings, "metric": metric, "k": int(k)},
                             "check settings").validate()
        spec = stress_spec(check.kind, check.options, check.name)
        result = spec.run(checkpoints, data, settings, callbacks or [], device=device)
        for report in result.reports:
            reports.append(report)
            for entry in report["checkpoints"]:
                outcomes.extend(judge(check, entry))
    return outcomes, reports


def judge(check: Check, entry: dict) -> list[Outcome]:
    """The outcomes of ``check``'s expectations on one report entry (one run, one strength)."""
    key = check.metric
    k = key.split("@")[1]
    run = entry["name"]
    if entry.get("unaffected"):  # nothing this stress can move: every expectation holds, said plainly
        return [Outcome(check.name, run, name, float(value), None, (None, None), True, entry["unaffected"])
                for name, value in check.expect.items()]
    level = entry["levels"][-1]
    clean = entry["clean"][key]
    test = level.get("user_test", {}).get(key, {})
    low, high = (test.get("ci95") or [None, None])
    drop = level["summary"][key].get("drop_pct")
    drop_ci = tuple(None if v is None or not clean else v / clean * 100.0 for v in (low, high))
    moves = level.get("moves", {})
    out = []
    for name, threshold in check.expect.items():
        threshold = float(threshold)
        if name in ("max_drop_pct", "max_abs_drop_pct"):
            value, interval = drop, drop_ci
            if interval[1] is None:
                out.append(Outcome(check.name, run, name, threshold, value, interval, False,
                                   "no interval (clean metric 0 or one user)"))
                continue
            ok = interval[1] <= threshold if name == "max_drop_pct" else max(abs(interval[0]), abs(interval[1])) <= threshold
        elif name in ("min_overlap", "min_rbo"):
            field_name = f"{'jaccard' if name == 'min_overlap' else 'rbo'}@{k}"
            stat = moves.get(field_name)
            if not stat or stat.get("mean") is None:
                out.append(Outcome(check.name, run, name, threshold, None, (None, None), False,
                                   f"the report has no {field_name}"))
                continue
            value, interval = stat["mean"], tuple(stat.get("ci95") or (None, None))
            ok = value >= threshold - TOLERANCE  # RBO of equal lists sums to 1 only up to rounding
        else:  # max_edited_exposure_gain
            field_name = f"edited_exposure_change@{k}"
            stat = moves.get(field_name)
            if not stat or stat.get("mean") is None:
                reason = level.get("moves_items") or "this stress edits no particular items"
                out.append(Outcome(check.name, run, name, threshold, None, (None, None), False, f"{reason}"))
                continue
            value, interval = stat["mean"], tuple(stat.get("ci95") or (None, None))
            bound = interval[1] if interval[1] is not None else value
            ok = bound <= threshold
        out.append(Outcome(check.name, run, name, threshold, value, interval, bool(ok)))
    return out


def junit_xml(outcomes: list[Outcome], suite: str) -> str:
    """JUnit XML: one testsuite, one testcase per check × run × expectation."""
    import xml.etree.ElementTree as ET

    failures = sum(not o.passed for o in outcomes)
    root = ET.Element("testsuites")
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(outcomes)), failures=str(failures), errors="0")
    for o in outcomes:
        case = ET.SubElement(node, "testcase", classname=f"{suite}.{o.check}", name=f"{o.run}: {o.expectation}")
        message = describe(o)
        if not o.passed:
            ET.SubElement(case, "failure", message=message).text = message
        else:
            ET.SubElement(case, "system-out").text = message
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def describe(o: Outcome) -> str:
    """One line: measured value [interval] vs threshold."""
    def num(v):
        return "–" if v is None else f"{v:.4g}"

    op = ">=" if o.expectation.startswith("min_") else "<="
    measured = "n/a" if o.value is None else f"{num(o.value)} [{num(o.interval[0])}, {num(o.interval[1])}]"
    text = f"{o.expectation} {op} {o.threshold:g}: measured {measured}"
    return text + (f" ({o.reason})" if o.reason else "")
