"""AMR adversarial training and the FGSM/PGD stress test (`perturb adversarial`)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cli_helpers import cli_code, run_cli
from robustrec.errors import ConfigError
from robustrec.evaluation import full_ranking
from robustrec.flatness import training_loss, training_triplets
from robustrec.models import available_models, build_model, get_model_class
from robustrec.perturbations.adversarial import AdversarialPerturbation, mean_row_norm, row_step
from robustrec.studies.adversarial_study import check_gradient_path
from robustrec.training import TrainConfig, Trainer
from robustrec.training.adversarial import AdversarialFeatureLoss, supports_amr


@pytest.fixture(scope="module")
def vbpr(small_data):
    model = build_model("vbpr", small_data, seed=1)
    Trainer(TrainConfig(model="vbpr", epochs=3, batch_size=256, lr=0.01)).fit(model, small_data)
    return model


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _features(model):
    return {m: x.detach().clone() for m, x in model.features().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the attack -----------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["features", "embeddings"])
def test_fgsm_direction_raises_the_loss_more_than_a_random_one_of_the_same_norms(vbpr, small_data, target):
    seed, eps = 3, 0.2
    attack = AdversarialPerturbation(eps, target, data=small_data)
    attacked = attack.apply(vbpr, seed)
    record = attack.trial_record(seed)
    triplets = training_triplets(small_data, attack.samples, seed)
    clean = training_loss(vbpr, triplets)
    assert record["loss_clean"] == pytest.approx(clean) and record["loss_rise"] > 0
    assert training_loss(attacked, triplets) == pytest.approx(record["loss_attacked"])
    # a random direction with the same norm on every row the attack moved
    generator = torch.Generator().manual_seed(0)
    if target == "features":
        shifted = {}
        for m, x in vbpr.features().items():
            delta = attacked.features()[m] - x
            moved = delta.norm(dim=1) > 0
            noise = torch.randn(x.shape, generator=generator)
            shifted[m] = (x + torch.where(moved[:, None], row_step(noise, eps * mean_row_norm(x)), 0)).numpy()
        random = attack.apply(vbpr, seed)  # a copy; only its features are replaced below
        random.set_item_features(shifted)
    else:
        random = AdversarialPerturbation(0.0, target, data=small_data).apply(vbpr, seed)
        with torch.no_grad():
            for name, table in random.embedding_tables().items():
                noise = torch.randn(table.shape, generator=generator)
                table.copy_(vbpr.embedding_tables()[name] + row_step(noise, eps * mean_row_norm(table)))
    random_rise = training_loss(random, triplets) - clean
    assert record["loss_rise"] > 3 * abs(random_rise)


@pytest.mark.parametrize("target", ["features", "embeddings"])
def test_fgsm_moves_each_row_by_exactly_the_budget(vbpr, small_data, target):
    eps = 0.1
    attacked = AdversarialPerturbation(eps, target, data=small_data).apply(vbpr, 1)
    pairs = ([(vbpr.features()[m], attacked.features()[m]) for m in vbpr.feature_names] if target == "features"
             else [(t, attacked.embedding_tables()[n]) for n, t in vbpr.embedding_tables().items()])
    for clean, moved in pairs:
        norms = (moved - clean).detach().norm(dim=1)
        changed = norms > 0
        assert changed.sum() > 0
        assert torch.allclose(norms[changed], torch.full_like(norms[changed], eps * mean_row_norm(clean)), rtol=1e-3)


@pytest.mark.parametrize("target", ["features", "embeddings"])
def test_zero_budget_is_the_identity_bitwise(vbpr, small_data, target):
    copy = AdversarialPerturbation(0.0, target, steps=3, data=small_data).apply(vbpr, 7)
    assert _same(_state(copy), _state(vbpr)) and _same(_features(copy), _features(vbpr))
    clean, again = full_ranking(vbpr, small_data), full_ranking(copy, small_data)
    for key, values in clean.per_user.items():
        assert np.array_equal(values, again.per_user[key]), key


@pytest.mark.parametrize("target, steps", [("features", 1), ("features", 4), ("embeddings", 3)])
def test_the_input_model_is_never_mutated(vbpr, small_data, target, steps):
    weights, features = _state(vbpr), _features(vbpr)
    clean = full_ranking(vbpr, small_data).summary()
    copy = AdversarialPerturbation(0.5, target, steps=steps, data=small_data).apply(vbpr, 2)
    assert not _same(_state(copy), weights) or not _same(_features(copy), features)
    assert _same(_state(vbpr), weights) and _same(_features(vbpr), features)
    assert full_ranking(vbpr, small_data).summary() == clean


@pytest.mark.parametrize("target", ["features", "embeddings"])
def test_pgd_reaches_at_least_the_fgsm_loss_within_the_same_budget(vbpr, small_data, target):
    eps, seed = 0.3, 4
    fgsm = AdversarialPerturbation(eps, target, steps=1, data=small_data)
    pgd = AdversarialPerturbation(eps, target, steps=8, data=small_data)
    fgsm.apply(vbpr, seed)
    attacked = pgd.apply(vbpr, seed)
    assert pgd.trial_record(seed)["loss_attacked"] >= fgsm.trial_record(seed)["loss_attacked"] - 1e-6
    if target == "features":  # projected: no row leaves its ball
        for m, x in vbpr.features().items():
            norms = (attacked.features()[m] - x).norm(dim=1)
            assert float(norms.max()) <= eps * mean_row_norm(x) * (1 + 1e-4)


def test_equal_seeds_equal_attacks_other_seeds_other_samples(vbpr, small_data):
    attack = AdversarialPerturbation(0.2, "features", data=small_data)
    a, b, c = attack.apply(vbpr, 11), attack.apply(vbpr, 11), attack.apply(vbpr, 12)
    assert _same(_features(a), _features(b))
    assert not _same(_features(a), _features(c))


def test_targets_a_model_does_not_have_are_unaffected_by_construction(small_data):
    bprmf = build_model("bprmf", small_data, seed=0)
    assert AdversarialPerturbation(0.1, "features", data=small_data).unaffected_reason(bprmf) == "uses no item features"
    assert AdversarialPerturbation(0.1, "embeddings", data=small_data).unaffected_reason(bprmf) is None
    bm3 = build_model("bm3", small_data, seed=0)
    assert "not enter its scores" in AdversarialPerturbation(0.1, "features", data=small_data).unaffected_reason(bm3)


def test_a_model_without_a_feature_gradient_is_refused(small_data):
    freedom = build_model("freedom", small_data, seed=0)  # features only shape its kNN graph
    checkpoint = SimpleNamespace(model=freedom, run=SimpleNamespace(name="f"))
    with pytest.raises(ConfigError, match="no gradient w.r.t. its item features"):
        check_gradient_path([checkpoint], small_data, AdversarialPerturbation(0.1, "features", data=small_data))
    check_gradient_path([checkpoint], small_data, AdversarialPerturbation(0.1, "embeddings", data=small_data))


@pytest.mark.parametrize("eps, steps, target, fragment", [
    (-0.1, 1, "features", "--eps must be a finite number >= 0"),
    (float("nan"), 1, "features", "--eps must be"),
    (0.1, 0, "features", "--steps must be >= 1"),
    (0.1, 1, "weights", "--target must be one of features, embeddings"),
])
def test_bad_attack_parameters(eps, steps, target, fragment):
    with pytest.raises(ConfigError, match=fragment):
        AdversarialPerturbation(eps, target, steps)


# --- AMR training ---------------------------------------------------------------------------
def _batch(data, n=256, seed=0):
    return training_triplets(data, n, seed)


def test_amr_loss_is_clean_plus_reg_times_the_loss_at_the_fgsm_features(vbpr, small_data):
    users, pos, neg = _batch(small_data)
    before = _features(vbpr)
    clean = float(vbpr.loss(users, pos, neg).detach())
    zero = AdversarialFeatureLoss(eps=0.0, reg=0.5).bind(vbpr)
    assert float(zero.loss(users, pos, neg).detach()) == pytest.approx(1.5 * clean, rel=1e-5)
    bound = AdversarialFeatureLoss(eps=0.2, reg=1.0).bind(vbpr)
    _, deltas = bound.perturbation(users, pos, neg)
    rows = torch.unique(torch.cat([pos, neg]))
    for m, delta in deltas.items():  # only the batch's items move, each by ε·r̄
        norms = delta.norm(dim=1)
        assert torch.equal(torch.nonzero(norms).flatten(), rows)
        assert torch.allclose(norms[rows], torch.full((len(rows),), 0.2 * mean_row_norm(vbpr.features()[m])),
                              rtol=1e-4)
    adversarial = float(bound.loss(users, pos, neg).detach()) - clean
    assert adversarial > clean  # the loss at the perturbed features is higher than the clean one
    assert _same(_features(vbpr), before)  # the model's features are put back


def test_amr_with_zero_weight_trains_exactly_like_plain(small_data):
    runs = []
    for config in (TrainConfig(model="vbpr", epochs=2, batch_size=256, lr=0.01),
                   TrainConfig(model="vbpr", epochs=2, batch_size=256, lr=0.01, adversarial="amr", adv_reg=0.0)):
        model = build_model("vbpr", small_data, seed=3)
        Trainer(config).fit(model, small_data)
        runs.append(_state(model))
    assert _same(*runs)


def test_amr_changes_training(small_data):
    runs = []
    for adversarial in ("none", "amr"):
        model = build_model("vbpr", small_data, seed=3)
        Trainer(TrainConfig(model="vbpr", epochs=1, batch_size=256, lr=0.01, adversarial=adversarial)).fit(
            model, small_data)
        runs.append(_state(model))
    assert not _same(*runs)


MULTIMODAL = [name for name, cls in available_models().items() if cls.multimodal]


@pytest.mark.parametrize("name", MULTIMODAL)
def test_amr_supports_exactly_the_models_whose_loss_reads_the_features(small_data, name):
    model = build_model(name, small_data, seed=0)
    users, pos, neg = _batch(small_data, 64)
    if supports_amr(get_model_class(name)):
        _, deltas = AdversarialFeatureLoss(0.1, 1.0).bind(model).perturbation(users, pos, neg)
        assert all(bool(d.any()) for d in deltas.values())
    else:
        with pytest.raises(ConfigError, match="AMR supports vbpr|AMR supports .*vbpr"):
            AdversarialFeatureLoss(0.1, 1.0).bind(model)


@pytest.mark.parametrize("fields, fragment", [
    ({"adversarial": "fgsm"}, "unknown --adversarial 'fgsm'"),
    ({"adversarial": "amr", "adv_eps": -1.0}, "--adv-eps must be a finite number >= 0"),
    ({"adversarial": "amr", "adv_reg": -0.5}, "--adv-reg must be a finite number >= 0"),
    ({"adversarial": "amr", "model": "lightgcn"}, "model 'lightgcn' uses no item features"),
    ({"adversarial": "amr", "model": "freedom"}, "does not read its item features in its training loss"),
])
def test_bad_amr_configs(fields, fragment):
    with pytest.raises(ConfigError, match=fragment):
        TrainConfig(**{"model": "vbpr", **fields}).validate()


# --- CLI ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def amr_runs(tmp_path_factory, synthetic_dir, synthetic_run):
    import shutil

    ck = tmp_path_factory.mktemp("amr") / "ck"
    for extra in ([], ["--adversarial", "amr"], ["--adversarial", "amr", "--mg"]):
        assert cli_code("train", "--model", "vbpr", "--epochs", "2", "-q", "--threads", "1", "--data-dir",
                        synthetic_dir, "--checkpoint-dir", ck, *extra) == 0
    shutil.copytree(synthetic_run("bprmf"), ck / "bprmf-synthetic")  # the session's ID-only run beside them
    return ck


def test_amr_runs_record_their_config_and_reload(amr_runs, capsys):
    from robustrec.checkpoints import load_model, run_config

    for name, mg in (("vbpr-synthetic-amr", False), ("vbpr-synthetic-amr-mg", True)):
        config = json.loads((amr_runs / name / "config.json").read_text())
        assert (config["adversarial"], config["adv_eps"], config["adv_reg"], config["mg"]) == ("amr", 0.1, 1.0, mg)
        model, _, run = load_model(amr_runs / name)
        assert run_config(run).adversarial == "amr" and model.name == "vbpr"
        code, out, err = run_cli(capsys, "evaluate", amr_runs / name)
        assert code == 0, err
    plain = json.loads((amr_runs / "vbpr-synthetic" / "config.json").read_text())
    assert plain["adversarial"] == "none"


@pytest.mark.parametrize("args, name, label", [
    (["--adversarial", "amr", "--adv-eps", "0.3", "--adv-reg", "0.5"], "vbpr-synthetic-amr",
     "plain + AMR (eps 0.3, reg 0.5) steps"),
    (["--adversarial", "amr", "--step", "sam"], "vbpr-synthetic-sam-amr", "SAM + AMR (eps 0.1, reg 1) steps"),
    (["--adversarial", "amr", "--step", "sgbd"], "vbpr-synthetic-sgbd-amr", "SGBD (sharpness-aware Mirror Gradient) + AMR"),
])
def test_amr_composes_with_steps_on_the_cli(capsys, tmp_path, synthetic_dir, args, name, label):
    code, out, err = run_cli(capsys, "train", "--model", "vbpr", "--epochs", "1", "-q", "--threads", "1",
                             "--data-dir", synthetic_dir, "--checkpoint-dir", tmp_path, *args)
    assert code == 0, err
    assert label in " ".join(out.split())
    assert json.loads((tmp_path / name / "config.json").read_text())["adversarial"] == "amr"


def test_perturb_adversarial_report(amr_runs, tmp_path, capsys):
    runs = [amr_runs / n for n in ("vbpr-synthetic", "vbpr-synthetic-amr", "vbpr-synthetic-amr-mg", "bprmf-synthetic")]
    code, out, err = run_cli(capsys, "perturb", "adversarial", *runs, "--eps", "0,0.2", "--report-dir",
                             tmp_path / "rep", "-q", "--threads", "1")
    assert code == 0, err
    assert "worst case, not a random draw" in " ".join(out.split())
    [path] = (tmp_path / "rep").glob("adversarial-features-synthetic-*.json")
    report = json.loads(path.read_text())
    settings = report["settings"]
    assert report["kind"] == "adversarial" and settings["worst_case"] is True and settings["attack"] == "fgsm"
    assert settings["levels"] == [0.0, 0.2] and settings["repeats"] == 1
    entries = {e["name"]: e for e in report["checkpoints"]}
    assert entries["bprmf-synthetic"]["unaffected"] == "unaffected by construction: uses no item features"
    for name in ("vbpr-synthetic", "vbpr-synthetic-amr", "vbpr-synthetic-amr-mg"):
        zero, attacked = entries[name]["levels"]
        assert zero["summary"]["recall@5"]["drop_pct"] == 0
        assert attacked["flatness"]["loss_rise"]["mean"] > 0 and attacked["trials"][0]["loss_rise"] > 0
        assert attacked["summary"]["recall@20"]["mean"] < entries[name]["clean"]["recall@20"]
    # the AMR+MG run is paired with its AMR baseline, not with the plain run
    pairs = {(row["baseline"], row["mg"]) for row in report["mg_gains"]}
    assert pairs == {("vbpr-synthetic-amr", "vbpr-synthetic-amr-mg")}


def test_perturb_adversarial_pgd_on_embeddings(amr_runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, "perturb", "adversarial", amr_runs / "bprmf-synthetic", "--target",
                             "embeddings", "--steps", "3", "--eps", "0.1", "--repeats", "2", "--report-dir",
                             tmp_path / "rep", "-q", "--threads", "1")
    assert code == 0, err
    [path] = (tmp_path / "rep").glob("adversarial-embeddings-synthetic-*.json")
    report = json.loads(path.read_text())
    assert report["settings"]["attack"] == "pgd" and report["settings"]["steps"] == 3
    trials = report["checkpoints"][0]["levels"][0]["trials"]
    assert len(trials) == 2 and trials[0]["seed"] != trials[1]["seed"]
    assert all(t["loss_rise"] > 0 and t["perturbed_rows"]["item"] > 0 for t in trials)


def test_features_reaching_the_loss_through_a_cache_are_attacked_through_it(small_data):
    slmrec = build_model("slmrec", small_data, seed=0)  # its loss reads normalised copies of the features
    assert not slmrec.loss_reads_features
    attack = AdversarialPerturbation(0.2, "features", data=small_data, samples=256)
    attacked = attack.apply(slmrec, 0)
    assert attack.trial_record(0)["loss_rise"] > 0
    assert not torch.equal(attacked.normed["image"], slmrec.normed["image"])  # rebuilt from the new rows
