import os
import tempfile

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# graph caches of the test run go to a private folder, never the user's ~/.cache
os.environ["ROBUSTREC_CACHE"] = tempfile.mkdtemp(prefix="robustrec-test-cache-")

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


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
def baby_dir():
    path = os.path.abspath(SHARED)
    if not os.path.isfile(os.path.join(path, "baby", "baby.inter")):
        pytest.fail(f"shared Baby data missing at {path}")
    return path


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory):
    """A data dir holding the built-in synthetic dataset, materialised once per test session."""
    from robustrec.data.synthetic_folder import ensure_synthetic

    root = tmp_path_factory.mktemp("data")
    ensure_synthetic(root)
    return root
