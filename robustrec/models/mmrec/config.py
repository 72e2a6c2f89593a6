"""The MMRec configuration of a model file: MMRec's shared defaults, the model's YAML, then
robustrec's ``--param`` values; the typed ``Params`` dataclass and the YAML's grid.

MMRec's configurator merges ``configs/overall.yaml``, the dataset YAML and the model YAML; keys
named in the model YAML's ``hyper_parameters`` list hold a grid (every combination is trained),
other list values are plain lists (``weight_size: [64, 64]``). Here a single model takes the first
value of each grid key (or ``--param``); ``param_grid`` keeps the whole grid for studies.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from pathlib import Path
from typing import Any

from robustrec.errors import ConfigError

#: MMRec's shared defaults (the values of its overall.yaml and dataset YAMLs that model code reads)
MMREC_DEFAULTS: dict[str, Any] = {
    "gpu_id": 0, "use_gpu": False, "seed": 999, "inter_splitting_label": "x_label",
    "filter_out_cod_start_users": True, "is_multimodal_model": True, "checkpoint_dir": "saved",
    "embedding_size": 64, "weight_decay": 0.0, "req_training": True, "epochs": 1000, "stopping_step": 20,
    "train_batch_size": 2048, "learner": "adam", "learning_rate": 0.001, "learning_rate_scheduler": [1.0, 50],
    "eval_step": 1, "training_neg_sample_num": 1, "use_neg_sampling": True, "use_full_sampling": False,
    "use_neighborhood_loss": False, "NEG_PREFIX": "neg__", "USER_ID_FIELD": "userID", "ITEM_ID_FIELD": "itemID",
    "TIME_FIELD": "timestamp", "field_separator": "\t", "metrics": ["Recall", "NDCG", "Precision", "MAP"],
    "topk": [5, 10, 20, 50], "valid_metric": "Recall@20", "eval_batch_size": 4096, "use_raw_features": False,
    "end2end": False, "vision_feature_file": "image_feat.npy", "text_feature_file": "text_feat.npy",
    "user_graph_dict_file": "user_graph_dict.npy", "hyper_parameters": [],
}
#: keys that configure MMRec's trainer or data loading, not the model: robustrec's own flags
#: (--lr, --weight-decay, --epochs, --batch-size ...) set those, so they are no ``--param``
TRAINER_KEYS = frozenset({
    "learning_rate", "learning_rate_scheduler", "weight_decay", "epochs", "stopping_step", "train_batch_size",
    "learner", "eval_step", "use_neg_sampling", "use_full_sampling", "req_training", "training_neg_sample_num",
    "seed", "eval_batch_size", "valid_metric", "clip_grad_norm", "topk", "metrics", "hyper_parameters",
    "use_gpu", "gpu_id", "alpha1", "alpha2", "beta_mg", "end2end", "is_multimodal_model", "use_neighborhood_loss",
})
#: the model keys of MMRec's overall.yaml that every model may read
SHARED_MODEL_KEYS = ("embedding_size",)
#: robustrec's modality → MMRec feature slot mapping, as ``--param`` fields of multimodal models
SLOTS = {"v_feat": "image", "t_feat": "text"}
#: MMRec trainer keys a study grid may hold, under robustrec's TrainConfig names
GRID_TRAINER_KEYS = {"learning_rate": "lr", "weight_decay": "weight_decay"}
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class MMRecConfig:
    """What MMRec models index: ``config['key']`` (None for a missing key, as in MMRec),
    ``'key' in config``, item assignment and ``final_config_dict``."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.final_config_dict = dict(values)

    def __getitem__(self, key):
        return self.final_config_dict.get(key)

    def __setitem__(self, key, value) -> None:
        self.final_config_dict[key] = value

    def __contains__(self, key) -> bool:
        return key in self.final_config_dict

    def get(self, key, default=None):
        return self.final_config_dict.get(key, default)

    def __str__(self) -> str:
        return "\n".join(f"{k}={v}" for k, v in self.final_config_dict.items())


@dataclasses.dataclass(frozen=True)
class ModelYaml:
    """A model YAML read: ``values`` (grid keys hold their first value), ``grid`` (key → every
    value, the keys of ``hyper_parameters``), the file (None: none found)."""

    values: dict[str, Any]
    grid: dict[str, list]
    path: Path | None


def find_model_yaml(model_file: Path, class_name: str, explicit: Path | None = None) -> Path | None:
    """``explicit``, else MMRec's layout ``<file>/../../configs/model/<Class>.yaml``, else
    ``<Class>.yaml`` beside the file; None when there is none."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigError(f"MMRec model YAML {explicit} not found")
        return Path(explicit)
    folder = Path(model_file).resolve().parent
    for candidate in (folder.parent / "configs" / "model" / f"{class_name}.yaml", folder / f"{class_name}.yaml"):
        if candidate.is_file():
            return candidate
    return None


def read_model_yaml(path: Path | None) -> ModelYaml:
    if path is None:
        return ModelYaml({}, {}, None)
    try:
        import yaml
    except ImportError:
        raise ConfigError("reading MMRec model YAML files needs PyYAML: pip install pyyaml") from None
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read MMRec model YAML {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"MMRec model YAML {path} is not a mapping of keys to values")
    raw = {str(k).strip(): _number(v) for k, v in raw.items()}
    grid_keys = raw.pop("hyper_parameters", None) or []
    if not isinstance(grid_keys, list):
        raise ConfigError(f"MMRec model YAML {path}: hyper_parameters must be a list of keys")
    grid, values = {}, dict(raw)
    for key in grid_keys:
        if key not in raw:
            continue  # e.g. "seed": MMRec's own seeds, robustrec's --seed here
        options = raw[key] if isinstance(raw[key], list) else [raw[key]]
        if not options:
            raise ConfigError(f"MMRec model YAML {path}: {key} is an empty grid")
        grid[key] = options
        values[key] = options[0]
    return ModelYaml(values, grid, Path(path))


def study_grid(model_yaml: ModelYaml) -> dict[str, list]:
    """The YAML's grid as a study searches it: model keys as they are, MMRec's ``learning_rate``
    and ``weight_decay`` as ``lr`` and ``weight_decay``, other trainer keys (seed ...) left out."""
    grid = {}
    for key, values in model_yaml.grid.items():
        if key in GRID_TRAINER_KEYS:
            grid[GRID_TRAINER_KEYS[key]] = list(values)
        elif key not in TRAINER_KEYS and key.isidentifier():
            grid[key] = list(values)
    return grid


def _number(value):
    """MMRec reads 1e-04 as a number (PyYAML's YAML 1.1 reads it as a string)."""
    if isinstance(value, list):
        return [_number(v) for v in value]
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def params_class(class_name: str, model_yaml: ModelYaml, multimodal: bool) -> type:
    """The typed ``Params`` of an MMRec model: one field per model key of its YAML (and
    ``embedding_size``), each typed from its value(s); multimodal models add the feature slots
    ``v_feat`` / ``t_feat`` (which robustrec modality fills them)."""
    values = {"embedding_size": MMREC_DEFAULTS["embedding_size"], **model_yaml.values}
    fields = []
    for key, value in values.items():
        if key in TRAINER_KEYS or key.endswith("_file") or not key.isidentifier() or keyword.iskeyword(key):
            continue
        if key in SLOTS:
            continue
        kind, default = _field_type(key, value, model_yaml.grid.get(key))
        fields.append((key, kind, default))
    if multimodal:
        fields += [(slot, str, dataclasses.field(default=modality)) for slot, modality in SLOTS.items()]
    return dataclasses.make_dataclass(f"{class_name}Params", fields, frozen=False)


def _field_type(key: str, value, grid: list | None):
    if grid is not None:
        return _scalar_type(grid), dataclasses.field(default=value)
    if isinstance(value, list):
        inner = _scalar_type(value) if value else str
        return list[inner], dataclasses.field(default_factory=lambda v=tuple(value): list(v))
    return _scalar_type([value]), dataclasses.field(default=value)


def _scalar_type(options: list):
    if all(isinstance(v, bool) for v in options):
        return bool
    if all(isinstance(v, int) and not isinstance(v, bool) for v in options):
        return int
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in options):
        return float
    if any(v is None for v in options):
        return str | None
    if all(isinstance(v, str) for v in options):
        return str
    raise ConfigError(f"MMRec YAML values {options} mix types robustrec cannot type (use one type per key)")


def mmrec_config(params, model_yaml: ModelYaml, extra: dict[str, Any]) -> MMRecConfig:
    """MMRec's defaults, the YAML (grid keys at their chosen value), ``params``, then ``extra``
    (device, data paths, model name)."""
    chosen = dataclasses.asdict(params)
    for slot in SLOTS:
        chosen.pop(slot, None)
    return MMRecConfig({**MMREC_DEFAULTS, **model_yaml.values, **chosen, **extra})
