"""`robustrec check SUITE RUN...`: expectations on stress tests as a build gate."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.studies.gate import Check, judge, load_suite

SUITE = """
[[check]]
name = "zero noise changes nothing"
kind = "noise"
sigma = 0.0
flatness = false
repeats = 2
metric = "recall@20"
max_abs_drop_pct = 0.0
min_overlap = 1.0
min_rbo = 1.0

[[check]]
name = "huge noise stays under budget"
kind = "noise"
sigma = 10.0
flatness = false
repeats = 2
metric = "recall@20"
max_drop_pct = 1.0
"""


def _entry(drop_ci=(0.5, 1.5), clean=0.2, jaccard=0.95, edited=None, unaffected=None):
    entry = {"name": "run", "clean": {"recall@20": clean}, "levels": [{
        "summary": {"recall@20": {"drop_pct": 1.0}},
        "user_test": {"recall@20": {"ci95": [v * clean / 100 for v in drop_ci]}},
        "moves": {"jaccard@20": {"mean": jaccard, "ci95": [jaccard - 0.01, jaccard + 0.01]},
                  **({"edited_exposure_change@20": {"mean": edited, "ci95": [edited - 1, edited + 1]}}
                     if edited is not None else {})}}]}
    if unaffected:
        entry.update(levels=[], unaffected=unaffected)
    return entry


@pytest.mark.parametrize("expect, entry, passed", [
    ({"max_drop_pct": 2.0}, _entry(), True),
    ({"max_drop_pct": 1.0}, _entry(), False),              # the upper bound 1.5 is over budget
    ({"max_abs_drop_pct": 1.0}, _entry((-0.5, 0.9)), True),
    ({"max_abs_drop_pct": 0.5}, _entry((-0.6, 0.1)), False),
    ({"min_overlap": 0.9}, _entry(jaccard=0.95), True),
    ({"min_overlap": 0.99}, _entry(jaccard=0.95), False),
    ({"max_edited_exposure_gain": 0.0}, _entry(edited=-3.0), True),   # upper bound -2
    ({"max_edited_exposure_gain": 0.0}, _entry(edited=0.5), False),   # upper bound 1.5: promoted
    ({"max_edited_exposure_gain": 0.0}, _entry(), False),             # nothing edited to judge
    ({"max_drop_pct": 0.0}, _entry(unaffected="unaffected by construction: x"), True),
])
def test_each_expectation_judges_the_interval(expect, entry, passed):
    outcomes = judge(Check("c", "noise", {}, "recall@20", expect), entry)
    assert [o.passed for o in outcomes] == [passed]


@pytest.mark.parametrize("text, message", [
    ('[[check]]\nkind = "nosuch"\nmax_drop_pct = 1', "kind must be one of"),
    ('[[check]]\nkind = "noise"\nmetric = "recall@7"\nmax_drop_pct = 1', "metric must look like recall@20"),
    ('[[check]]\nkind = "noise"\nmetric = "hits@20"\nmax_drop_pct = 1', "metric must look like recall@20"),
    ('[[check]]\nkind = "noise"\nmax_drop_pct = "one"', "max_drop_pct must be a finite number"),
    ('[[check]]\nkind = "noise"\nmax_drop_pct = inf', "max_drop_pct must be a finite number"),
    ('[[check]]\nkind = "noise"', "give at least one expectation"),
    ('[[check]]\nkind = "noise"\nsigma = [0.1, 0.2]\nmax_drop_pct = 1', "one strength per check"),
    ('[[check]]\nkind = "noise"\nnosuch = 1\nmax_drop_pct = 1', "nosuch"),
    ('[[check]]\nkind = "noise"\nrepeats = 0\nmax_drop_pct = 1', "--repeats must be >= 1"),
    ('[check]\nkind = "noise"', "no [[check]] table"),
    ('plugins = "x.py"\n[[check]]\nkind = "noise"\nmax_drop_pct = 1', "plugins must be a list"),
    ('plugins = ["missing.py"]\n[[check]]\nkind = "noise"\nmax_drop_pct = 1', "missing.py not found"),
])
def test_bad_suites_are_one_line_and_run_nothing(tmp_path, bprmf_pair, capsys, text, message):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_suite(path)
    assert_one_line_error(*run_cli(capsys, "check", path, bprmf_pair[0], "--junit", tmp_path / "out.xml", "-q"))
    assert not (tmp_path / "out.xml").exists()


def test_check_passes_and_fails_with_junit(tmp_path, bprmf_pair, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE)
    code, out, _ = run_cli(capsys, "check", suite, *bprmf_pair, "--junit", tmp_path / "junit.xml", "-q")
    assert code == 1, out
    assert "failed: huge noise stays under budget" in " ".join(out.split())
    root = ET.parse(tmp_path / "junit.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2 * (3 + 1)  # two runs × (three zero-noise expectations + one budget)
    failed = [c.get("classname") for c in cases if c.find("failure") is not None]
    assert failed == ["suite.huge noise stays under budget"] * 2
    suite.write_text(SUITE.split("[[check]]\nname = \"huge")[0])
    code, out, _ = run_cli(capsys, "check", suite, *bprmf_pair, "-q")
    assert code == 0 and "6/6 passed" in out


def test_the_example_suite_is_valid():
    root = Path(__file__).resolve().parents[1]
    checks = load_suite(root / "examples" / "checks" / "robustness.toml")
    assert {c.kind for c in checks} == {"noise", "modality", "text"}


def test_a_suite_loads_its_plugins_relative_to_its_file(tmp_path, bprmf_pair, capsys):
    example = Path(__file__).resolve().parents[1] / "robustrec" / "examples" / "stresses" / "zero_text.py"
    (tmp_path / "plug").mkdir()
    text = example.read_text(encoding="utf-8").replace('"zero-text"', '"gate-zero"')
    (tmp_path / "plug" / "mine.py").write_text(text, encoding="utf-8")
    suite = tmp_path / "plug" / "suite.toml"
    suite.write_text('plugins = ["mine.py"]\n[[check]]\nname = "zeroed text"\nkind = "gate-zero"\nrate = 0.5\n'
                     'repeats = 1\nmax_abs_drop_pct = 0.0\n')
    (check,) = load_suite(suite)
    assert check.kind == "gate-zero" and check.options["rate"] == 0.5
    code, out, err = run_cli(capsys, "check", suite, bprmf_pair[0], "-q")
    assert code == 0 and "1/1 passed" in out, out + err  # BPR-MF reads no features: unaffected, passes
