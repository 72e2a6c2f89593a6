"""The memory budget (--max-memory) and what it sizes; the O(users) per-user differences of a stress."""

import numpy as np
import pytest
import torch

from robustrec import runtime
from robustrec.errors import ConfigError
from robustrec.evaluation.ranking import SPEED_BLOCK_BYTES, score_block_users, top_k_items
from robustrec.evaluation.stats import UserDifferences, paired_difference_test, paired_user_test
from cli_helpers import assert_one_line_error, run_cli


@pytest.fixture(autouse=True)
def no_budget(monkeypatch):
    """Every test starts (and leaves the process) without a budget set."""
    monkeypatch.delenv(runtime.MAX_MEMORY_ENV, raising=False)
    monkeypatch.setattr(runtime, "_budget", None)
    yield
    runtime.set_memory_budget(None)


@pytest.mark.parametrize("text, size", [("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("2G", 2 * 10**9),
                                        ("1.5gb", 15 * 10**8), (" 100000000 ", 10**8), ("64MiB", 64 * 2**20)])
def test_parse_size_reads_units(text, size):
    assert runtime.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GiB", "4 GiBs", "-1G", "1e9", "nan", "63MiB", "4G B"])
def test_parse_size_refuses_what_is_not_a_size_of_at_least_64mib(text):
    with pytest.raises(ConfigError, match="--max-memory must be"):
        runtime.parse_size(text)


def test_budget_comes_from_the_setting_then_the_environment_then_available_memory(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 10 * 2**30)
    assert runtime.memory_budget() == int(runtime.AUTO_SHARE * 10 * 2**30)
    monkeypatch.setattr(runtime, "available_memory", lambda: None)
    assert runtime.memory_budget() == runtime.FALLBACK_BYTES
    monkeypatch.setenv(runtime.MAX_MEMORY_ENV, "3GiB")
    assert runtime.memory_budget() == 3 * 2**30
    runtime.set_memory_budget("1GiB")  # the CLI's --max-memory: wins, and child processes inherit it
    assert runtime.memory_budget() == 2**30
    assert runtime.os.environ[runtime.MAX_MEMORY_ENV] == str(2**30)
    runtime.set_memory_budget(None)
    assert runtime.MAX_MEMORY_ENV not in runtime.os.environ


def test_rows_per_block_fits_the_budget_and_its_bounds():
    assert runtime.rows_per_block(100, 1000) == 10
    assert runtime.rows_per_block(100, 1000, high=4) == 4
    assert runtime.rows_per_block(10_000, 1000, low=2) == 2


def test_score_blocks_follow_the_budget_below_the_speed_block(monkeypatch):
    n_items = 63_001  # Elec's items
    runtime.set_memory_budget("64GiB")  # plenty: the fastest block, whatever the budget
    assert score_block_users(n_items) == SPEED_BLOCK_BYTES // (4 * n_items)
    runtime.set_memory_budget("64MiB")  # an eighth of it for the block
    small = score_block_users(n_items)
    assert small == (64 * 2**20 // 8) // (4 * n_items) < SPEED_BLOCK_BYTES // (4 * n_items)
    assert 4 * n_items * small <= 64 * 2**20 // 8
    assert score_block_users(10**9, budget_bytes=2**20) == 1  # a huge catalogue: one user at a time
    assert score_block_users(10, budget_bytes=2**40) == 4096


def test_blocks_never_change_the_ranking(small_data):
    from robustrec.models import build_model

    data = small_data
    model = build_model("bprmf", data, seed=0)
    users = np.arange(data.n_users)
    automatic = top_k_items(model, data, users, 10)
    runtime.set_memory_budget("64MiB")
    assert np.array_equal(automatic, top_k_items(model, data, users, 10, batch_size=1))
    assert np.array_equal(automatic, top_k_items(model, data, users, 10))


def test_running_differences_equal_the_stacked_test_bitwise():
    rng = np.random.default_rng(3)
    clean = rng.random(5_003)
    repeats = [np.where(rng.random(5_003) < 0.3, clean, rng.random(5_003)) for _ in range(7)]
    running = UserDifferences(clean)
    for perturbed in repeats:
        running.add(perturbed)
    stacked = (clean[None, :] - np.stack(repeats)).mean(axis=0)
    assert np.array_equal(running.mean(), stacked)
    assert paired_difference_test(running.mean()) == paired_user_test(clean, np.stack(repeats))


def test_cli_max_memory_is_checked_before_any_work(capsys, tmp_path):
    assert_one_line_error(*run_cli(capsys, "evaluate", tmp_path / "missing", "--max-memory", "lots"),
                          "--max-memory must be a size like 4GiB")
    assert_one_line_error(*run_cli(capsys, "perturb", "noise", tmp_path / "missing", "--max-memory", "1MiB"),
                          "--max-memory must be at least 64MiB")
