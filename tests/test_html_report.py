"""The self-contained HTML robustness report: the builder (sections, numbers, no network loads),
`robustrec report html` and `study report --html` with their bad input, and a real headless
browser that renders the page offline (scripts ran, no console error, no request, a real picture)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from browser_helpers import find_browser, render
from cli_helpers import assert_one_line_error, cli_code, run_cli
from robustrec.reports.html import reports_html
from robustrec.studies.report import study_html
from robustrec.studies.execute import InlineExecutor, run_study
from robustrec.studies.report import build_report
from robustrec.studies.spec import load_study

pytest.importorskip("jinja2")
pytest.importorskip("plotly")

STUDY = """
name = "html"
data_dir = "{data}"
datasets = ["synthetic"]
models = ["bprmf", "vbpr"]
strategies = ["plain", "mg"]
seeds = [0, 1]

[train]
epochs = 2
patience = 2
batch_size = 512

[[stress]]
kind = "noise"
sigma = [1e-3, 1e-1]
repeats = 2

[[stress]]
kind = "modality"
missing = "text"
rate = [0.5]
repeats = 2
models = ["vbpr"]
"""

SECTIONS = ("leaderboard", "grid", "severity", "comparison", "flatness", "provenance", "methods")


@pytest.fixture(scope="module")
def study(tmp_path_factory, synthetic_dir):
    """A finished two-seed study (noise with flatness, a modality fault) and a landscape of one run."""
    root = tmp_path_factory.mktemp("html-study")
    path = root / "study.toml"
    path.write_text(STUDY.replace("{data}", str(synthetic_dir)))
    folder = root / "out"
    manifest = run_study(load_study(path), folder, InlineExecutor(threads=1))
    assert all(cell.state == "done" for cell in manifest.cells.values())
    run = folder / "runs" / "synthetic" / "bprmf-mg-g0-s0"
    assert cli_code("landscape", run, "--grid", "3", "--triplets", "128", "--threads", "1", "-q",
                    "--out-dir", folder / "landscapes") == 0
    return folder


def stress_reports(folder: Path, seed: int = 0) -> list[Path]:
    return sorted((folder / "reports" / "synthetic").glob(f"s{seed}-*.json"))


def network_loads(page: str) -> list[str]:
    """Resources the page would fetch from elsewhere (scripts, styles, images, frames, CSS urls)."""
    markup = page.split("<script>", 1)[0] + "".join(re.findall(r"<script[^>]*>", page))
    patterns = (r"<script[^>]*\ssrc=", r"<link[^>]*\shref=", r"<(?:img|iframe|source|video|audio)[^>]*\ssrc=[\"']?(?:https?:)?//",
                r"url\(\s*[\"']?(?:https?:)?//", r"@import")
    return [m.group(0) for pattern in patterns for m in re.finditer(pattern, markup, re.I)]


def body_text(page: str) -> str:
    return page.split("<script>", 1)[0]


# --- the builder ---------------------------------------------------------------------------------


def test_study_page_has_every_section_and_the_reports_numbers(study):
    report = build_report(study)
    page = study_html(study, study_report=report, command="robustrec study report X --html y.html")
    text = body_text(page)
    for section in SECTIONS:
        assert f'<section id="{section}">' in text
    assert network_loads(page) == []
    assert "Content-Security-Policy" in page and "default-src 'none'" in page and "connect-src 'none'" in page
    assert page.count("<script") == 3 and "Plotly.newPlot" in page  # plotly.js, the data, the init
    # numbers of the study report: clean means, drops with intervals, corrected p of the comparisons
    for row in report["clean"]:
        assert f"{row['test']['recall@5']['mean']:.4f} ± {row['test']['recall@5']['std']:.4f}" in text
    drops = [r for r in report["stress"] if not r.get("unaffected")]
    assert len(drops) == 2 * 4 + 2  # noise: 2 levels × 4 model·strategy; modality: vbpr × 2 strategies
    for row in drops:
        low, high = row["drop_pct"]["ci95"]
        assert f"{row['drop_pct']['mean']:.2f}%" in text and f"[{low:.2f}, {high:.2f}]" in text
        assert f"sig. {row['significant_seeds']}/2 · 2 seeds × 2 rep. · 1,200 users" in text
    plain = {(r["stress_index"], r["strength"], r["model"]): r for r in drops if r["strategy"] == "plain"}
    compared = [row for row in drops if "vs_plain" in row]
    assert len(compared) == 5
    for row in compared:  # drop reduction = plain's drop − the strategy's, whatever sign vs_plain uses
        p = row["vs_plain"]["p_adjusted"]
        assert ("<0.001" if p < 0.001 else f"{p:.3f}") in text
        reduction = plain[row["stress_index"], row["strength"], row["model"]]["drop_pct"]["mean"] - row["drop_pct"]["mean"]
        assert f"{reduction:+.2f}" in text
    # leaderboard per budget: two noise levels give two budgets; modality is capped at its one level
    assert "budget 1 of 2 (weakest)" in text and "budget 2 of 2 (strongest)" in text and "rate = 0.5⁺" in text
    assert "not tested" in text  # bprmf is not under the modality stress
    # figures: a severity curve per stress, loss rise of the noise stress, the landscape of the study folder
    figures = json.loads(re.search(r'id="figure-data">(.*?)</script>', page, re.S).group(1))
    assert [f["id"] for f in figures] == ["severity-0", "severity-1", "flatness-0", "landscape-0"]
    assert 'data-figures="4"' in page
    # provenance: versions, fingerprints, the study file, commands, docs links
    stress = json.loads(stress_reports(study)[0].read_text())
    assert stress["dataset"]["fingerprint"] in text and stress["dataset"]["interactions_fingerprint"] in text
    dataset = stress["dataset"]
    assert f"<td>{dataset['users']:,}</td><td>{dataset['items']:,}</td>" in text
    manifest = json.loads((study / "study.json").read_text())
    weights = next(c for c in manifest["cells"].values() if c["kind"] == "stress")["spec"]["inputs"][0]["output"]
    assert weights["weights_sha256"] in text
    assert 'name = &#34;html&#34;' in text and "sigma = [1e-3, 1e-1]" in text  # the study file itself
    assert "robustrec study report X --html y.html" in text and "robustrec study run " in text
    for doc in ("docs/html-report.md", "docs/reports.md", "docs/studies.md", "docs/flatness.md"):
        assert f'href="{doc}"' in text and (Path(__file__).parents[1] / doc).is_file()
    assert "plotly" in text and "jinja2" in text


def test_reports_page_shows_mg_gains_flatness_and_landscapes(study):
    paths = stress_reports(study)
    page = reports_html(paths, landscapes=[study / "landscapes"])
    text = body_text(page)
    assert network_loads(page) == []
    noise = json.loads(paths[0].read_text())
    assert noise["kind"] == "noise"
    for gain in (g for g in noise["mg_gains"] if g["metric"] == "recall@5"):
        assert f"{gain['drop_reduction_pts']:+.2f}" in text
        assert f"{gain['flatness']['mg']:.3e}" in text
    for entry in noise["checkpoints"]:
        assert entry["name"] in text and f"{entry['clean']['recall@5']:.4f}" in text
        for level in entry["levels"]:
            assert f"{level['summary']['recall@5']['drop_pct']:.2f}%" in text
    assert "landscape-bprmf-mg-g0-s0" in text
    # another metric is read from the same reports
    assert "Metric <b>ndcg@10</b>" in reports_html(paths, metric="ndcg", k=10)


def test_extra_fields_of_newer_reports_are_shown(study, tmp_path):
    """Rank stability, exposure and effect sizes, when a report carries them, get their own columns."""
    report = json.loads(stress_reports(study)[0].read_text())
    for entry in report["checkpoints"]:
        for level in entry["levels"]:
            level["rank_stability"] = {"recall@5": {"overlap": 0.8125, "rbo": 0.9375}}
            level["exposure"] = {"gini": 0.4375}
            level["user_test"]["recall@5"]["d_z"] = 0.3125
    for gain in report["mg_gains"]:
        gain["test"]["d_z"] = 1.5625
    path = tmp_path / "noise-extra.json"
    path.write_text(json.dumps(report))
    text = body_text(reports_html([path]))
    assert '<section id="measures">' in text
    for name, value in (("rank_stability.overlap", "0.8125"), ("rank_stability.rbo", "0.9375"),
                        ("exposure.gini", "0.4375"), ("user_test.d_z", "0.3125")):
        assert f"<th>{name}</th>" in text and value in text
    assert "1.56" in text  # the comparison's effect size


def test_unaffected_checkpoints_and_diverged_landscapes(study, tmp_path):
    """A checkpoint the stress cannot reach shows 'unaffected' with its reason in every level row;
    a landscape whose loss overflowed (inf, NaN in its JSON) is drawn with gaps, not refused."""
    modality = next(p for p in stress_reports(study) if "modality" in p.name)
    report = json.loads(modality.read_text())
    ghost = {**report["checkpoints"][0], "name": "idonly", "model": "bprmf", "levels": [],
             "unaffected": "ID-only model: no text features to drop"}
    report["checkpoints"].append(ghost)
    path = tmp_path / "modality.json"
    path.write_text(json.dumps(report))
    landscape = json.loads(next((study / "landscapes").glob("landscape-*.json")).read_text())
    landscape["surface"][0][0], landscape["slice"][-1] = float("inf"), float("nan")
    (tmp_path / "landscape-diverged.json").write_text(json.dumps(landscape))  # Infinity, NaN
    page = reports_html([path], landscapes=[tmp_path / "landscape-diverged.json"])
    text = body_text(page)
    assert "ID-only model: no text features to drop" in text and ">unaffected<" in text
    figures = json.loads(re.search(r'id="figure-data">(.*?)</script>', page, re.S).group(1))
    assert figures[-1]["data"][0]["z"][0][0] is None and figures[-1]["data"][1]["y"][-1] is None


# --- the commands --------------------------------------------------------------------------------


def test_report_html_command(study, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    code, stdout, err = run_cli(capsys, "report", "html", *stress_reports(study), "-o", out)
    assert code == 0, err
    assert "wrote" in stdout and out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    page = out.read_text()
    assert network_loads(page) == [] and "robustrec report html " in page
    # a folder of reports stands for the reports in it (both seeds: eight checkpoints)
    code, _, err = run_cli(capsys, "report", "html", study / "reports" / "synthetic", "-o", out)
    assert code == 0, err
    assert "8 checkpoint(s)" in out.read_text()


def test_study_report_html_command(study, tmp_path, capsys):
    out = tmp_path / "study.html"
    code, stdout, err = run_cli(capsys, "study", "report", study, "--html", out, "--metric", "ndcg", "--k", "10")
    assert code == 0, err
    assert out.is_file() and f"wrote {out}" in stdout.replace("\n", "")
    page = out.read_text()
    assert "Metric <b>ndcg@10</b>" in page and "--metric ndcg --k 10" in page and network_loads(page) == []


def test_bad_input_is_one_line_exit_2_and_writes_nothing(study, tmp_path, capsys):
    reports = stress_reports(study)
    out = tmp_path / "report.html"
    out.write_text("the previous report\n")
    # reports of different data in one page
    other = json.loads(reports[0].read_text())
    other["dataset"]["fingerprint"] = "0123456789abcdef"
    (tmp_path / "other.json").write_text(json.dumps(other))
    assert_one_line_error(*run_cli(capsys, "report", "html", reports[0], tmp_path / "other.json", "-o", out),
                          "different data", "0123456789abcdef")
    # a file that is not a report, one that is not JSON, one that is missing
    assert_one_line_error(*run_cli(capsys, "report", "html", study / "study.json", "-o", out),
                          "is not a robustrec report")
    (tmp_path / "notes.json").write_text("not json")
    assert_one_line_error(*run_cli(capsys, "report", "html", tmp_path / "notes.json", "-o", out),
                          "is not a robustrec report")
    assert_one_line_error(*run_cli(capsys, "report", "html", tmp_path / "missing.json", "-o", out), "not found")
    # the output is a folder, or under a file
    assert_one_line_error(*run_cli(capsys, "report", "html", *reports, "-o", tmp_path), "is a folder")
    assert_one_line_error(*run_cli(capsys, "report", "html", *reports, "-o", out / "x.html"), "is a file")
    assert_one_line_error(*run_cli(capsys, "study", "report", study, "--html", tmp_path), "--html", "is a folder")
    assert_one_line_error(*run_cli(capsys, "report", "html", *reports, "-o", out, "--landscape", tmp_path / "nope"),
                          "--landscape", "not found")
    assert_one_line_error(*run_cli(capsys, "report", "html", *reports, "-o", out, "--correction", "bonferroni"),
                          "--correction")
    # nothing half-written: the old file is untouched and no temp file is left
    assert out.read_text() == "the previous report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.json", "other.json", "report.html"]
    assert not (study / "report" / "x.html").exists()


# --- a real browser ------------------------------------------------------------------------------


def test_page_renders_offline_in_headless_chromium(study, tmp_path):
    browser = find_browser()
    if browser is None:
        pytest.skip("no chromium on PATH (`apt-get install chromium`; .ci/run installs it when it can)")
    page = tmp_path / "report.html"
    page.write_text(study_html(study))
    started = time.monotonic()
    # hover the first point of the first severity curve: plotly draws its label with the values
    hover = ("(function () { var gd = document.getElementById('severity-0');"
             " Plotly.Fx.hover(gd, [{curveNumber: 1, pointNumber: 0}]);"
             " return Array.from(gd.querySelectorAll('.hovertext')).map(function (n) { return n.textContent; }); })()")
    result = render(browser, page, tmp_path / "shot.png", tmp_path / "profile", "data-plots-rendered", probe=hover)
    took = time.monotonic() - started
    assert result["error"] is None and result["marker"] == "4", result  # all four figures drawn
    assert result["console_errors"] == [] and result["exceptions"] == [], result
    assert result["requests"] == [page.resolve().as_uri()], result["requests"]  # the page itself, nothing else
    assert result["probe"] and "drop" in result["probe"][0] and "users 1,200" in result["probe"][0], result["probe"]
    from PIL import Image

    with Image.open(tmp_path / "shot.png") as shot:
        assert shot.size == (1280, 2400)
        colours = shot.convert("RGB").getcolors(1 << 24)
    assert len(colours) > 500  # text, coloured grid cells and plots, not a blank page
    white = sum(count for count, colour in colours if colour == (255, 255, 255)) / (1280 * 2400)
    assert white < 0.9
    assert took < 20


def test_browser_harness_sees_errors_and_requests(tmp_path):
    """The check above is not vacuous: a page that logs an error, throws and loads a remote image
    is caught (the request goes to a dead local proxy, nothing leaves the machine)."""
    browser = find_browser()
    if browser is None:
        pytest.skip("no chromium on PATH (`apt-get install chromium`; .ci/run installs it when it can)")
    page = tmp_path / "bad.html"
    page.write_text('<html><body><img src="http://192.0.2.1/x.png"><script>console.error("boom");'
                    'document.body.setAttribute("data-plots-rendered", "1"); missing();</script></body></html>')
    result = render(browser, page, tmp_path / "shot.png", tmp_path / "profile", "data-plots-rendered", timeout=5)
    assert result["marker"] == "1"
    assert any(c.get("args", [{}])[0].get("value") == "boom" for c in result["console_errors"])
    assert "missing is not defined" in json.dumps(result["exceptions"])
    assert "http://192.0.2.1/x.png" in result["requests"]
