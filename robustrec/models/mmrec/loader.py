"""``load_mmrec_model_class(path, class_name)``: an MMRec model file as a robustrec ``Recommender``.

The returned class (``MMRecModel`` subclass) builds the MMRec model as MMRec would
(``Model(config, dataset)``) and maps robustrec's contract onto it:

- ``loss(users, pos, neg)`` → ``calculate_loss`` of the 3 × B batch (tuple losses summed);
- ``ranker()`` → ``full_sort_predict([users])``;
- ``embedding_tables()`` → the ``nn.Embedding`` weights and free ``nn.Parameter`` tables with
  ``n_users`` or ``n_items`` rows, except the tables initialised from the item features
  (``nn.Embedding.from_pretrained(v_feat)``);
- ``set_item_features`` → a new MMRec model constructed with the new features (its kNN graphs
  and other feature-derived state rebuilt by its own constructor), the current weights loaded
  into it; a feature-initialised table of a changed modality becomes the new features plus what
  training added to the old ones;
- ``pre_epoch`` → ``pre_epoch_processing``.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from robustrec.data.dataset import canonical_order
from robustrec.errors import ConfigError, DataError, RobustRecError
from robustrec.models.mmrec.adapter import MMRecDataset, cooccurrence_graph_dict
from robustrec.models.mmrec.config import (SLOTS, ModelYaml, find_model_yaml, mmrec_config, params_class,
                                    read_model_yaml, study_grid)
from robustrec.models.mmrec.imports import first_line, load_module, missing_module_message, shim_modules
from robustrec.models.base import Recommender

_CLASSES: dict[tuple, type] = {}
#: config keys naming graph files some MMRec models read from the dataset folder
GRAPH_FILES = {"item_graph_dict_file": "item", "user_graph_dict_file": "user"}


class ModelBuildError(RobustRecError):
    """An MMRec model's own code failed while it was being built (exit 1)."""

    exit_code = 1


def load_mmrec_model_class(path: Path, class_name: str, config_path: Path | None = None) -> type[Recommender]:
    """The ``Recommender`` subclass wrapping class ``class_name`` of MMRec model file ``path``;
    its hyper-parameters come from ``config_path`` or the model YAML found beside the file
    (``../configs/model/<Class>.yaml``, else ``<Class>.yaml`` in its folder). One-line
    ConfigError for a missing file or class and for a module the file needs that is not there."""
    path = Path(path)
    module, digest = load_module(path)
    target = getattr(module, class_name, None)
    if not isinstance(target, type):
        defined = sorted(n for n, v in vars(module).items()
                         if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__)
        raise ConfigError(f"MMRec model file {path} defines no class {class_name!r}"
                          f"{'; it defines ' + ', '.join(defined) if defined else ''}")
    missing = [m for m in ("calculate_loss", "full_sort_predict") if not callable(getattr(target, m, None))]
    if not issubclass(target, nn.Module) or missing:
        raise ConfigError(f"{class_name} in {path} is not an MMRec model (a GeneralRecommender with "
                          f"calculate_loss and full_sort_predict)")
    yaml_path = find_model_yaml(path, class_name, config_path)
    yaml_digest = hashlib.sha256(yaml_path.read_bytes()).hexdigest()[:16] if yaml_path else ""
    key = (str(path.resolve()), class_name, digest, str(yaml_path), yaml_digest)
    if key not in _CLASSES:
        _CLASSES[key] = _wrapper_class(path, class_name, target, read_model_yaml(yaml_path))
    return _CLASSES[key]


def _wrapper_class(path: Path, class_name: str, target: type, model_yaml: ModelYaml) -> type:
    source = path.read_text(encoding="utf-8", errors="replace")
    multimodal = bool(model_yaml.values.get("is_multimodal_model", True)) and (
        "v_feat" in source or "t_feat" in source)
    attributes = {
        "name": f"mmrec:{path}:{class_name}",
        "paper": f"MMRec model file {path}, class {class_name}",
        "multimodal": multimodal,
        "Params": params_class(class_name, model_yaml, multimodal),
        "param_grid": study_grid(model_yaml),
        "mmrec_class": target,
        "mmrec_yaml": model_yaml,
        "graph_files": tuple(k for k in GRAPH_FILES if k in source),
        "__module__": __name__,
    }
    return type(f"MMRec{class_name}", (MMRecModel,), attributes)


class MMRecModel(Recommender):
    """An MMRec model behind robustrec's contract (see the module docstring)."""

    mmrec_class: type
    mmrec_yaml: ModelYaml
    #: grid key → values, from the YAML's ``hyper_parameters`` (``config.study_grid``)
    param_grid: dict = {}
    graph_files: tuple[str, ...] = ()

    def __init__(self, data, params) -> None:
        super().__init__(data, params)
        self._train = data.train
        self._source = data.source
        seed = torch.initial_seed() % 2**32  # build_model seeded torch; MMRec seeds random and NumPy too
        random.seed(seed)
        np.random.seed(seed)
        self._seed = seed
        built = self.features()
        self.mmrec_model = self._construct(built)
        self._built_from = built
        self._feature_tables = self._find_feature_tables(built)

    # --- features -----------------------------------------------------------------------
    def _register_features(self, data) -> None:
        slots = {slot: getattr(self.params, slot) for slot in SLOTS}
        for slot, modality in slots.items():
            if modality not in data.features and modality != SLOTS[slot]:
                raise DataError(f"--param {slot}={modality}: dataset {data.name!r} has no {modality} features "
                                f"(it has {', '.join(data.modalities) or 'none'})")
        used = canonical_order({m for m in slots.values() if m in data.features})
        if not used:
            raise DataError(f"MMRec model {self.mmrec_class.__name__} takes image features as v_feat and text "
                            f"as t_feat, and dataset {data.name!r} has {', '.join(data.modalities) or 'none'}; "
                            f"map one with --param v_feat=MODALITY or --param t_feat=MODALITY")
        data = data.select_modalities(used) if set(used) != set(data.modalities) else data
        super()._register_features(data)

    def _slots(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
        return {slot: features.get(getattr(self.params, slot)) for slot in SLOTS} if self.multimodal else {}

    def _construct(self, features: dict[str, torch.Tensor]):
        """A new MMRec model on the CPU, built from ``features`` (modality → matrix)."""
        slots = {slot: (None if f is None else f.detach().cpu().clone()) for slot, f in self._slots(features).items()}
        with _scratch_folder() as folder, shim_modules(), _construction_compat():
            config = mmrec_config(self.params, self.mmrec_yaml, {
                "model": self.mmrec_class.__name__, "data_path": f"{folder.parent}/", "dataset": folder.name,
                "device": torch.device("cpu"), "is_multimodal_model": self.multimodal, "seed": self._seed})
            self._place_graph_files(config, folder)
            dataset = MMRecDataset(self._train, slots, config)
            try:
                model = self.mmrec_class(config, dataset)
            except ModuleNotFoundError as exc:
                raise ConfigError(missing_module_message(Path(self.name.split(":")[1]), exc)) from None
            except RobustRecError:
                raise
            except Exception as exc:  # noqa: BLE001  (the model's own code: one line)
                raise ModelBuildError(f"MMRec model {self.mmrec_class.__name__} failed while being built: "
                                      f"{type(exc).__name__}: {first_line(exc)}") from None
        self._config = config
        self._prepared = False
        return model

    def _place_graph_files(self, config, folder: Path) -> None:
        for key in self.graph_files:
            name = config[key]
            if not name:
                continue
            given = Path(self._source) / name if self._source else None
            if given is not None and given.is_file():
                shutil.copyfile(given, folder / name)
            else:
                graph = cooccurrence_graph_dict(self._train, GRAPH_FILES[key])
                np.save(folder / name, np.array(graph, dtype=object), allow_pickle=True)

    def _find_feature_tables(self, features) -> dict[str, str]:
        """Parameter name → modality, for the tables the constructor initialised from features."""
        slots = {slot: f for slot, f in self._slots(features).items() if f is not None}
        found = {}
        for name, weight in self.mmrec_model.named_parameters():
            for slot, matrix in slots.items():
                if weight.shape == matrix.shape and torch.equal(weight.detach().cpu(), matrix.detach().cpu()):
                    found[name] = getattr(self.params, slot)
                    break
        return found

    @property
    def features_at_inference(self) -> bool:
        """Whether the item features reach the scores, found once by trying: the model rebuilt
        with every feature row moved to the next item scores differently (BM3's features only
        shape its training loss, so content stresses leave it unchanged by construction)."""
        if not self.multimodal:
            return False
        if "_features_at_inference" not in self.__dict__:
            from robustrec.models.base import copy_model

            probe = copy_model(self)
            probe.set_item_features({m: f.roll(1, dims=0) for m, f in self.features().items()})
            users = torch.arange(min(self.n_users, 64), device=self.place(torch.zeros(0)).device)
            was_training = self.training
            self.eval()
            probe.eval()
            self.__dict__["_features_at_inference"] = not torch.equal(probe.full_scores(users),
                                                                       self.full_scores(users))
            self.train(was_training)
        return self.__dict__["_features_at_inference"]

    def features_changed(self) -> None:
        """Construct the MMRec model again with the current features; keep the learned weights."""
        self.__dict__.pop("_features_at_inference", None)
        new = self.features()
        changed = {m for m in new if not torch.equal(new[m].cpu(), self._built_from[m].cpu())}
        device = self.place(torch.zeros(0)).device
        state = {k: v.detach().clone() for k, v in self.mmrec_model.state_dict().items()}
        for name, modality in self._feature_tables.items():
            if modality in changed:  # what training added to the old features, on the new ones
                learned = state[name].cpu()
                state[name] = new[modality].cpu().to(learned.dtype) + (learned - self._built_from[modality].cpu())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            python_state, numpy_state = random.getstate(), np.random.get_state()
            try:
                rebuilt = self._construct(new)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)
        rebuilt.load_state_dict({k: v.cpu() for k, v in state.items()}, strict=True)
        self.mmrec_model = rebuilt
        self._built_from = new
        if device.type != "cpu":
            self.to(device)

    # --- the contract -------------------------------------------------------------------
    def loss(self, users, pos, neg):
        if not self._prepared:  # a loss outside training (a loaded model): MMRec's epoch set-up first
            self.pre_epoch()
        out = self.mmrec_model.calculate_loss(torch.stack([users, pos, neg]))
        if isinstance(out, (tuple, list)):
            out = sum(out)
        if out.numel() != 1:
            raise ModelBuildError(f"{self.mmrec_class.__name__}.calculate_loss returned a tensor of shape "
                                  f"{tuple(out.shape)}, not one number")
        out = out.reshape(())
        if not out.requires_grad:  # a model that does not train (ItemKNNCBF): a loss with zero gradients
            out = out + sum(p.sum() * 0.0 for p in self.parameters() if p.requires_grad)
        return out

    def ranker(self):
        """Scores from ``full_sort_predict``. Randomness a model draws while scoring (LGMRec's
        Gumbel-softmax hyperedges) comes from a generator seeded by the model's seed on every
        call, so a model scores the same every time (and so do its reloads and a perturbation
        at strength 0); the global RNG is left as it was."""
        inner, n_items, seed = self.mmrec_model, self.n_items, self._seed
        device = self.place(torch.zeros(0)).device
        cuda = [device] if device.type == "cuda" else []

        def scores(users: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed)
                return inner.full_sort_predict([users, None]).reshape(len(users), n_items)

        return scores

    def embedding_tables(self) -> dict[str, nn.Parameter]:
        tables = {}
        for module_name, module in self.mmrec_model.named_modules():
            builtin = type(module).__module__.startswith("torch.nn") and not isinstance(
                module, (nn.Embedding, nn.ParameterDict, nn.ParameterList))
            if builtin:
                continue
            for name, weight in module.named_parameters(recurse=False):
                full = f"{module_name}.{name}" if module_name else name
                side = self._table_side(full, weight)
                if side is not None and full not in self._feature_tables:
                    tables[f"{side}_{full}"] = weight
        return tables

    def _table_side(self, name: str, weight: torch.Tensor) -> str | None:
        if weight.dim() != 2:
            return None
        rows = weight.shape[0]
        if rows == self.n_users and rows != self.n_items:
            return "user"
        if rows == self.n_items and rows != self.n_users:
            return "item"
        if rows == self.n_users == self.n_items:
            return "user" if "user" in name.lower() or name.lower().startswith("u") else "item"
        if rows == self.n_users + self.n_items:
            return "joint"
        return None

    def pre_epoch(self) -> None:
        self.mmrec_model.pre_epoch_processing()
        self._prepared = True

    def _apply(self, fn, recurse: bool = True):
        super()._apply(fn, recurse)
        inner = self.__dict__.get("_modules", {}).get("mmrec_model")
        if inner is not None:
            device = self.place(torch.zeros(0)).device
            for module in inner.modules():
                if isinstance(getattr(module, "device", None), torch.device):
                    module.device = device
            if getattr(self, "_config", None) is not None:
                self._config["device"] = device
        return self


@contextmanager
def _scratch_folder():
    """A fresh folder under robustrec's cache for the files a model writes or reads while it is
    built (MMRec caches kNN graphs there), removed afterwards: a stale graph built from other
    features can never be read back."""
    from robustrec.cache import cache_root

    root = cache_root() / "mmrec"
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    except OSError:
        folder = Path(tempfile.mkdtemp(prefix="robustrec-mmrec-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _construction_compat():
    """What MMRec constructors assume of their surroundings, only while one runs:

    - ``tensor.cuda()`` (LATTICE, MGCN, SMORE, DA-MRS) returns the tensor unchanged: robustrec
      builds every model on the CPU and moves it with ``model.to(device)``;
    - ``scipy.sparse.dok_matrix._update(dict)`` (FREEDOM, BM3, LGMRec, LayerGCN, ... build their
      adjacency with it), which SciPy 1.12+ no longer has, stores the entries of ``dict``.
    """
    import scipy.sparse as sp

    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    dok = sp.dok_matrix
    patched = not hasattr(dok, "_update") and hasattr(dok((1, 1)), "_dict")
    if patched:
        dok._update = lambda self, entries: self._dict.update(entries)
    try:
        yield
    finally:
        torch.Tensor.cuda = original
        if patched:
            del dok._update
