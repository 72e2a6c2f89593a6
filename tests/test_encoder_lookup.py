"""Encoders are looked up on this machine first: an unknown name fails at once with one line and no
network call, a model in the Hugging Face cache loads offline, and the hub only with ROBUSTREC_ALLOW_DOWNLOAD=1."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from cli_helpers import assert_one_line_error, run_cli
from robustrec.errors import ConfigError
from robustrec.features import registry as encoders_module
from test_features_extract import make_hm_subset

CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Hub access as on a machine where HF_HUB_OFFLINE is not set, with every socket call recorded and refused."""
    import huggingface_hub.constants

    calls = []

    def refuse(*args, **kwargs):
        calls.append(args[:2])
        raise OSError("network call attempted in a test")

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "ROBUSTREC_ALLOW_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return calls


@pytest.fixture(scope="module")
def hm_small(tmp_path_factory, shared_datasets):
    return make_hm_subset(tmp_path_factory.mktemp("hm-lookup"), shared_datasets, n_items=4)


@pytest.mark.parametrize("option, modality, looked_for", [
    ("--image-encoder", "image", "no 'nosuch-encoder' in the Hugging Face cache"),
    ("--text-encoder", "text", "no 'nosuch-encoder', 'sentence-transformers/nosuch-encoder' in the Hugging Face cache"),
])
def test_unknown_encoder_fails_at_once_in_one_line_without_network(capsys, tmp_path, hm_small, no_network,
                                                                    option, modality, looked_for):
    start = time.perf_counter()
    result = run_cli(capsys, "features", "extract", "--dataset", "hm", "--data-dir", hm_small.parent,
                     "--out-dir", tmp_path / "out", "--modalities", modality, option, "nosuch-encoder")
    seconds = time.perf_counter() - start
    line = assert_one_line_error(*result, looked_for, str(tmp_path / "hf-cache"), "ROBUSTREC_ALLOW_DOWNLOAD=1",
                                 prefix=f"Error: cannot load {modality} encoder 'nosuch-encoder' offline: no folder ")
    assert "Retry" not in line
    assert no_network == [], no_network
    assert seconds < 10, seconds
    assert not (tmp_path / "out").exists()


def test_unknown_encoder_cli_process_is_quick_and_quiet(tmp_path, hm_small):
    """The real command in a fresh process (start-up included), network refused: one line, well under 10 s."""
    guard = ("import socket, sys\n"
             "def refuse(*a, **k):\n"
             "    print('NETWORK CALL', a[:2], file=sys.stderr); raise OSError('no network in tests')\n"
             "socket.getaddrinfo = socket.create_connection = socket.socket.connect = refuse\n"
             "from robustrec.cli.app import main\n"
             "main(sys.argv[1:])\n")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = CHECKOUT + os.pathsep + env.get("PYTHONPATH", "")
    env["HF_HUB_CACHE"] = str(tmp_path / "hf-cache")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", guard, "features", "extract", "--dataset", "hm", "--data-dir",
                           str(hm_small.parent), "--out-dir", str(tmp_path / "out"), "--modalities", "image,text",
                           "--image-encoder", "nosuch-encoder"], capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - start
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "NETWORK CALL" not in done.stderr, done.stderr
    assert lines[0].startswith("Error: cannot load image encoder 'nosuch-encoder' offline"), done.stderr
    assert seconds < 10, seconds
    assert not (tmp_path / "out").exists()


def _tiny_vit(folder):
    from transformers import ViTConfig, ViTModel

    import torch

    torch.manual_seed(0)
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                       image_size=32, patch_size=8)
    ViTModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
        "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
        "image_mean": [0.5] * 3, "image_std": [0.5] * 3}))


def test_a_model_in_the_hugging_face_cache_loads_offline(tmp_path, no_network):
    """A hub id whose snapshot is in the cache loads from it, with no network call, and keeps its id and revision."""
    from PIL import Image
    from transformers.utils import logging as hf_logging

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-cache" / "models--someorg--tiny-vit"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    _tiny_vit(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    hf_logging.set_verbosity_error()
    encoder = encoders_module.make_encoder("image", "someorg/tiny-vit")
    assert encoder.encoder_id == "transformers:someorg/tiny-vit" and encoder.version == f"revision {commit}"
    assert encoder.encode([Image.new("RGB", (40, 30), (200, 10, 10))]).shape == (1, 32)
    again = encoders_module.make_encoder("image", encoder.encoder_id)  # what a sidecar check rebuilds
    assert again.version == encoder.version
    assert no_network == [], no_network


def test_downloads_only_when_the_user_opts_in(monkeypatch, no_network):
    from robustrec.features.locate import locate_model

    with pytest.raises(ConfigError, match="set ROBUSTREC_ALLOW_DOWNLOAD=1 to download it from the hub"):
        locate_model("someorg/not-cached", "image")
    with pytest.raises(ConfigError, match="'./not-here': no such folder"):  # a path never goes to the hub
        locate_model("./not-here", "text")
    from robustrec.features.text import SentenceTextEncoder  # perturb caption/text, studies

    with pytest.raises(ConfigError, match="cannot load text encoder 'nosuch-encoder' offline: no folder"):
        SentenceTextEncoder("nosuch-encoder").encode(["a text"])
    monkeypatch.setenv("ROBUSTREC_ALLOW_DOWNLOAD", "1")
    assert locate_model("someorg/not-cached", "image") == ("someorg/not-cached", False)
    with pytest.raises(ConfigError, match="no such folder"):
        locate_model("./not-here", "text")
    assert no_network == []


def test_help_names_the_download_switch(capsys):
    code, out, _ = run_cli(capsys, "features", "extract", "--help")
    assert code == 0 and "ROBUSTREC_ALLOW_DOWNLOAD=1" in out, out
