"""The contract every recommender implements. Models score and compute losses, nothing else."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import copy

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
import torch.nn.functional as F

from robustrec.data.dataset import InteractionData, canonical_order, check_features, missing_modalities_message
from robustrec.errors import ConfigError, DataError

Ranker = Callable[[torch.Tensor], torch.Tensor]


class Recommender(nn.Module, metaclass=abc.ABCMeta):
    """Base class: subclasses set the class attributes and implement ``loss`` and scoring.

    ``loss`` and ``embedding_tables`` are abstract; a subclass also defines ``final_embeddings``
    or overrides ``ranker`` (``contract_problem`` checks it when a class is registered or
    loaded from a file). ``robustrec models check FILE.py:CLASS`` runs the contract's rules
    (``robustrec.models.contract``) on any class.

    - ``loss(users, pos, neg)``: training loss of a batch of BPR triplets.
    - ``ranker()``: precompute everything user-independent, return ``users -> scores``
      (len(users) × n_items). The default uses ``final_embeddings()`` and a dot product.
    - ``embedding_tables()``: the learnable ID embedding tables noise may target.
    - ``set_item_features(features)``: take new item features and rebuild what derives
      from them (kNN graphs, projections caches). Features are non-persistent buffers, so
      checkpoints hold only learned weights.
    - ``set_interactions(train)``: take new training interactions (the ``interactions`` stress)
      and rebuild what scoring derives from them (propagation graphs, user–user graphs);
      models whose scores do not read the interaction graph at inference leave
      ``graph_at_inference`` False and are reported unaffected by construction.

    Devices: ``model.to(device)`` moves the weights, the feature buffers and every tensor the
    model keeps in a plain attribute (graphs, edge patterns: ``_apply``), except the
    ``host_tensors`` its CPU-side sampling draws from. Structures rebuilt later (a new kNN
    graph, an epoch's pruned graph) are built on the CPU and moved with ``place``.

    A multimodal model consumes every modality of the data it is built on (image, text, audio,
    ... any number, in ``canonical_order``), one branch or graph per modality or a concatenation,
    as its paper defines; ``build_model`` hands it the data restricted to the chosen modalities.

    Models with nothing to learn (``trainable = False``: the popularity and item-kNN baselines,
    ``robustrec.models.fitted``) compute everything they score with from the training
    interactions (and item features) in ``__init__``, deterministically: they have no
    parameters, no ``loss`` (it raises a one-line ConfigError), no embedding tables, and an
    empty checkpoint (loading rebuilds them from the run's data). The trainer evaluates them
    once, as one epoch, with no optimizer; step strategies and AMR refuse them.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    #: whether the model consumes item features (any modality); False for ID-only models
    multimodal: ClassVar[bool] = False
    #: whether raw item features enter scoring at inference (caption tests rely on it)
    features_at_inference: ClassVar[bool] = False
    #: attributes holding tensors that stay on the CPU whatever the model's device (weights the
    #: CPU generator samples edges from), so sampling draws the same on every device
    host_tensors: ClassVar[tuple[str, ...]] = ()
    #: whether ``loss`` reads the feature buffers (``feat_<m>``) directly, with no cache derived
    #: by ``features_changed`` in between, so a perturbation of them reaches the training loss
    #: (what AMR adversarial training needs, ``robustrec.training.adversarial``)
    loss_reads_features: ClassVar[bool] = False
    #: whether scores read structures derived from the training interactions at inference (a
    #: propagation graph, a user–user graph); such models implement ``interactions_changed``
    graph_at_inference: ClassVar[bool] = False
    #: False for models fitted in ``__init__`` from the training data (no loss, no optimizer)
    trainable: ClassVar[bool] = True
    Params: ClassVar[type]

    def __init__(self, data: InteractionData, params) -> None:
        super().__init__()
        self.n_users, self.n_items = data.n_users, data.n_items
        self.params = params
        self.feature_names: tuple[str, ...] = ()
        if self.multimodal:
            self._register_features(data)

    # --- the contract -------------------------------------------------------------------
    @abc.abstractmethod
    def loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        """Training loss of a batch of BPR triplets.

        ``users``, ``pos``, ``neg``: int64 tensors of shape (B,) on the model's device (user ids,
        an item each user interacted with, a sampled negative item). Returns a finite scalar
        (0-d tensor) differentiable with respect to the parameters, e.g. ``bpr_loss`` plus
        regularisers.
        """

    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(user, item) representations whose dot product is the score: float tensors of shape
        (n_users, d) and (n_items, d). Define it, or override ``ranker``."""
        raise NotImplementedError(f"{type(self).__name__} defines neither final_embeddings() nor ranker()")

    def ranker(self) -> Ranker:
        """Precompute everything user-independent; return ``users -> scores``, where ``users``
        is an int64 tensor of shape (U,) and the scores a float tensor of shape (U, n_items).
        The default is the dot product of ``final_embeddings()``."""
        users_emb, items_emb = self.final_embeddings()
        items_t = items_emb.t().contiguous()
        return lambda users: users_emb[users] @ items_t

    def full_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for ``users`` (int64, shape (U,)): float, shape (U, n_items)."""
        return self.ranker()(users)

    @abc.abstractmethod
    def embedding_tables(self) -> dict[str, nn.Parameter]:
        """The learnable ID embedding tables noise may target: {"user": Parameter of shape
        (n_users, d), "item": Parameter of shape (n_items, d), ...}; at least one, each a
        parameter of this model."""

    def pre_epoch(self) -> None:
        """Hook called by the trainer before every epoch (e.g. to resample dropped edges)."""

    def epoch_state(self) -> dict:
        """JSON-able state that ``pre_epoch`` carries from one epoch to the next outside the
        weights (e.g. a call counter); saved with resumable training state. Default: none."""
        return {}

    def load_epoch_state(self, state: dict) -> None:
        """Restore what ``epoch_state`` returned (resuming an interrupted fit)."""

    def set_item_features(self, features: dict[str, np.ndarray | torch.Tensor]) -> None:
        """Replace item features (same modalities and shapes) and rebuild derived structures."""
        if not self.multimodal:
            return
        if set(features) != set(self.feature_names):
            raise DataError(f"{self.name} was built with features {sorted(self.feature_names)}, "
                            f"got {sorted(features)}")
        for modality, matrix in features.items():
            if isinstance(matrix, torch.Tensor):  # e.g. an unchanged modality, on the model's device
                matrix = matrix.detach().cpu().numpy()
            matrix = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
            old = getattr(self, f"feat_{modality}")
            if matrix.shape != old.shape:
                raise DataError(f"new {modality} features have shape {tuple(matrix.shape)}, "
                                f"the model was built with {tuple(old.shape)}")
            check_features(modality, matrix.numpy(), self.n_items)
            setattr(self, f"feat_{modality}", matrix.to(device=old.device, dtype=old.dtype))
        self.features_changed()

    def features_changed(self) -> None:
        """Rebuild anything derived from the feature buffers (override where needed)."""

    def set_interactions(self, train: sp.spmatrix) -> None:
        """Replace the training interactions scoring reads (a binary n_users × n_items matrix) and
        rebuild what derives from them. A model with ``graph_at_inference`` False reads none at
        inference: nothing to rebuild, its scores stay bitwise the same. Like features, the new
        structures replace the old attributes (never written in place: copies share them)."""
        train = sp.csr_matrix(train, dtype=np.float32)
        if train.shape != (self.n_users, self.n_items):
            raise DataError(f"{self.name} was built on {self.n_users} users x {self.n_items} items, got "
                            f"interactions of shape {train.shape}")
        train.sort_indices()
        if self.graph_at_inference:
            self.interactions_changed(train)

    def interactions_changed(self, train: sp.csr_matrix) -> None:
        """Rebuild the structures derived from the training interactions (graph models override)."""
        raise NotImplementedError(f"{self.name} sets graph_at_inference but does not rebuild its graph")

    # --- devices ------------------------------------------------------------------------
    def _apply(self, fn, recurse: bool = True):
        """``nn.Module._apply`` (behind ``.to``, ``.cuda``, ``.double`` ...) also converts the
        tensors held in plain attributes of this model and its submodules (graphs, edge
        patterns, dicts of tensors), which ``nn.Module`` would leave behind; the state dict
        (and so the checkpoint file) is unchanged."""
        from robustrec.device import map_tensors, module_internals

        super()._apply(fn, recurse)
        memo: dict[int, object] = {}
        internals = module_internals()
        for module in self.modules() if recurse else [self]:
            for name, value in list(vars(module).items()):
                if name in internals or (module is self and name in self.host_tensors):
                    continue
                module.__dict__[name] = map_tensors(value, fn, memo)
        return self

    def place(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` on this model's device, floating point in its dtype (a no-op on the CPU
        in float32): for structures rebuilt after ``.to()`` (kNN graphs, pruned graphs)."""
        reference = next(self.parameters(), None)
        if reference is None:
            reference = next(self.buffers(), None)  # a fitted model: its buffers say where it is
        if reference is None:
            return tensor
        dtype = reference.dtype if tensor.is_floating_point() else None
        return tensor.to(device=reference.device, dtype=dtype)

    # --- helpers ------------------------------------------------------------------------
    def features(self) -> dict[str, torch.Tensor]:
        return {m: getattr(self, f"feat_{m}") for m in self.feature_names}

    def _register_features(self, data: InteractionData) -> None:
        present = data.modalities
        if not present:
            raise DataError(no_modality_message(self.name, data))
        self.feature_names = present
        for modality in present:
            tensor = torch.from_numpy(np.ascontiguousarray(data.features[modality], dtype=np.float32))
            self.register_buffer(f"feat_{modality}", tensor, persistent=False)


def contract_problem(cls) -> str | None:
    """What keeps class ``cls`` from the contract's shape (None: nothing): abstract methods left
    unimplemented, or neither ``final_embeddings`` nor ``ranker`` defined."""
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        return f"class {cls.__name__} does not implement {', '.join(m + '()' for m in missing)}"
    if cls.final_embeddings is Recommender.final_embeddings and cls.ranker is Recommender.ranker:
        return f"class {cls.__name__} defines neither final_embeddings() nor ranker()"
    return None


def no_modality_message(model: str, data: InteractionData) -> str:
    where = data.source or data.name
    return (f"model {model!r} needs at least one item modality, but dataset {data.name!r} has no "
            f"<modality>_feat.npy file in {where}; build them with `robustrec features extract` "
            f"or train an ID-only model (see `robustrec models`)")


def resolve_modalities(cls: type[Recommender], data: InteractionData, requested=None) -> tuple[str, ...]:
    """The modalities model class ``cls`` will use on ``data``: ``requested`` (all must be loaded),
    or every loaded one when None; () for ID-only models. One-line errors otherwise."""
    if not cls.multimodal:
        if requested:
            raise ConfigError(f"model {cls.name!r} uses no item features: --modalities does not apply")
        return ()
    if requested is None:
        chosen = data.modalities
    else:
        if not requested:
            raise ConfigError(f"--modalities is empty: name at least one of {', '.join(data.modalities) or 'none'}")
        chosen = canonical_order(requested)
        missing = [m for m in chosen if m not in data.features]
        if missing:
            raise DataError(missing_modalities_message(data, missing))
    if not chosen:
        raise DataError(no_modality_message(cls.name, data))
    return chosen


def check_params(model: str, checks) -> None:
    """A model's ``Params.__post_init__`` helper: raise ``ConfigError("<model>: <message>")`` for
    the first ``(ok, message)`` pair of ``checks`` whose condition is false."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{model}: {message}")


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Mean of −log σ(pos − neg), computed stably."""
    return F.softplus(neg_scores - pos_scores).mean()


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """Σ ||t||² / (2 · batch size): the usual BPR regulariser on the batch's ego embeddings."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2 * batch)


def joint_xavier_tables(n_users: int, n_items: int, dim: int) -> tuple[nn.Parameter, nn.Parameter]:
    """User and item tables cut from one (n_users + n_items) × dim Xavier-normal matrix, the
    initialisation MMGCN and GRCN use (the fan-in counts users and items together)."""
    joint = nn.init.xavier_normal_(torch.empty(n_users + n_items, dim))
    return nn.Parameter(joint[:n_users].clone()), nn.Parameter(joint[n_users:].clone())


def copy_model(model):
    """Deep copy of ``model`` whose learnable parameters are independent of the original.

    Non-learnable tensors (feature buffers, propagation graphs) are shared with the original
    to save memory: a perturbation must replace them (``set_item_features``), never write
    into them in place.
    """
    shared: dict[int, object] = {}
    _collect_constant_tensors(model, shared, set())
    return copy.deepcopy(model, shared)


def _collect_constant_tensors(obj, shared: dict[int, object], seen: set[int]) -> None:
    """Every non-parameter tensor reachable from ``obj`` through attributes and containers."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        if not isinstance(obj, torch.nn.Parameter):
            shared[id(obj)] = obj
        return
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple, set)):
        children = obj
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        children = vars(obj).values()
    else:
        return
    for child in list(children):
        _collect_constant_tensors(child, shared, seen)
