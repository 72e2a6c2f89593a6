"""`features.json`: which encoder made each `<modality>_feat.npy`, how, and how much of it is real.

    {"format": 1, "modalities": {"image": {"encoder": "efficientnet-lite0", "encoder_version": "...",
     "dim": 1280, "preprocessing": {...}, "fill": "mean", "items": 1994, "covered": 1994,
     "skipped": {"unreadable": 0, ...}, "feat_sha256": "..."}}}

`encoder_for(folder, modality)` builds the recorded encoder again and refuses one that differs
(id, version or dim) — how edited photos and texts get re-encoded with the very same encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robustrec.errors import ConfigError, DataError
from robustrec.files import read_json
from robustrec.files import write_json_atomic  # noqa: F401  (features.extract writes its JSON with it)

SIDECAR = "features.json"
FORMAT = 1


def sidecar_path(folder: str | Path) -> Path:
    return Path(folder) / SIDECAR


def read_sidecar(folder: str | Path) -> dict[str, Any]:
    """The sidecar of `folder`, or an empty one (`{"format": 1, "modalities": {}}`) if absent."""
    path = sidecar_path(folder)
    if not path.exists():
        return {"format": FORMAT, "modalities": {}}
    sidecar = read_json(path, "feature sidecar", DataError)
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT or not isinstance(sidecar.get("modalities"), dict):
        raise DataError(f"{path}: expected {{'format': {FORMAT}, 'modalities': {{...}}}}")
    return sidecar


def modality_entry(encoder: Any, *, fill: str, items: int, covered: int, skipped: dict[str, int],
                   feat_sha256: str) -> dict[str, Any]:
    return {"encoder": encoder.encoder_id, "encoder_version": encoder.version, "dim": int(encoder.dim),
            "preprocessing": encoder.preprocessing, "fill": fill, "items": int(items), "covered": int(covered),
            "skipped": dict(skipped), "feat_sha256": feat_sha256}


def check_encoder(folder: str | Path, modality: str, encoder: Any) -> dict[str, Any]:
    """The sidecar entry of `modality`, if `encoder` matches it (id, version, dim); else ConfigError."""
    entry = recorded_entry(folder, modality)
    now = {"encoder": encoder.encoder_id, "encoder_version": encoder.version, "dim": int(encoder.dim)}
    diffs = [f"{key} {now[key]!r} now, {entry.get(key)!r} recorded" for key in now if now[key] != entry.get(key)]
    if diffs:
        raise ConfigError(f"the {modality} encoder available now does not match {sidecar_path(folder)}: "
                          + "; ".join(diffs))
    return entry


def recorded_entry(folder: str | Path, modality: str) -> dict[str, Any]:
    entry = read_sidecar(folder)["modalities"].get(modality)
    if not isinstance(entry, dict) or "encoder" not in entry:
        raise DataError(f"{sidecar_path(folder)} records no {modality} encoder "
                        f"(extract features with `robustrec features extract`)")
    return entry


def encoder_for(folder: str | Path, modality: str, *, device: str | None = None) -> Any:
    """The encoder recorded for `modality` in `folder/features.json`, built again and checked."""
    from robustrec.features.registry import make_encoder

    entry = recorded_entry(folder, modality)
    encoder = make_encoder(modality, entry["encoder"], device=device)
    check_encoder(folder, modality, encoder)
    return encoder
