"""Trainer behaviour: early stopping, best-weight restore, optimizers, checkpoints."""

import json

import pytest
import torch

from robustrec.checkpoints import load_model, read_run, save_run
from robustrec.errors import CheckpointError, ConfigError
from robustrec.models import build_model
from robustrec.training import Trainer, TrainConfig, TrainerCallback


def test_early_stopping_restores_best_epoch_weights(small_data):
    snapshots = {}

    class Keep(TrainerCallback):
        def on_epoch_end(self, record):
            snapshots[record.epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    model = build_model("bprmf", small_data)
    config = TrainConfig(model="bprmf", epochs=40, patience=3, lr=0.05, batch_size=256)
    result = Trainer(config, [Keep()]).fit(model, small_data)
    best = max(result.history, key=lambda r: r.valid)
    assert result.best_epoch == best.epoch
    assert result.history[-1].epoch - result.best_epoch == 3 or result.history[-1].epoch == 40
    for key, value in model.state_dict().items():
        assert torch.equal(value, snapshots[result.best_epoch][key])
    assert result.valid["recall@20"] == pytest.approx(best.valid)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adagrad"])
def test_every_optimizer_trains_with_mg(small_data, optimizer):
    model = build_model("bprmf", small_data)
    config = TrainConfig(model="bprmf", optimizer=optimizer, epochs=2, mg=True, batch_size=512, lr=0.01)
    result = Trainer(config).fit(model, small_data)
    assert len(result.history) == 2 and result.history[0].loss > 0


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(optimizer="lbfgs"), "unknown optimizer"),
    (dict(epochs=0), "epochs"),
    (dict(patience=0), "patience"),
    (dict(lr=0), "lr"),
    (dict(mg=True, alpha1=0.1, alpha2=0.5), "alpha1 > alpha2"),
    (dict(mg=True, beta=0), "beta"),
    (dict(valid_metric="auc@20"), "valid-metric"),
])
def test_bad_config_rejected(small_data, kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        Trainer(TrainConfig(**kwargs)).fit(build_model("bprmf", small_data), small_data)


def test_unknown_model_and_params(small_data):
    with pytest.raises(ConfigError, match="did you mean 'lightgcn'"):
        build_model("lightgnc", small_data)
    with pytest.raises(ConfigError, match="unknown lightgcn parameter"):
        build_model("lightgcn", small_data, {"layers": "3"})
    with pytest.raises(ConfigError, match="must be int"):
        build_model("lightgcn", small_data, {"n_layers": "three"})
    assert build_model("lightgcn", small_data, {"n_layers": "3"}).params.n_layers == 3


def _trained_run(tmp_path, data):
    model = build_model("bprmf", data)
    config = TrainConfig(model="bprmf", epochs=2, batch_size=512)
    result = Trainer(config).fit(model, data)
    return save_run(tmp_path / "run", model, config, data, result), model, config, result


def test_checkpoint_refuses_overwrite_and_detects_corruption(tmp_path, small_data):
    run_dir, model, config, result = _trained_run(tmp_path, small_data)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temp folder left behind
    with pytest.raises(CheckpointError, match="already exists"):
        save_run(run_dir, model, config, small_data, result)
    (run_dir / "metrics.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_run(run_dir)


def test_checkpoint_rejects_other_data_and_garbage_weights(tmp_path, small_data):
    from robustrec.data.synthetic import SyntheticSpec, make_synthetic

    run_dir, *_ = _trained_run(tmp_path, small_data)
    other = make_synthetic(SyntheticSpec(n_users=300, n_items=150, seed=99)).data
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_model(run_dir, data=other)
    (run_dir / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_model(run_dir, data=small_data)


def test_checkpoint_config_is_json_and_complete(tmp_path, small_data):
    run_dir, *_ = _trained_run(tmp_path, small_data)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "bprmf" and config["mg"] is False and "alpha1" in config
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) == {"best_epoch", "valid", "test"} and "ndcg@50" in metrics["test"]


def test_adam_is_fused_and_matches_the_reference_update():
    from robustrec.training.optim import build_optimizer

    torch.manual_seed(0)
    start = torch.randn(50, 8)
    params = [torch.nn.Parameter(start.clone()) for _ in range(2)]
    fused = build_optimizer("adam", [params[0]], lr=1e-2, weight_decay=1e-3)
    plain = torch.optim.Adam([params[1]], lr=1e-2, weight_decay=1e-3, fused=False)
    assert fused.defaults["fused"] is True
    for step in range(5):
        target = torch.randn(50, 8, generator=torch.Generator().manual_seed(step))
        for p, opt in zip(params, (fused, plain)):
            opt.zero_grad()
            ((p - target) ** 2).sum().backward()
            opt.step()
    assert not torch.equal(params[0].detach(), start)
    torch.testing.assert_close(params[0], params[1], rtol=1e-5, atol=1e-6)


def test_train_config_separates_the_model_spec_from_training():
    from robustrec.training import TrainConfig
    from robustrec.training.config import MODEL_SPEC_FIELDS

    plain = TrainConfig(model="vbpr", dataset="d", model_params={"reg_weight": "1e-3"}, modalities=["text"])
    mg = TrainConfig(model="vbpr", dataset="d", model_params={"reg_weight": "1e-3"}, modalities=["text"], mg=True,
                     seed=3, lr=0.01)
    assert plain.model_spec == mg.model_spec  # same model, trained differently
    assert plain.training_settings() != mg.training_settings()
    assert not set(MODEL_SPEC_FIELDS) & set(mg.training_settings())
    assert TrainConfig(model="vbpr", model_params={"reg_weight": "1e-4"}).model_spec != plain.model_spec
