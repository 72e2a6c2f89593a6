"""Devices: one resolver, models that move whole, ``--device`` on every command (run on the CPU).

No GPU is needed: ``model.to(torch.float64)`` and ``model._apply(clone)`` go through the same
``_apply`` as a device move, so a tensor they leave behind is one a move to CUDA would leave on
the CPU, and an op that mixes float32 with float64 inputs is one that would mix devices.
"""

import json
import os

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from robustrec.device import map_tensors, reachable_tensors, resolve_device, tensors_off_device
from robustrec.errors import ConfigError
from robustrec.evaluation import full_ranking
from robustrec.models import available_models, build_model

from cli_helpers import assert_one_line_error, run_cli

MODEL_NAMES = list(available_models())
#: parameters that switch on the forward-pass branches that create tensors (FREEDOM's modality loss)
BRANCHES = {"freedom": {"reg_weight": 1e-3}}


# --- the resolver -----------------------------------------------------------------------------
@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", "unset")  # recorded, so teardown restores it
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG")


def test_auto_is_the_gpu_when_torch_sees_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected


def test_cpu_spellings():
    for spec in ("cpu", " CPU ", torch.device("cpu")):
        assert resolve_device(spec) == torch.device("cpu")


def test_auto_without_cuda_is_the_cpu(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_cuda_is_one_line_naming_the_torch_build(no_cuda, spec):
    with pytest.raises(ConfigError) as caught:
        resolve_device(spec)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--device {spec.lower()}: CUDA is not available on this machine")
    assert torch.__version__ in message and "use --device cpu or auto" in message


def test_cuda_indices_are_checked_against_the_gpus_present(two_gpus):
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match=r"this machine has 2 CUDA devices \(cuda:0\.\.cuda:1\)"):
        resolve_device("cuda:2")


def test_resolving_cuda_sets_the_cublas_workspace_only_when_unset(two_gpus, monkeypatch):
    resolve_device("cuda")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    resolve_device("cuda:1")
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


@pytest.mark.parametrize("spec", ["gpu", "mps", "cuda:x", "cuda:-1", ""])
def test_other_names_list_the_choices(spec):
    with pytest.raises(ConfigError, match="choose one of auto, cpu, cuda, cuda:N"):
        resolve_device(spec)


# --- models move whole ------------------------------------------------------------------------
def _non_parameters(model) -> list[torch.Tensor]:
    """The model's non-parameter tensors, held (ids of freed tensors could be reused by new ones)."""
    return [t for _, t in reachable_tensors(model) if not isinstance(t, torch.nn.Parameter)]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_move_converts_every_tensor_the_model_holds(name, small_data):
    """Every tensor reachable from the model (graphs in plain attributes, edge patterns, dicts of
    features) is replaced by ``_apply``, bar the declared host tensors; the state dict keeps its keys."""
    model = build_model(name, small_data, BRANCHES.get(name))
    model.pre_epoch()  # the epoch's sampled graphs exist too
    keys = list(model.state_dict())
    host = {attr: getattr(model, attr) for attr in model.host_tensors}
    held = _non_parameters(model)  # kept alive, so no new tensor can take one of their ids
    before = {id(t) for t in held}
    model._apply(lambda t: t.clone())  # what a device move does to each tensor: a new one
    stale = [path for path, t in reachable_tensors(model, model.host_tensors) if id(t) in before]
    assert stale == []
    assert list(model.state_dict()) == keys
    assert all(getattr(model, attr) is tensor for attr, tensor in host.items())


class MixedDtypes(TorchDispatchMode):
    """Records ops whose floating-point tensor inputs have more than one dtype."""

    def __init__(self):
        super().__init__()
        self.mixed: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        dtypes = set()

        def collect(value):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                dtypes.add(value.dtype)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(item)

        collect(args)
        collect(list(kwargs.values()))
        if len(dtypes) > 1:
            self.mixed.add(str(func))
        return func(*args, **kwargs)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_converted_model_trains_and_ranks_without_mixing(name, small_data):
    model = build_model(name, small_data, BRANCHES.get(name)).to(torch.float64)
    assert tensors_off_device(model, "cpu", torch.float64, skip=model.host_tensors) == []
    for attr in model.host_tensors:  # CPU-side sampling weights keep their device and dtype
        assert getattr(model, attr).device.type == "cpu" and getattr(model, attr).dtype != torch.float64
    users, items = (torch.from_numpy(a[:64]) for a in small_data.train_pairs())
    negatives = (items + 1) % small_data.n_items
    with MixedDtypes() as mode:
        model.train()
        model.pre_epoch()
        loss = model.loss(users, items, negatives) if model.trainable else torch.zeros((), dtype=torch.float64)
        if model.trainable:  # a fitted baseline has no loss
            loss.backward()
        result = full_ranking(model, small_data, "valid")
    assert mode.mixed == set()
    assert loss.dtype == torch.float64 and np.isfinite(result["recall@20"])
    assert all(p.grad is None or p.grad.dtype == torch.float64 for p in model.parameters())
    if model.multimodal:  # rebuilt graphs (kNN, projections) land on the model's device and dtype
        generator = np.random.default_rng(0)
        model.set_item_features({m: f + generator.normal(0, 0.1, f.shape) for m, f in small_data.features.items()
                                 if m in model.feature_names})
        assert tensors_off_device(model, "cpu", torch.float64, skip=model.host_tensors) == []
        with MixedDtypes() as mode:
            full_ranking(model, small_data, "valid")
        assert mode.mixed == set()


def test_a_graph_stored_under_two_names_stays_shared(small_data):
    model = build_model("layergcn", small_data, {"dropout": 0.0})
    model.pre_epoch()
    assert model.train_adjacency is model.adjacency
    model.to(torch.float64)
    assert model.train_adjacency is model.adjacency and model.adjacency.dtype == torch.float64


def test_map_tensors_leaves_parameters_and_other_values_alone():
    parameter = torch.nn.Parameter(torch.ones(2))
    value = {"a": [torch.ones(1), (torch.zeros(1), 3)], "p": parameter, "s": "text"}
    out = map_tensors(value, lambda t: t.double(), {})
    assert out["a"][0].dtype == torch.float64 and out["a"][1][0].dtype == torch.float64
    assert out["a"][1][1] == 3 and out["s"] == "text" and out["p"] is parameter


def test_training_state_keeps_a_cuda_generator_state(tmp_path, small_data):
    from robustrec.training.state import TrainingState, load_state, save_state

    fake_cuda_rng = torch.arange(16, dtype=torch.uint8)
    state = TrainingState(epoch=1, best_epoch=1, best_value=0.5, history=[], model={"w": torch.ones(2)},
                          best=None, optimizer={"state": {}, "param_groups": []}, torch_rng=torch.get_rng_state(),
                          sampler_rng={}, cuda_rng=fake_cuda_rng)
    save_state(tmp_path, state)
    assert torch.equal(load_state(tmp_path).cuda_rng, fake_cuda_rng)
    save_state(tmp_path, TrainingState(**{**state.__dict__, "epoch": 2, "cuda_rng": None}))
    assert load_state(tmp_path).cuda_rng is None


# --- the command line -------------------------------------------------------------------------
def _train_args(data_dir, ck, *extra):
    return ("train", "--model", "freedom", "--epochs", "1", "-q", "--threads", "1", "--batch-size", "512",
            "--data-dir", data_dir, "--checkpoint-dir", ck, *extra)


def test_train_with_device_cpu_equals_the_default_bitwise(capsys, tmp_path, synthetic_dir):
    code, _, err = run_cli(capsys, *_train_args(synthetic_dir, tmp_path / "default"))
    assert code == 0, err
    code, _, err = run_cli(capsys, *_train_args(synthetic_dir, tmp_path / "cpu", "--device", "cpu"))
    assert code == 0, err
    default, cpu = tmp_path / "default" / "freedom-synthetic", tmp_path / "cpu" / "freedom-synthetic"
    assert (default / "model.safetensors").read_bytes() == (cpu / "model.safetensors").read_bytes()
    assert (default / "metrics.json").read_text() == (cpu / "metrics.json").read_text()
    assert json.loads((cpu / "config.json").read_text()) == json.loads((default / "config.json").read_text())
    assert "device" not in json.loads((cpu / "config.json").read_text())
    assert json.loads((cpu / "meta.json").read_text())["device"] == "cpu"
    code, out, err = run_cli(capsys, "evaluate", cpu, "--device", "cpu", "--threads", "1")
    assert code == 0, err
    assert "test metrics match the stored ones" in out


def _nothing_written(*folders) -> bool:
    return all(not folder.exists() for folder in folders)


@pytest.mark.parametrize("spec", ["cuda", "cuda:1"])
def test_train_on_cuda_without_cuda_fails_before_any_work(capsys, tmp_path, synthetic_dir, no_cuda, spec):
    code, out, err = run_cli(capsys, *_train_args(synthetic_dir, tmp_path / "ck", "--device", spec))
    assert_one_line_error(code, out, err, prefix=f"Error: --device {spec}: CUDA is not available")
    assert out == "" and _nothing_written(tmp_path / "ck")


@pytest.mark.parametrize("command", [
    ["evaluate", "{run}"],
    ["perturb", "noise", "{run}", "--repeats", "1", "--report-dir", "{out}"],
    ["perturb", "modality", "{run}", "--noise", "image", "--repeats", "1", "--report-dir", "{out}"],
    ["flatness", "{run}", "--json", "{out}.json"],
    ["landscape", "{run}", "--grid", "3", "--out-dir", "{out}"],
])
def test_cuda_without_cuda_is_one_line_and_writes_nothing(capsys, tmp_path, bprmf_pair, no_cuda, command):
    out_path = tmp_path / "out"
    args = [part.format(run=bprmf_pair[0], out=out_path) for part in command]
    assert_one_line_error(*run_cli(capsys, *args, "--device", "cuda", "--threads", "1"),
                          prefix="Error: --device cuda: CUDA is not available")
    assert _nothing_written(out_path, tmp_path / "out.json")


def test_an_unknown_device_lists_the_choices(capsys, tmp_path, bprmf_pair):
    code, _, err = run_cli(capsys, "perturb", "noise", bprmf_pair[0], "--device", "tpu",
                           "--report-dir", tmp_path / "r")
    assert code == 2 and "--device tpu: unknown device; choose one of auto, cpu, cuda, cuda:N" in err
    assert _nothing_written(tmp_path / "r")


def test_perturb_noise_on_the_cpu_device_matches_the_default(capsys, tmp_path, bprmf_pair):
    reports = []
    for extra in ([], ["--device", "cpu"]):
        folder = tmp_path / ("cpu" if extra else "default")
        code, _, err = run_cli(capsys, "perturb", "noise", *bprmf_pair, "--repeats", "2", "--threads", "1", "-q",
                               "--report-dir", folder, *extra)
        assert code == 0, err
        reports.append(json.loads(next(folder.glob("*.json")).read_text()))
    assert [c["levels"] for c in reports[0]["checkpoints"]] == [c["levels"] for c in reports[1]["checkpoints"]]


def test_feature_encoders_and_captioners_use_the_same_resolver(no_cuda):
    from robustrec.cli.captions import CaptionerKind, _make_captioner
    from robustrec.features.registry import make_encoder

    with pytest.raises(ConfigError, match="^--device cuda: CUDA is not available"):
        make_encoder("text", device="cuda")
    with pytest.raises(ConfigError, match="^--device cuda:1: CUDA is not available"):
        _make_captioner(CaptionerKind.blip2, None, None, "cuda:1", 30, None)
    with pytest.raises(ConfigError, match="unknown device"):
        make_encoder("image", device="gpu")
