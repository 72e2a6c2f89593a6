"""Sized synthetic datasets in MMRec layout, for scale work (``robustrec data synth``).

``SizedSpec`` gives users × items × interactions and the feature files (``image:4096,text:384``);
``PRESETS`` holds the sizes of MMRec's Amazon sets (baby, sports, clothing, elec). The generator is
pure numpy and memory-light: it never forms a users × items array, and feature matrices are
written in row chunks into ``np.lib.format.open_memmap`` files.

What the data looks like:

- item popularity is a shifted Zipf law (weight ∝ 1 / (rank + 5)): a long tail, every item with at
  least one interaction;
- user activity is 5 + a heavy-tailed share of the rest (every user ≥ 5 interactions, as in 5-core
  data; at most ``items``), so ``interactions`` must be ≥ 5 × ``users`` (asked for fewer: an error);
- items fall in latent clusters; each user mostly picks from two "home" clusters (by popularity
  within them) and otherwise from all items: ``interactions`` pairs exactly, no duplicate pair;
- per user a random 8:1:1 split: ``round(n / 10)`` valid and as many test (half rounds up, so every
  5-core user has one of each), the rest train; rows sorted by user then item;
- ``<modality>_feat.npy`` = latent item factors (cluster centre + item offset, rank 32) times a
  random projection, plus Gaussian noise; float32.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robustrec.data.dataset import check_modality_name
from robustrec.errors import ConfigError, DataError
from robustrec.files import disk_full_as_error, disk_full_error, fsync_dir, fsync_tree
from robustrec.paths import umask_mode

#: MMRec's Amazon sets (users, items, interactions)
PRESETS: dict[str, tuple[int, int, int]] = {
    "baby": (19_445, 7_050, 160_792),
    "sports": (35_598, 18_357, 296_337),
    "clothing": (39_387, 23_033, 278_677),
    "elec": (192_403, 63_001, 1_689_188),
}
#: MMRec's feature sizes
DEFAULT_MODALITIES = "image:4096,text:384"
MIN_PER_USER = 5
RANK = 32
ZIPF_SHIFT = 5.0
NOISE = 1.0
#: feature rows are made and written this many bytes at a time
CHUNK_BYTES = 8 << 20
#: progress callback: (stage description, done, total)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SizedSpec:
    users: int
    items: int
    interactions: int
    modalities: tuple[tuple[str, int], ...] = field(default=(("image", 4096), ("text", 384)))
    seed: int = 0

    def check(self) -> "SizedSpec":
        """One-line ConfigErrors for sizes no dataset can have."""
        for what, value in (("users", self.users), ("items", self.items), ("interactions", self.interactions)):
            if value < 1:
                raise ConfigError(f"--{what} must be at least 1, got {value}")
        if self.interactions > self.users * self.items:
            raise ConfigError(f"--interactions {self.interactions:,} is more than users × items = "
                              f"{self.users * self.items:,} (no duplicate pairs)")
        if self.interactions < MIN_PER_USER * self.users:
            raise ConfigError(f"--interactions {self.interactions:,} is fewer than {MIN_PER_USER} per user "
                              f"({MIN_PER_USER * self.users:,} for {self.users:,} users; 5-core data)")
        if self.items < MIN_PER_USER:
            raise ConfigError(f"--items must be at least {MIN_PER_USER} (every user has {MIN_PER_USER} distinct items), "
                              f"got {self.items}")
        if self.interactions < self.items:
            raise ConfigError(f"--interactions {self.interactions:,} is fewer than --items {self.items:,} "
                              "(every item has at least one interaction)")
        for name, dim in self.modalities:
            if dim < 1:
                raise ConfigError(f"modality {name!r} needs a dimension ≥ 1, got {dim}")
        return self


def parse_modalities(text: str) -> tuple[tuple[str, int], ...]:
    """``image:4096,text:384`` → ``(("image", 4096), ("text", 384))``; ``""`` or ``none``: no feature file."""
    if text.strip().lower() in ("", "none"):
        return ()
    out: list[tuple[str, int]] = []
    for part in text.split(","):
        name, sep, dim = part.strip().partition(":")
        if not sep:
            raise ConfigError(f"--modalities entry {part.strip()!r} is not <name>:<dim> (e.g. image:4096,text:384)")
        try:
            check_modality_name(name)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        try:
            size = int(dim)
        except ValueError:
            raise ConfigError(f"--modalities entry {part.strip()!r}: dimension {dim!r} is not an integer") from None
        if size < 1:
            raise ConfigError(f"--modalities entry {part.strip()!r}: dimension must be at least 1")
        if name in (n for n, _ in out):
            raise ConfigError(f"--modalities names {name!r} twice")
        out.append((name, size))
    return tuple(out)


def resolve_spec(preset: str | None, users: int | None, items: int | None, interactions: int | None,
                 modalities: str | None, seed: int, name: str | None) -> tuple[str, SizedSpec]:
    """(dataset name, spec) from the CLI's flags: a preset's numbers, overridden by the given ones."""
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = PRESETS[preset]
    else:
        missing = [f"--{w}" for w, v in (("users", users), ("items", items), ("interactions", interactions))
                   if v is None]
        if missing:
            raise ConfigError(f"give --preset ({', '.join(PRESETS)}) or all of --users --items --interactions "
                              f"(missing {' '.join(missing)})")
        base = (0, 0, 0)
    sizes = [given if given is not None else default for given, default in zip((users, items, interactions), base)]
    mods = parse_modalities(DEFAULT_MODALITIES if modalities is None else modalities)
    spec = SizedSpec(*sizes, modalities=mods, seed=seed).check()
    dataset = name or (f"synth-{preset}" if preset else "synth-custom")
    if "/" in dataset or dataset.startswith(".") or not dataset.strip():
        raise ConfigError(f"invalid dataset --name {dataset!r}")
    return dataset, spec


# ----------------------------------------------------------------------------- generation (numpy only)

@dataclass
class SizedWorld:
    users: np.ndarray  # int64, sorted by (user, item)
    items: np.ndarray
    labels: np.ndarray  # 0 train, 1 valid, 2 test
    item_factors: np.ndarray  # n_items × RANK float32


def _rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _user_degrees(rng, n_users: int, n_items: int, n_inter: int) -> np.ndarray:
    """Every user ≥ 5 and ≤ n_items, summing to n_inter; the rest spread by heavy-tailed weights."""
    weights = rng.pareto(3.0, n_users) + 0.05
    degrees = np.full(n_users, MIN_PER_USER, dtype=np.int64)
    rest = n_inter - degrees.sum()
    while rest > 0:
        room = degrees < n_items
        p = np.where(room, weights, 0.0)
        degrees += rng.multinomial(rest, p / p.sum())
        over = np.maximum(degrees - n_items, 0)
        degrees -= over
        rest = int(over.sum())
    return degrees


class _Sampler:
    """Items by shifted-Zipf popularity, mostly within a user's two home clusters."""

    def __init__(self, rng, n_users: int, n_items: int):
        self.rng = rng
        self.n_items = n_items
        rank = rng.permutation(n_items)  # item → popularity rank
        popularity = 1.0 / (rank + ZIPF_SHIFT)
        k = int(np.clip(n_items // 50, 1, 32))
        self.cluster = rng.permutation(np.arange(n_items) % k)  # no empty cluster
        self.order = np.argsort(self.cluster, kind="stable")  # items grouped by cluster
        cum = np.cumsum(popularity[self.order])
        self.cum = cum / cum[-1]
        ends = np.cumsum(np.bincount(self.cluster, minlength=k))
        self.hi = self.cum[ends - 1]
        self.lo = np.concatenate([[0.0], self.hi[:-1]])
        mass = self.hi - self.lo
        self.home = rng.choice(k, size=(n_users, 2), p=mass / mass.sum())
        self.k = k

    def draw(self, users: np.ndarray) -> np.ndarray:
        rng, n = self.rng, len(users)
        r = rng.random(n)
        c = np.where(r < 0.5, self.home[users, 0], self.home[users, 1])
        lo, hi = self.lo[c], self.hi[c]
        everywhere = r >= 0.8
        lo[everywhere], hi[everywhere] = 0.0, 1.0
        x = lo + rng.random(n) * (hi - lo)
        pos = np.minimum(np.searchsorted(self.cum, x, side="right"), self.n_items - 1)
        return self.order[pos]


def _duplicates(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Mask of every slot whose (user, item) pair already appeared in an earlier slot."""
    key = users * n_items + items
    order = np.argsort(key, kind="stable")
    repeat = np.zeros(len(key), dtype=bool)
    repeat[order[1:][key[order][1:] == key[order][:-1]]] = True
    return repeat


def _distinct_pairs(rng, sampler: _Sampler, users: np.ndarray, starts: np.ndarray, n_items: int) -> np.ndarray:
    items = sampler.draw(users)
    active = np.ones(len(users), dtype=bool)
    for _ in range(30):
        idx = np.flatnonzero(active)
        dup = _duplicates(users[idx], items[idx], n_items)
        if not dup.any():
            return items
        bad = idx[dup]
        items[bad] = sampler.draw(users[bad])
        active = np.isin(users, np.unique(users[bad]))
    # the few users still holding repeats (near-complete rows): fill their repeats uniformly
    idx = np.flatnonzero(active)
    bad = idx[_duplicates(users[idx], items[idx], n_items)]
    for u in np.unique(users[bad]):
        seg = slice(starts[u], starts[u + 1])
        row = items[seg]
        repeat = _duplicates(np.zeros(len(row), dtype=np.int64), row, n_items)
        free = np.setdiff1d(np.arange(n_items), row[~repeat])
        row[repeat] = rng.choice(free, int(repeat.sum()), replace=False)
        items[seg] = row
    return items


def _cover_items(rng, items: np.ndarray, n_items: int) -> None:
    """Give every item without an interaction one slot taken from an item that has several."""
    missing = np.flatnonzero(np.bincount(items, minlength=n_items) == 0)
    if not len(missing):
        return
    order = np.argsort(items, kind="stable")
    first = np.ones(len(items), dtype=bool)
    first[1:] = items[order][1:] != items[order][:-1]
    surplus = order[~first]
    take = rng.choice(surplus, len(missing), replace=False)
    items[take] = rng.permutation(missing)


def _split(rng, users: np.ndarray, degrees: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per user round(n/10) valid (half up), as many test, the rest train, chosen at random."""
    held = np.floor(degrees * 0.1 + 0.5).astype(np.int64)
    keys = rng.random(len(users))
    order = np.lexsort((keys, users))  # users are contiguous already: a random order inside each
    position = np.empty(len(users), dtype=np.int64)
    position[order] = np.arange(len(users)) - starts[users[order]]
    labels = np.zeros(len(users), dtype=np.int8)
    labels[position < 2 * held[users]] = 2
    labels[position < held[users]] = 1
    return labels


def generate(spec: SizedSpec, progress: Progress | None = None) -> SizedWorld:
    """The interactions (sorted by user, item) and the latent item factors of ``spec``."""
    spec.check()
    rng_deg, rng_items, rng_split, rng_factors = _rngs(spec.seed, 4)
    tell = progress or (lambda *a: None)
    tell("interactions", 0, 4)
    degrees = _user_degrees(rng_deg, spec.users, spec.items, spec.interactions)
    starts = np.concatenate([[0], np.cumsum(degrees)])
    users = np.repeat(np.arange(spec.users, dtype=np.int64), degrees)
    sampler = _Sampler(rng_items, spec.users, spec.items)
    tell("interactions", 1, 4)
    items = _distinct_pairs(rng_items, sampler, users, starts, spec.items)
    _cover_items(rng_items, items, spec.items)
    tell("interactions", 2, 4)
    labels = _split(rng_split, users, degrees, starts)
    order = np.lexsort((items, users))
    users, items, labels = users[order], items[order], labels[order]
    centres = rng_factors.standard_normal((sampler.k, RANK)).astype(np.float32)
    offsets = rng_factors.standard_normal((spec.items, RANK)).astype(np.float32)
    factors = centres[sampler.cluster] + np.float32(0.5) * offsets
    tell("interactions", 3, 4)
    return SizedWorld(users, items, labels, factors)


def write_features(path: Path, factors: np.ndarray, dim: int, seed: int, index: int,
                   progress: Progress | None = None, what: str = "") -> None:
    """``factors @ W + noise`` (n_items × dim float32) into ``path`` (an ``open_memmap`` file), about
    CHUNK_BYTES of rows at a time, so memory stays flat whatever the size."""
    rng = np.random.default_rng([seed, 1 + index])
    projection = (rng.standard_normal((factors.shape[1], dim), dtype=np.float32) / np.float32(np.sqrt(factors.shape[1])))
    n = factors.shape[0]
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, dim))
    offset = out.offset  # the header's size: rows go after it
    del out  # the file exists at full size; rows are written through small windows
    rows = max(1, CHUNK_BYTES // (4 * dim))
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = factors[start:stop] @ projection
        block += np.float32(NOISE) * rng.standard_normal((stop - start, dim), dtype=np.float32)
        window = np.memmap(path, dtype=np.float32, mode="r+", offset=offset + 4 * dim * start, shape=(stop - start, dim))
        window[:] = block
        window.flush()
        del window  # written pages leave this process's memory (page cache only)
        if progress:
            progress(what, stop, n)


def write_inter(path: Path, world: SizedWorld) -> None:
    table = np.column_stack([world.users, world.items, world.labels.astype(np.int64)])
    with open(path, "w", encoding="ascii", newline="\n") as fh:
        fh.write("userID\titemID\tx_label\n")
        for start in range(0, len(table), 200_000):
            chunk = table[start:start + 200_000]
            fh.write("".join(f"{u}\t{i}\t{l}\n" for u, i, l in chunk.tolist()))


# ----------------------------------------------------------------------------- writing (atomic)

def check_target(data_dir: str | Path, name: str, overwrite: bool) -> Path:
    """The dataset folder to write; one-line errors for a data dir that is a file or an existing folder."""
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder")
    folder = data_dir / name
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} exists and is a file")
    if folder.exists() and not overwrite:
        raise DataError(f"{folder} exists; pass --overwrite to replace it")
    return folder


def write_sized(data_dir: str | Path, name: str, spec: SizedSpec, overwrite: bool = False,
                progress: Progress | None = None) -> dict:
    """Generate ``spec`` into ``<data_dir>/<name>/`` atomically (a temporary sibling folder renamed
    into place); returns a summary (users, items, interactions, density, files, seconds, folder)."""
    began = time.perf_counter()
    folder = check_target(data_dir, name, overwrite)
    spec.check()
    with disk_full_as_error(folder):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=folder.parent))
    old = None
    try:
        world = generate(spec, progress)
        files = [f"{name}.inter"]
        write_inter(tmp / files[0], world)
        if progress:
            progress("interactions", 4, 4)
        for index, (modality, dim) in enumerate(spec.modalities):
            files.append(f"{modality}_feat.npy")
            write_features(tmp / files[-1], world.item_factors, dim, spec.seed, index, progress,
                           f"{modality}_feat.npy")
        umask_mode(tmp)
        fsync_tree(tmp)
        if folder.exists():
            if not overwrite:
                raise DataError(f"{folder} exists; pass --overwrite to replace it")
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=folder.parent))
            os.rename(folder, old / name)
        os.rename(tmp, folder)
        fsync_dir(folder.parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not folder.exists():
            os.rename(old / name, folder)  # put the replaced folder back
        full = disk_full_error(exc, folder)
        if full is not None:
            raise full from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    n = len(world.users)
    return {"folder": str(folder), "users": spec.users, "items": spec.items, "interactions": n,
            "train": int((world.labels == 0).sum()), "valid": int((world.labels == 1).sum()),
            "test": int((world.labels == 2).sum()), "density": n / (spec.users * spec.items),
            "files": files, "seconds": time.perf_counter() - began}
