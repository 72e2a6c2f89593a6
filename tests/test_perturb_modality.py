"""Modality faults (``robustrec perturb modality``): missing modality with a fill, feature swap,
feature noise — the Perturbation contract on hand-made features, then the CLI end to end on a
three-modality synthetic set and on real lfm2k text + audio."""

import json
import math
import re

import numpy as np
import pytest
import torch

from cli_helpers import assert_one_line_error, cli_code as _cli, run_cli
from dataset_helpers import write_three_modal
from robustrec.data.dataset import InteractionData, interactions_matrix
from robustrec.errors import ConfigError, DataError
from robustrec.models import available_models, build_model
from robustrec.perturbations.modality import (FeatureNoise, FeatureSwap, MissingModality, chosen_items,
                                              neighbour_fill, rms_scale)
from robustrec.studies.modality_study import fault_spec
from robustrec.studies.stress import parse_levels

N_ITEMS = 40


# --- the Perturbation on hand-made features -------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    """8 users, 40 items with hand-made image (3-d), text (2-d) and audio (4-d) rows, all distinct."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(8), 6)
    items = rng.integers(0, N_ITEMS, size=len(users))
    train = interactions_matrix(users, items, 8, N_ITEMS)
    empty = interactions_matrix(np.zeros(0, int), np.zeros(0, int), 8, N_ITEMS)
    test = interactions_matrix(np.arange(8), (np.arange(8) * 5 + 1) % N_ITEMS, 8, N_ITEMS)
    features = {"image": rng.standard_normal((N_ITEMS, 3)).astype(np.float32),
                "text": rng.standard_normal((N_ITEMS, 2)).astype(np.float32),
                "audio": (rng.standard_normal((N_ITEMS, 4)) * 3 + 1).astype(np.float32)}
    return InteractionData("tiny", 8, N_ITEMS, train, empty, test, features)


@pytest.fixture(scope="module")
def vbpr(tiny):
    return build_model("vbpr", tiny, seed=0).eval()


def _scores(model):
    with torch.no_grad():
        return model.full_scores(torch.arange(8))


def _rows(model, modality):
    return getattr(model, f"feat_{modality}").numpy()


FAULTS = [lambda s: MissingModality("audio", N_ITEMS, s, "zeros"),
          lambda s: MissingModality("audio", N_ITEMS, s, "mean"),
          lambda s: MissingModality("audio", N_ITEMS, s, "neighbours", 3),
          lambda s: FeatureSwap("audio", N_ITEMS, s),
          lambda s: FeatureNoise("audio", N_ITEMS, s)]
IDS = ["zeros", "mean", "neighbours", "swap", "noise"]


@pytest.mark.parametrize("make", FAULTS, ids=IDS)
def test_strength_zero_is_bitwise_identity_and_input_untouched(make, vbpr):
    clean, before = _scores(vbpr), {k: v.clone() for k, v in vbpr.state_dict().items()}
    buffers = {m: t.clone() for m, t in vbpr.features().items()}
    same = make(0.0).apply(vbpr, seed=3)
    assert torch.equal(_scores(same).view(torch.int32), clean.view(torch.int32))
    assert make(0.0).trial_record(3) == {"changed_items": 0, "items": []}
    changed = make(0.5).apply(vbpr, seed=3)
    assert not torch.equal(_scores(changed), clean)
    assert all(torch.equal(before[k], v) for k, v in vbpr.state_dict().items())
    assert all(torch.equal(buffers[m], t) for m, t in vbpr.features().items())
    # the copy got a new audio matrix; the other modalities' buffers are shared, not copied
    assert changed.feat_audio.data_ptr() != vbpr.feat_audio.data_ptr()
    assert changed.feat_text.data_ptr() == vbpr.feat_text.data_ptr()


@pytest.mark.parametrize("make", FAULTS, ids=IDS)
def test_equal_seeds_equal_copies(make, vbpr):
    fault = make(0.3)
    a, b, c = fault.apply(vbpr, 11), fault.apply(vbpr, 11), fault.apply(vbpr, 12)
    assert np.array_equal(_rows(a, "audio"), _rows(b, "audio"))
    assert not np.array_equal(_rows(a, "audio"), _rows(c, "audio"))
    assert fault.trial_record(11) == fault.trial_record(11)


def test_items_are_an_exact_nested_share():
    assert len(chosen_items(5, 40, 0.25)) == 10 and len(chosen_items(5, 40, 1.0)) == 40
    assert len(chosen_items(5, 40, 0.0125)) == 1 and len(chosen_items(5, 40, 0.01)) == 0  # floor(r*n + 0.5)
    assert set(chosen_items(5, 40, 0.1)) <= set(chosen_items(5, 40, 0.5))
    record = MissingModality("audio", 40, 0.25).trial_record(5)
    assert record == {"changed_items": 10, "items": sorted(int(i) for i in chosen_items(5, 40, 0.25))}
    assert len(MissingModality("audio", 100, 0.5).trial_record(0)["items"]) == 20  # ids listed: first 20


def test_zeros_and_mean_fill(vbpr, tiny):
    clean = tiny.features["audio"]
    missing = np.zeros(N_ITEMS, bool)
    missing[MissingModality("audio", N_ITEMS, 0.25).changed(7)] = True
    zeros = _rows(MissingModality("audio", N_ITEMS, 0.25, "zeros").apply(vbpr, 7), "audio")
    assert np.array_equal(zeros[missing], np.zeros((10, 4))) and np.array_equal(zeros[~missing], clean[~missing])
    mean = _rows(MissingModality("audio", N_ITEMS, 0.25, "mean").apply(vbpr, 7), "audio")
    expected = clean[~missing].astype(np.float64).mean(axis=0).astype(np.float32)
    assert np.array_equal(mean[missing], np.tile(expected, (10, 1))) and np.array_equal(mean[~missing], clean[~missing])
    everything = _rows(MissingModality("audio", N_ITEMS, 1.0, "mean").apply(vbpr, 7), "audio")
    assert np.array_equal(everything, np.zeros_like(clean))  # nothing remains present: zero rows


def test_neighbour_fill_by_hand():
    rows = np.array([[9.0, 9.0], [0.0, 1.0], [2.0, 2.0], [4.0, 0.0]])
    other = np.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [2.0, 0.0]])
    missing = np.array([True, False, False, False])
    assert np.allclose(neighbour_fill(rows, other, missing, 1), [[4.0, 0.0]])  # cosine 1 (norm ignored)
    assert np.allclose(neighbour_fill(rows, other, missing, 2), [[2.0, 0.5]])
    assert np.allclose(neighbour_fill(rows, other, missing, 10), [rows[1:].mean(axis=0)])  # k > present: all
    tied = np.array([[1.0, 0.0], [1.0, 0.0], [3.0, 0.0], [0.0, 1.0]])
    assert np.allclose(neighbour_fill(rows, tied, missing, 1), [[0.0, 1.0]])  # tie: lower id (1, not 2)
    assert np.array_equal(neighbour_fill(rows, other, np.ones(4, bool), 2), np.zeros((4, 2)))


def _brute_neighbours(rows, other, missing, k):
    out = rows.astype(np.float64).copy()
    present = [j for j in range(len(rows)) if not missing[j]]
    for i in np.flatnonzero(missing):
        cos = [(-(other[i] @ other[j]) / (np.linalg.norm(other[i]) * np.linalg.norm(other[j])), j) for j in present]
        nearest = [j for _, j in sorted(cos)[:k]]
        out[i] = rows[nearest].astype(np.float64).mean(axis=0)
    return out.astype(np.float32)


@pytest.mark.parametrize("given, used", [(None, "image"), ("text", "text")])
def test_neighbour_fill_uses_another_modality_of_the_model(vbpr, tiny, given, used):
    fault = MissingModality("audio", N_ITEMS, 0.3, "neighbours", 4, given)
    missing = np.zeros(N_ITEMS, bool)
    missing[fault.changed(2)] = True
    got = _rows(fault.apply(vbpr, 2), "audio")
    expected = _brute_neighbours(tiny.features["audio"], tiny.features[used].astype(np.float64), missing, 4)
    assert fault.neighbour_modality_of(vbpr) == used
    assert np.allclose(got, expected, atol=1e-6) and np.array_equal(got[~missing], tiny.features["audio"][~missing])


def test_neighbour_fill_needs_a_second_modality(tiny):
    audio_only = build_model("vbpr", tiny, seed=0, modalities=["audio"])
    with pytest.raises(ConfigError, match="needs a second modality"):
        MissingModality("audio", N_ITEMS, 0.3, "neighbours").apply(audio_only, 0)
    with pytest.raises(ConfigError, match="does not use it"):
        MissingModality("audio", N_ITEMS, 0.3, "neighbours", 3, "video").neighbour_modality_of(audio_only)


def test_swap_changes_exactly_the_chosen_rows_and_keeps_them(vbpr, tiny):
    clean = tiny.features["audio"]
    for rate in (0.05, 0.5, 1.0):
        fault = FeatureSwap("audio", N_ITEMS, rate)
        for seed in range(5):
            rows = _rows(fault.apply(vbpr, seed), "audio")
            changed = np.flatnonzero((rows != clean).any(axis=1))
            assert np.array_equal(changed, fault.changed(seed)) and len(changed) == round(rate * N_ITEMS)
            assert np.array_equal(np.sort(rows[changed], axis=0), np.sort(clean[changed], axis=0))
            assert {tuple(r) for r in rows[changed]} == {tuple(r) for r in clean[changed]}
    one = FeatureSwap("audio", N_ITEMS, 1 / N_ITEMS)  # a single chosen item cannot be deranged
    assert one.trial_record(0)["changed_items"] == 0 and np.array_equal(_rows(one.apply(vbpr, 0), "audio"), clean)


def test_noise_scale_is_sigma_times_rms_entry():
    rng = np.random.default_rng(1)
    n, dim = 3000, 16
    audio = (rng.standard_normal((n, dim)) * 0.5 + 2.0).astype(np.float32)
    users = np.arange(n) % 5
    train = interactions_matrix(users, np.arange(n), 5, n)
    text = rng.standard_normal((n, 3)).astype(np.float32)
    data = InteractionData("big", 5, n, train, train, train, {"audio": audio, "text": text})
    model = build_model("vbpr", data, seed=0)
    scale = np.linalg.norm(audio.astype(np.float64), axis=1).mean() / math.sqrt(dim)
    assert rms_scale(audio) == pytest.approx(scale, rel=1e-12)
    fault = FeatureNoise("audio", n, 0.2)
    delta = _rows(fault.apply(model, 4), "audio").astype(np.float64) - audio
    assert delta.std() == pytest.approx(0.2 * scale, rel=0.02) and abs(delta.mean()) < 0.01 * scale
    assert fault.trial_record(4) == {"changed_items": n, "items": list(range(20))}
    fixed = FeatureNoise("audio", n, 0.2, scale=1.0)
    assert fixed.parameters()["noise_std"] == 0.2
    assert (_rows(fixed.apply(model, 4), "audio") - audio).std() == pytest.approx(0.2, rel=0.02)


@pytest.mark.parametrize("model, modality, reason", [
    ("bprmf", "audio", "uses no item features"),
    ("bm3", "audio", "item features do not enter its scores at inference"),
    ("vbpr-text-image", "audio", "does not use the audio modality"),
    ("freedom", "audio", None),
])
def test_unaffected_reasons(tiny, model, modality, reason):
    name, _, rest = model.partition("-")
    built = build_model(name, tiny, seed=0, modalities=rest.split("-") if rest else None)
    for fault in (MissingModality(modality, N_ITEMS, 0.5), FeatureSwap(modality, N_ITEMS, 0.5),
                  FeatureNoise(modality, N_ITEMS, 0.5)):
        assert fault.unaffected_reason(built) == reason
        if reason is not None:  # nothing to change: the copy scores like the original
            assert torch.equal(_scores(fault.apply(built.eval(), 0)), _scores(built.eval()))


@pytest.mark.parametrize("name", sorted(n for n, c in available_models().items() if c.multimodal))
def test_every_multimodal_model_changes_scores_or_says_why(name, small_data):
    """Through ``set_item_features`` (kNN graphs, caches rebuilt) the fault reaches every model that
    reads features at inference; the others are unaffected by construction, with their scores equal."""
    model = build_model(name, small_data, seed=0).eval()
    users = torch.arange(20)
    fault = MissingModality("image", small_data.n_items, 0.5, "zeros")
    with torch.no_grad():
        clean = model.full_scores(users)
        faulty = fault.apply(model, 1).full_scores(users)
    assert torch.equal(model.full_scores(users), clean)
    if fault.unaffected_reason(model) is None:
        assert not torch.allclose(clean, faulty)
    else:
        assert name == "bm3" and torch.equal(clean, faulty)


def test_bad_parameters_are_config_errors():
    for make, match in ((lambda: MissingModality("audio", 4, 1.5), "--rate"),
                        (lambda: MissingModality("audio", 4, float("nan")), "--rate"),
                        (lambda: MissingModality("audio", 4, 0.1, "median"), "--fill"),
                        (lambda: MissingModality("audio", 4, 0.1, "neighbours", 0), "--neighbour-k"),
                        (lambda: MissingModality("audio", 4, 0.1, "neighbours", 3, "audio"), "must differ"),
                        (lambda: FeatureSwap("audio", 4, -0.1), "--rate"),
                        (lambda: FeatureNoise("audio", 4, -1.0), "--sigma"),
                        (lambda: FeatureNoise("audio", 4, float("inf")), "--sigma")):
        with pytest.raises(ConfigError, match=match):
            make()
    with pytest.raises(DataError, match="invalid modality name"):
        FeatureSwap("Audio", 4, 0.1)


def test_fault_spec_from_flags():
    spec, levels = fault_spec(None, None, "audio", None, "0,0.1", None, None, None, parse_levels)
    assert (spec.fault, spec.modality, levels, spec.strength_flag) == ("noise", "audio", [0.0, 0.1], "--sigma")
    spec, levels = fault_spec("image", None, None, None, None, "neighbours", 5, "text", parse_levels)
    assert (spec.fill, spec.neighbour_k, spec.neighbour_modality, levels) == ("neighbours", 5, "text", [0.1])
    assert spec.perturbations([0.2], 9)[0] == MissingModality("image", 9, 0.2, "neighbours", 5, "text")


# --- the CLI on a three-modality synthetic set ---------------------------------------------------
@pytest.fixture(scope="module")
def tri(tmp_path_factory, small_data):
    """The planted dataset with image, text and audio files, and 1-epoch runs: vbpr (+ MG twin),
    freedom on image+text, bm3, bprmf, and vbpr on audio alone."""
    root = tmp_path_factory.mktemp("modality")
    write_three_modal(root / "data", small_data)
    ck = root / "ck"
    for args in (["--model", "vbpr"], ["--model", "vbpr", "--mg"], ["--model", "freedom", "--modalities", "image,text"],
                 ["--model", "bm3"], ["--model", "bprmf"], ["--model", "vbpr", "--modalities", "audio", "--name",
                                                            "vbpr-audio"]):
        assert _cli("train", *args, "--dataset", "tri", "--data-dir", root / "data", "--epochs", "1", "-q",
                    "--threads", "1", "--checkpoint-dir", ck) == 0
    return root, ck



def _perturb(capsys, ck, runs, *flags, report_dir):
    return run_cli(capsys, "perturb", "modality", *(ck / r for r in runs), *flags, "--report-dir", report_dir,
                   "-q", "--threads", "1")


ALL_RUNS = ("vbpr-tri", "vbpr-tri-mg", "freedom-tri", "bm3-tri", "bprmf-tri")


@pytest.fixture(scope="module")
def missing_report(tri, tmp_path_factory):
    """``--missing audio --fill neighbours`` at rates 0 and 0.2 over every run (CSV and PNG too)."""
    _, ck = tri
    out = tmp_path_factory.mktemp("reports")
    assert _cli("perturb", "modality", *(ck / r for r in ALL_RUNS), "--missing", "audio", "--rate", "0,0.2",
                "--fill", "neighbours", "--repeats", "2", "--report-dir", out, "--csv", "--plot", "-q",
                "--threads", "1") == 0
    (path,) = out.glob("*.json")
    return path


def test_missing_report_end_to_end(missing_report):
    assert {p.suffix for p in missing_report.parent.iterdir()} == {".json", ".csv", ".png"}
    report = json.loads(missing_report.read_text())
    settings = report["settings"]
    assert report["kind"] == "modality" and settings["strength_name"] == "rate" and settings["levels"] == [0.0, 0.2]
    assert settings["fault"] == "missing" and settings["modality"] == "audio" and settings["fill"] == "neighbours"
    assert settings["title"] == "modality: missing audio (fill neighbours)" and "fill_rule" in settings
    entries = {e["name"]: e for e in report["checkpoints"]}
    assert entries["bprmf-tri"]["unaffected"] == "unaffected by construction: uses no item features"
    assert entries["bm3-tri"]["unaffected"].endswith("item features do not enter its scores at inference")
    assert entries["freedom-tri"]["unaffected"].endswith("does not use the audio modality")
    assert not any(entries[n]["levels"] for n in ("bprmf-tri", "bm3-tri", "freedom-tri"))
    vbpr, twin = entries["vbpr-tri"], entries["vbpr-tri-mg"]
    zero, level = vbpr["levels"]
    assert all(t["metrics"] == vbpr["clean"] for t in zero["trials"])  # rate 0: exactly the clean metrics
    assert [t["changed_items"] for t in level["trials"]] == [30, 30] and level["neighbour_modality"] == "image"
    assert [t["items"] for t in level["trials"]] == [t["items"] for t in twin["levels"][1]["trials"]]
    assert any(t["metrics"] != vbpr["clean"] for t in level["trials"])
    assert report["mg_gains"] and "vbpr-tri-mg" in {row["mg"] for row in report["mg_gains"]}


def test_compare_renders_modality_reports(missing_report, tri, tmp_path, capsys, monkeypatch):
    _, ck = tri
    code, out, err = _perturb(capsys, ck, ["vbpr-tri", "vbpr-tri-mg"], "--noise", "audio", "--sigma", "0.5",
                              "--repeats", "1", report_dir=tmp_path)
    assert code == 0, err
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(capsys, "compare", missing_report, tmp_path)
    assert code == 0, err
    assert "modality: missing audio (fill neighbours) on tri" in out
    assert "modality: noise audio (Gaussian noise on rows) on tri" in out  # another fault: its own table
    assert re.search(r"┃\s+rate\s+┃", out) and re.search(r"┃\s+σ\s+┃", out)  # strength columns by name
    assert "unaffected by construction" in out and "Mirror Gradient gain" in out
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run_cli(capsys, "compare", missing_report)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80


def test_reports_are_kind_agnostic(missing_report):
    from robustrec.reports import ReportError, validate

    report = json.loads(missing_report.read_text())
    assert validate({**report, "kind": "some-future-kind"})["kind"] == "some-future-kind"
    with pytest.raises(ReportError, match="non-empty string"):
        validate({**report, "kind": ""})


def test_swap_and_noise_end_to_end(tri, tmp_path, capsys, monkeypatch):
    _, ck = tri
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = _perturb(capsys, ck, ["vbpr-tri", "bm3-tri"], "--swap", "text", "--rate", "0.5",
                              "--repeats", "2", "--seed", "4", report_dir=tmp_path / "swap")
    assert code == 0, err
    assert "rate 0.5: items changed per trial [75, 75] (of 150 items)" in out
    (path,) = (tmp_path / "swap").glob("modality-swap-text-tri-*.json")
    report = json.loads(path.read_text())
    assert report["settings"]["fault"] == "swap" and report["settings"]["seed"] == 4
    code, out, err = _perturb(capsys, ck, ["vbpr-tri"], "--noise", "image", "--sigma", "0,0.3", "--repeats", "2",
                              report_dir=tmp_path / "noise")
    assert code == 0, err
    (path,) = (tmp_path / "noise").glob("*.json")
    settings = json.loads(path.read_text())["settings"]
    image = np.load(tri[0] / "data" / "tri" / "image_feat.npy").astype(np.float64)
    scale = np.linalg.norm(image, axis=1).mean() / math.sqrt(image.shape[1])
    assert settings["strength_name"] == "sigma" and settings["scale"] == pytest.approx(scale, rel=1e-9)
    assert settings["parameters"][1]["noise_std"] == pytest.approx(0.3 * scale, rel=1e-9)
    assert f"{scale:.4g}" in out and "σ" in out


@pytest.mark.parametrize("runs, flags, fragment", [
    (["vbpr-tri"], ["--missing", "video"], "unknown modality 'video'; the checkpoints' models use image, text, audio"),
    (["freedom-tri", "bprmf-tri"], ["--missing", "audio"], "no given checkpoint uses the audio modality"),
    (["bprmf-tri"], ["--swap", "text"], "models use no item features"),
    (["vbpr-tri"], ["--missing", "audio", "--rate", "1.5"], "--rate must be in [0, 1]"),
    (["vbpr-tri"], ["--swap", "audio", "--rate", "-0.1"], "--rate must be in [0, 1]"),
    (["vbpr-tri"], ["--noise", "audio", "--sigma", "-1"], "--sigma must be a finite number >= 0"),
    (["vbpr-tri"], ["--noise", "audio", "--sigma", "0.1,x"], "--sigma must be a number"),
    (["vbpr-audio"], ["--missing", "audio", "--fill", "neighbours"], "needs a second modality"),
    (["vbpr-tri"], ["--missing", "audio", "--fill", "neighbours", "--neighbour-modality", "video"], "does not use it"),
    (["vbpr-tri"], [], "give exactly one of --missing, --swap or --noise"),
    (["vbpr-tri"], ["--missing", "audio", "--swap", "text"], "got --missing and --swap"),
    (["vbpr-tri"], ["--missing", "audio", "--fill", "neighbours", "--neighbour-k", "0"], "--neighbour-k must be >= 1"),
    (["vbpr-tri"], ["--missing", "audio", "--fill", "median"], "--fill must be one of zeros, mean, neighbours"),
    (["vbpr-tri"], ["--swap", "audio", "--fill", "zeros"], "--fill applies to --missing only"),
    (["vbpr-tri"], ["--missing", "audio", "--neighbour-k", "3"], "applies to --fill neighbours only"),
    (["vbpr-tri"], ["--noise", "audio", "--rate", "0.1"], "--noise takes --sigma"),
    (["vbpr-tri"], ["--missing", "audio", "--sigma", "0.1"], "--missing takes --rate"),
    (["vbpr-tri"], ["--missing", "Audio"], "invalid modality name 'Audio'"),
    (["vbpr-tri"], ["--missing", "audio", "--repeats", "0"], "--repeats must be >= 1"),
])
def test_bad_input_is_one_line_and_writes_nothing(tri, tmp_path, capsys, runs, flags, fragment):
    _, ck = tri
    assert_one_line_error(*_perturb(capsys, ck, runs, *flags, report_dir=tmp_path / "r"), fragment)
    assert not (tmp_path / "r").exists()


def test_help_states_the_fill_rules(capsys):
    code, out, _ = run_cli(capsys, "perturb", "modality", "--help")
    text = " ".join(out.split())
    assert code == 0 and "--neighbour-modality" in text and "Malitesta" in text and "DGMRec" in text
    assert "mean row of the items not missing" in text and "cosine" in text


# --- real content: lfm2k text (MiniLM) + audio (VGGish) --------------------------------------------
def test_lfm2k_missing_audio_end_to_end(shared_datasets, tmp_path, capsys):
    ck = tmp_path / "ck"
    code, _, err = run_cli(capsys, "train", "--model", "vbpr", "--dataset", "lfm2k", "--data-dir", shared_datasets,
                           "--modalities", "text,audio", "--epochs", "1", "-q", "--threads", "1",
                           "--checkpoint-dir", ck)
    assert code == 0, err
    code, out, err = run_cli(capsys, "perturb", "modality", ck / "vbpr-lfm2k", "--missing", "audio", "--rate", "0.5",
                             "--fill", "mean", "--repeats", "2", "--report-dir", tmp_path / "r", "-q",
                             "--threads", "1")
    assert code == 0, err
    (path,) = (tmp_path / "r").glob("modality-missing-audio-lfm2k-*.json")
    report = json.loads(path.read_text())
    assert not [e["name"] for e in report["checkpoints"] if e.get("unaffected")]
    (level,) = report["checkpoints"][0]["levels"]
    drop = level["summary"]["recall@5"]["drop_pct"]
    assert drop is not None and math.isfinite(drop)
    assert [t["changed_items"] for t in level["trials"]] == [713, 713]  # floor(0.5 * 1425 + 0.5)
