"""The built-in synthetic dataset: planted latent structure, generated deterministically.

Users and items get latent factors drawn around a few shared "taste" clusters; each user
interacts with items sampled by affinity (user·item plus an item popularity term), so the
interaction matrix has low-rank structure an ID model can learn. Image and text features are
noisy linear views of the item factors: they carry information about rarely seen items, so
multimodal models can beat ID-only ones on this data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robustrec.data.dataset import InteractionData, interactions_matrix


@dataclass(frozen=True)
class SyntheticSpec:
    n_users: int = 1200
    n_items: int = 600
    n_factors: int = 8
    n_clusters: int = 6
    mean_interactions: float = 18.0
    image_dim: int = 64
    text_dim: int = 48
    feature_noise: float = 0.5
    seed: int = 0


@dataclass
class SyntheticWorld:
    """What the generator drew: the dataset plus the latent factors behind it."""

    data: InteractionData
    user_factors: np.ndarray
    item_factors: np.ndarray


def make_synthetic(spec: SyntheticSpec = SyntheticSpec(), name: str = "synthetic") -> SyntheticWorld:
    """Generate the dataset described by ``spec``; equal specs give identical data."""
    rng = np.random.default_rng(spec.seed)
    centers = rng.normal(size=(spec.n_clusters, spec.n_factors))
    users = _around_centers(rng, centers, spec.n_users, spread=0.6)
    items = _around_centers(rng, centers, spec.n_items, spread=0.6)
    popularity = rng.normal(scale=0.7, size=spec.n_items)
    user_ids, item_ids = _sample_interactions(rng, users, items, popularity, spec.mean_interactions)
    labels = _split_labels(rng, user_ids)
    splits = [interactions_matrix(user_ids[labels == k], item_ids[labels == k], spec.n_users, spec.n_items)
              for k in (0, 1, 2)]
    features = {
        "image": _noisy_view(rng, items, spec.image_dim, spec.feature_noise),
        "text": _noisy_view(rng, items, spec.text_dim, spec.feature_noise),
    }
    data = InteractionData(name, spec.n_users, spec.n_items, *splits, features=features,
                           source=f"synthetic(seed={spec.seed})")
    return SyntheticWorld(data, users, items)


def _around_centers(rng: np.random.Generator, centers: np.ndarray, n: int, spread: float) -> np.ndarray:
    assignment = rng.integers(len(centers), size=n)
    return centers[assignment] + spread * rng.normal(size=(n, centers.shape[1]))


def _sample_interactions(rng, users, items, popularity, mean_count) -> tuple[np.ndarray, np.ndarray]:
    """Each user draws ~Poisson(mean) distinct items by Gumbel-top-k over affinity."""
    affinity = users @ items.T / np.sqrt(users.shape[1]) * 2.0 + popularity[None, :]
    counts = np.clip(rng.poisson(mean_count, size=len(users)), 5, items.shape[0] // 2)
    gumbel = rng.gumbel(size=affinity.shape)
    order = np.argsort(-(affinity + gumbel), axis=1)
    user_ids = np.repeat(np.arange(len(users)), counts)
    item_ids = np.concatenate([order[u, :c] for u, c in enumerate(counts)])
    return user_ids.astype(np.int64), item_ids.astype(np.int64)


def _split_labels(rng: np.random.Generator, user_ids: np.ndarray) -> np.ndarray:
    """Per user, ~80/10/10 train/valid/test with at least one valid and one test item."""
    labels = np.zeros(len(user_ids), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    ends = np.r_[starts[1:], len(user_ids)]
    for start, end in zip(starts, ends):
        n = end - start
        n_held = max(1, int(round(0.1 * n)))
        positions = start + rng.permutation(n)
        labels[positions[:n_held]] = 1
        labels[positions[n_held:2 * n_held]] = 2
    return labels


def _noisy_view(rng: np.random.Generator, factors: np.ndarray, dim: int, noise: float) -> np.ndarray:
    projection = rng.normal(size=(factors.shape[1], dim)) / np.sqrt(factors.shape[1])
    view = factors @ projection + noise * rng.normal(size=(len(factors), dim))
    return view.astype(np.float32)
