"""Resumable training: a fit interrupted after epoch k and resumed ends bitwise where an
uninterrupted fit ends (weights, metrics, history, early stopping)."""

import json

import pytest
import torch

from robustrec.errors import CheckpointError
from robustrec.models import build_model
from robustrec.training import Trainer, TrainConfig, TrainerCallback
from robustrec.training.state import STATE_JSON, has_state, load_state, read_state_info

from resume_helpers import KillAfter, assert_same_fit


class Seen(TrainerCallback):
    def __init__(self) -> None:
        self.resumed_with, self.epochs = None, []

    def on_resume(self, history):
        self.resumed_with = [r.epoch for r in history]

    def on_epoch_end(self, record):
        self.epochs.append(record.epoch)


def _fit(config, data, state_dir=None, callbacks=()):
    model = build_model(config.model, data, config.model_params, seed=config.seed)
    return model, Trainer(config, list(callbacks)).fit(model, data, state_dir)


def _interrupted_then_resumed(config, data, state_dir, k):
    with pytest.raises(KeyboardInterrupt):
        _fit(config, data, state_dir, [KillAfter(k)])
    assert read_state_info(state_dir)["epoch"] == k
    seen = Seen()
    model, result = _fit(config, data, state_dir, [seen])
    assert seen.resumed_with == list(range(1, k + 1))
    assert seen.epochs == list(range(k + 1, len(result.history) + 1))
    return model, result


CASES = {
    "bprmf-adam-mg": dict(model="bprmf", mg=True),
    "bprmf-sgd-mg-literal": dict(model="bprmf", optimizer="sgd", mg=True, mg_form="literal", lr=0.05),
    "bprmf-rmsprop-mg": dict(model="bprmf", optimizer="rmsprop", mg=True, beta=2),
    "bprmf-adagrad-sam-mg": dict(model="bprmf", optimizer="adagrad", mg=True, sam_rho=0.05),
    # randomness outside the sampler: edge pruning and a pre_epoch counter; dropout and edge drop
    # (every model, plain steps: test_model_contract.py::test_resume_is_bitwise)
    "layergcn-mg": dict(model="layergcn", mg=True),
    "selfcf-mg": dict(model="selfcf", mg=True),
}


@pytest.mark.parametrize("case", CASES)
def test_interrupted_and_resumed_fit_is_bitwise_equal(case, small_data, tmp_path):
    config = TrainConfig(**{"epochs": 3, "batch_size": 256, "lr": 0.01, "patience": 100, **CASES[case]})
    uninterrupted = _fit(config, small_data)
    resumed = _interrupted_then_resumed(config, small_data, tmp_path / "state", k=1)
    assert_same_fit(uninterrupted, resumed)


def test_early_stopping_state_survives_resume(small_data, tmp_path):
    config = TrainConfig(model="bprmf", epochs=40, patience=3, lr=0.05, batch_size=256)
    uninterrupted = _fit(config, small_data)
    result = uninterrupted[1]
    assert result.stopped_early and result.best_epoch > 1
    # killed with the patience counter part-way: the best weights are no longer the current ones
    k = result.best_epoch + 1
    state_dir = tmp_path / "state"
    resumed = _interrupted_then_resumed(config, small_data, state_dir, k)
    assert_same_fit(uninterrupted, resumed)
    saved = load_state(state_dir)  # the state of the last epoch of the resumed fit
    assert (saved.best_epoch, saved.epoch) == (result.best_epoch, result.best_epoch + 3)
    assert saved.best is not None and saved.best_value == pytest.approx(result.valid["recall@20"])


def test_killed_after_the_last_epoch_resumes_to_the_same_result(small_data, tmp_path):
    """State saved, but the process died before the run was written: nothing left to train."""
    config = TrainConfig(model="bprmf", epochs=3, batch_size=256, lr=0.01)
    uninterrupted = _fit(config, small_data)
    assert_same_fit(uninterrupted, _interrupted_then_resumed(config, small_data, tmp_path / "s", k=3))


def test_state_folder_holds_safetensors_and_json_only(small_data, tmp_path):
    state_dir = tmp_path / "state"
    config = TrainConfig(model="layergcn", epochs=2, batch_size=256, lr=0.01)
    _fit(config, small_data, state_dir)
    assert sorted(p.name for p in state_dir.iterdir()) == ["state-00002.safetensors", STATE_JSON]
    info = json.loads((state_dir / STATE_JSON).read_text())
    assert info["epoch"] == 2 and info["config"]["model"] == "layergcn"
    assert info["fingerprint"] == small_data.fingerprint()
    assert info["model_state"] == {"epochs_sampled": 2}
    assert info["sampler_rng"]["bit_generator"] == "PCG64"
    saved = load_state(state_dir)
    assert saved.torch_rng.dtype == torch.uint8
    assert saved.optimizer["state"][0]["step"].dtype == torch.float32  # fused Adam's step tensor


def test_resume_with_other_settings_or_data_is_refused(small_data, small_world, tmp_path):
    state_dir = tmp_path / "state"
    config = TrainConfig(model="bprmf", epochs=3, batch_size=256, lr=0.01)
    with pytest.raises(KeyboardInterrupt):
        _fit(config, small_data, state_dir, [KillAfter(1)])
    other = TrainConfig(model="bprmf", epochs=3, batch_size=256, lr=0.02, mg=True)
    with pytest.raises(CheckpointError, match=r"lr 0\.01 → 0\.02; mg False → True.*--no-resume"):
        _fit(other, small_data, state_dir)
    edited = small_data.with_features({m: f + 1 for m, f in small_data.features.items()})
    with pytest.raises(CheckpointError, match="data fingerprint"):
        _fit(config, edited, state_dir)
    moved = TrainConfig(model="bprmf", epochs=3, batch_size=256, lr=0.01, data_dir="elsewhere")
    _fit(moved, small_data, state_dir)  # where the data lives does not matter, its content does
    assert read_state_info(state_dir)["epoch"] == 3


def test_corrupt_state_is_a_checkpoint_error(small_data, tmp_path):
    state_dir = tmp_path / "state"
    config = TrainConfig(model="bprmf", epochs=1, batch_size=256)
    _fit(config, small_data, state_dir)
    (state_dir / "state-00001.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt.*--no-resume"):
        _fit(config, small_data, state_dir)
    _fit(config, small_data, tmp_path / "fresh")
    info = json.loads((tmp_path / "fresh" / STATE_JSON).read_text())
    info["optimizer"]["param_groups"] = []
    (tmp_path / "fresh" / STATE_JSON).write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match="does not fit.*--no-resume"):
        _fit(config, small_data, tmp_path / "fresh")
    (state_dir / STATE_JSON).write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable.*--no-resume"):
        _fit(config, small_data, state_dir)


def test_a_save_cut_short_leaves_the_previous_state(small_data, tmp_path, monkeypatch):
    """Killed while writing epoch 2's state: epoch 1's state is still complete and loads."""
    import robustrec.files as files_module  # the state's files are written by files.write_atomic

    state_dir = tmp_path / "state"
    config = TrainConfig(model="bprmf", epochs=3, batch_size=256, lr=0.01)
    real_replace = files_module.os.replace

    def replace(src, dst):
        if str(dst).endswith(STATE_JSON) and has_state(state_dir):
            raise KeyboardInterrupt  # the tensors of epoch 2 are written, state.json not yet
        real_replace(src, dst)

    monkeypatch.setattr(files_module.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        _fit(config, small_data, state_dir)
    monkeypatch.setattr(files_module.os, "replace", real_replace)
    # epoch 2's tensor file and the temporary state.json went with the failed save
    assert sorted(p.name for p in state_dir.iterdir()) == ["state-00001.safetensors", STATE_JSON]
    assert read_state_info(state_dir)["epoch"] == 1
    assert load_state(state_dir).epoch == 1
    assert_same_fit(_fit(config, small_data), _fit(config, small_data, state_dir))


def test_a_state_written_before_a_config_field_existed_still_matches():
    import dataclasses

    from robustrec.training import TrainConfig
    from robustrec.training.state import differences

    current = dataclasses.asdict(TrainConfig())
    older = {k: v for k, v in current.items() if k != "track_test"}  # written before the field existed
    assert differences(older, current) == []
    assert differences(older, {**current, "track_test": True}) == ["track_test False → True"]
