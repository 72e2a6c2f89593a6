import os
import shutil
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Everything the run puts in the temp dir goes to one private folder (pytest's tmp_path too, and
# subprocesses through TMPDIR), graph caches included: never the user's ~/.cache. It is removed
# at the end, after checking that tests cleaned up what they made outside tmp_path.
_TMP = tempfile.mkdtemp(prefix="robustrec-tests-")
os.environ["TMPDIR"] = tempfile.tempdir = _TMP
os.environ["ROBUSTREC_CACHE"] = os.path.join(_TMP, "cache")
CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _checkout_files() -> set[str]:
    """Untracked and ignored paths of the checkout (git's view), less Python's and pytest's caches."""
    import subprocess

    try:
        out = subprocess.run(["git", "-C", CHECKOUT, "status", "--porcelain", "--ignored=matching",
                              "--untracked-files=all"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):  # no git: compare the top-level entries only
        return set(os.listdir(CHECKOUT)) - {".pytest_cache", "__pycache__"}
    paths = {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if "__pycache__" not in p and not p.startswith(".pytest_cache")}


_CHECKOUT_BEFORE = _checkout_files()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if tests wrote into the checkout or left files in the temp dir."""
    in_checkout = _checkout_files() - _CHECKOUT_BEFORE
    # pytest's own tmp_path root and torch's compile cache go with _TMP; anything else is a leak
    in_tmp = {e for e in os.listdir(_TMP) if e != "cache" and not e.startswith(("pytest-of-", "torchinductor_"))}
    if in_checkout or in_tmp:
        session.config.get_terminal_writer().line(
            f"the test suite left files behind: in the checkout {sorted(in_checkout)}, "
            f"in the temp dir {sorted(in_tmp)} (kept in {_TMP})", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    else:
        shutil.rmtree(_TMP, ignore_errors=True)


SHARED = os.environ.get("ROBUSTREC_SHARED_DATASETS") or os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                                      "datasets")
#: fixtures that read ../shared/datasets: a test needing one (directly or through another fixture)
#: is skipped, with the reason, when the folder is absent (a checkout without its neighbour)
SHARED_FIXTURES = {"shared_datasets", "baby_dir"}


def shared_present() -> bool:
    return all(os.path.isfile(os.path.join(SHARED, name, f"{name}.inter")) for name in ("baby", "lfm2k", "hm"))


def pytest_configure(config):
    config.addinivalue_line("markers", "shared_data: needs the real datasets in ../shared/datasets beside the checkout")


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs the shared datasets; skip them when the folder is absent."""
    present = shared_present()
    skip = pytest.mark.skip(reason=f"needs the shared datasets in {os.path.abspath(SHARED)}, which is absent")
    for item in items:
        if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("shared_data"):
            item.add_marker(pytest.mark.shared_data)
            if not present:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def small_world():
    """A small planted-structure dataset (4 taste clusters) every model must learn."""
    from robustrec.data.synthetic import SyntheticSpec, make_synthetic

    spec = SyntheticSpec(n_users=300, n_items=150, n_clusters=4, mean_interactions=14,
                         image_dim=24, text_dim=16, feature_noise=0.3, seed=7)
    return make_synthetic(spec)


@pytest.fixture(scope="session")
def small_data(small_world):
    return small_world.data


@pytest.fixture(scope="session")
def shared_datasets():
    """``../shared/datasets`` (read only: tests that write copy into tmp_path)."""
    path = os.path.abspath(SHARED)
    for name in ("baby", "lfm2k", "hm"):
        if not os.path.isfile(os.path.join(path, name, f"{name}.inter")):
            pytest.fail(f"shared dataset {name} missing at {path}")
    return path


@pytest.fixture(scope="session")
def baby_dir():
    path = os.path.abspath(SHARED)
    if not os.path.isfile(os.path.join(path, "baby", "baby.inter")):
        pytest.fail(f"shared Baby data missing at {path}")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A data dir holding the built-in synthetic dataset, materialised once per test session."""
    from robustrec.synthetic.folder import ensure_synthetic

    root = tmp_path_factory.mktemp("data")
    ensure_synthetic(root)
    return root


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory, synthetic_dir):
    """``synthetic_run(model, mg=False)``: the folder of a 2-epoch run of ``model`` on the built-in
    synthetic data (CLI defaults, one thread), trained on first use and shared by the whole session.

    Read only by contract: a test that changes a run (its files, its weights) copies it into
    tmp_path first. A test that depends on how the run was trained trains its own."""
    from cli_helpers import cli_code

    ck = tmp_path_factory.mktemp("synthetic-runs")
    runs: dict[tuple[str, bool], object] = {}

    def run(model: str, mg: bool = False):
        if (model, mg) not in runs:
            assert cli_code("train", "--model", model, "--epochs", "2", "-q", "--threads", "1", "--data-dir",
                            synthetic_dir, "--checkpoint-dir", ck, "--mg" if mg else "--no-mg") == 0
            runs[model, mg] = ck / f"{model}-synthetic{'-mg' if mg else ''}"
        return runs[model, mg]

    return run


@pytest.fixture(scope="session")
def bprmf_pair(synthetic_run):
    """A 2-epoch BPR-MF run on the synthetic data and its -mg twin (read only)."""
    return synthetic_run("bprmf"), synthetic_run("bprmf", mg=True)
