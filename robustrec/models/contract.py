"""The model contract as named rules (docs/design.md §5), run on a tiny synthetic world.

``tests/test_model_contract.py`` runs every rule on every built-in model and
``robustrec models check FILE.py:CLASS`` runs them on a user's class: one implementation.
Each rule builds what it needs from a ``Subject`` (the class and the world) and returns a one-line
reason when it holds; it raises ``ContractFailure`` with a one-line reason when it does not
(any other exception is a failure too, reported by ``check_rules`` as its type and message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from robustrec.data.dataset import InteractionData
from robustrec.errors import DataError


class ContractFailure(Exception):
    """A rule that does not hold; its message is the one-line reason."""


@dataclass
class Subject:
    """The class under test and the world it is built on (``tiny_world``)."""

    cls: type
    data: InteractionData
    params: dict | None = None

    def build(self, seed: int = 0):
        from robustrec.config import from_dict
        from robustrec.models.base import resolve_modalities

        data = self.data
        chosen = resolve_modalities(self.cls, data)
        if chosen != data.modalities:
            data = data.select_modalities(chosen)
        torch.manual_seed(seed)
        return self.cls(data, from_dict(self.cls.Params, dict(self.params or {}), what=self.cls.name))

    def batch(self, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        users, items = (torch.from_numpy(a[:size]) for a in self.data.train_pairs())
        return users, items, (items + 1) % self.data.n_items


@dataclass
class RuleResult:
    rule: str
    ok: bool
    reason: str


def tiny_world(seed: int = 3) -> InteractionData:
    """80 users, 60 items, image and text features: enough for every rule, built in milliseconds."""
    from robustrec.data.synthetic import SyntheticSpec, make_synthetic

    spec = SyntheticSpec(n_users=80, n_items=60, n_clusters=3, mean_interactions=10, image_dim=12, text_dim=8,
                         feature_noise=0.3, seed=seed)
    return make_synthetic(spec, name="contract").data


def _fail(reason: str):
    raise ContractFailure(reason)


def _scores(model, users: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.full_scores(users)


# --- the rules -------------------------------------------------------------------------------
def finite_loss(subject: Subject) -> str:
    """``loss`` is a finite scalar whose gradient reaches the parameters, finite everywhere."""
    model = subject.build()
    model.train()
    model.pre_epoch()
    loss = model.loss(*subject.batch())
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        _fail(f"loss() must return a 0-d tensor, got {_shape(loss)}")
    if not torch.isfinite(loss):
        _fail(f"loss() is not finite ({loss.item()})")
    if not loss.requires_grad:
        _fail("loss() is not differentiable (no gradient reaches any parameter)")
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        _fail("loss() gives no parameter a gradient")
    if not all(bool(torch.isfinite(g).all()) for g in grads):
        _fail("loss() has non-finite gradients")
    return f"loss {loss.item():.4g}, {len(grads)} parameters get finite gradients"


def _shape(value) -> str:
    return f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__


def ranker_shape(subject: Subject) -> str:
    """``full_scores(users)`` is a finite (len(users), n_items) tensor, equal on a second call."""
    model = subject.build()
    users = torch.tensor([0, 5, subject.data.n_users - 1])
    first, second = _scores(model, users), _scores(model, users)
    expected = (len(users), subject.data.n_items)
    if not isinstance(first, torch.Tensor) or tuple(first.shape) != expected:
        _fail(f"full_scores of 3 users must have shape {expected}, got {_shape(first)}")
    if not bool(torch.isfinite(first).all()):
        _fail("full_scores has non-finite values")
    if not torch.equal(first, second):
        _fail("full_scores differs between two calls in eval mode")
    return f"scores {expected}, finite, equal on a second call"


def embedding_tables(subject: Subject) -> str:
    """``embedding_tables()`` names at least one learnable parameter of the model."""
    model = subject.build()
    tables = model.embedding_tables()
    if not isinstance(tables, dict) or not tables:
        _fail("embedding_tables() must return a non-empty dict of the ID tables noise may target")
    own = {id(p) for p in model.parameters()}
    bad = [name for name, table in tables.items() if id(table) not in own or not table.requires_grad]
    if bad:
        _fail(f"embedding_tables() {bad[0]!r} is not a learnable parameter of the model")
    return f"tables {', '.join(tables)}"


def features_iff_inference(subject: Subject) -> str:
    """New item features change the scores iff ``features_at_inference``; restoring them
    restores the scores; a wrong shape is refused."""
    model = subject.build()
    cls = subject.cls
    if not cls.multimodal:
        if cls.features_at_inference:
            _fail("features_at_inference = True, but multimodal = False: the model has no features")
        return "ID-only model: no features"
    users = torch.arange(min(20, subject.data.n_users))
    before = _scores(model, users)
    rng = np.random.default_rng(0)
    original = {m: f.clone() for m, f in model.features().items()}
    model.set_item_features({m: rng.normal(size=tuple(f.shape)).astype(np.float32) for m, f in original.items()})
    after = _scores(model, users)
    model.set_item_features({m: f.numpy() for m, f in original.items()})
    restored = _scores(model, users)
    if not torch.allclose(restored, before, atol=1e-5):
        _fail("restoring the original features does not restore the scores (set_item_features "
              "must rebuild everything derived from them)")
    changed = not torch.allclose(before, after)
    if cls.features_at_inference and not changed:
        _fail("features_at_inference = True, but new features leave the scores unchanged")
    if not cls.features_at_inference and not torch.equal(before, after):
        _fail("features_at_inference = False, but new features change the scores")
    bad = {m: np.zeros((f.shape[0] + 1, f.shape[1]), np.float32) for m, f in original.items()}
    try:
        model.set_item_features(bad)
    except DataError:
        pass
    else:
        _fail("set_item_features accepts features with one row too many (expected a DataError)")
    return "scores follow the features" if changed else "scores ignore the features, as declared"


def loss_reads_features(subject: Subject) -> str:
    """``loss_reads_features`` is honest: True iff the loss has a gradient with respect to the
    feature buffers themselves (with no cache rebuilt in between; what AMR perturbs)."""
    cls = subject.cls
    if not cls.multimodal:
        if cls.loss_reads_features:
            _fail("loss_reads_features = True, but multimodal = False: the model has no features")
        return "ID-only model: no features"
    model = subject.build()
    model.train()
    model.pre_epoch()
    points = {m: f.detach().clone().requires_grad_(True) for m, f in model.features().items()}
    old = dict(model._buffers)
    try:
        for m, tensor in points.items():
            model._buffers[f"feat_{m}"] = tensor
        with torch.enable_grad():
            loss = model.loss(*subject.batch())
            grads = torch.autograd.grad(loss, list(points.values()), allow_unused=True)
    finally:
        for m in points:
            model._buffers[f"feat_{m}"] = old[f"feat_{m}"]
    reached = [m for m, g in zip(points, grads) if g is not None and bool(g.abs().sum() > 0)]
    if cls.loss_reads_features and not reached:
        _fail("loss_reads_features = True, but the loss has no gradient with respect to feat_<modality>")
    if not cls.loss_reads_features and reached:
        _fail(f"loss_reads_features = False, but the loss reads feat_{reached[0]} directly; set it to True")
    return f"the loss reads {', '.join(reached)}" if reached else "the loss reads no feature buffer, as declared"


def copy_and_restore(subject: Subject) -> str:
    """``copy_model`` gives independent parameters (noise on the copy leaves the original's scores
    bitwise equal), and the state dict restores the scores bitwise in a fresh build."""
    from robustrec.models.base import copy_model

    model = subject.build(seed=1)
    users = torch.arange(min(20, subject.data.n_users))
    before = _scores(model, users)
    copy = copy_model(model)
    with torch.no_grad():
        for table in copy.embedding_tables().values():
            table.add_(torch.randn_like(table))
    if not torch.equal(_scores(model, users), before):
        _fail("changing the copy's embedding tables changed the original's scores (shared parameters)")
    if torch.equal(_scores(copy, users), before):
        _fail("noise on the copy's embedding tables leaves its scores unchanged")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    fresh = subject.build(seed=2)
    fresh.load_state_dict(state, strict=True)
    if not torch.equal(_scores(fresh, users), before):
        _fail("a fresh build loading the state dict scores differently (state kept outside the weights?)")
    return "copies are independent; the state dict restores the scores"


def device_move(subject: Subject) -> str:
    """``.to()`` moves every tensor the model holds (bar ``host_tensors``): the loss and the
    scores run without mixing devices (or, without a GPU, dtypes after ``.to(float64)``)."""
    from robustrec.device import tensors_off_device

    model = subject.build()
    if torch.cuda.is_available():
        target, dtype, what = torch.device("cuda"), None, "cuda"
        model.to(target)
    else:
        target, dtype, what = torch.device("cpu"), torch.float64, "float64 (no GPU)"
        model.to(torch.float64)
    left = tensors_off_device(model, target, dtype, skip=model.host_tensors)
    if left:
        _fail(f".to({what}) leaves {left[0]} behind" + (f" and {len(left) - 1} more" if len(left) > 1 else ""))
    users, pos, neg = (t.to(target) for t in subject.batch())
    with _mixed_dtypes() as mode:
        model.train()
        model.pre_epoch()
        loss = model.loss(users, pos, neg)
        loss.backward()
        scores = _scores(model, users[:5])
    if mode.mixed:
        _fail(f"after .to({what}) {sorted(mode.mixed)[0]} mixes dtypes (a tensor the move left behind)")
    if scores.device.type != target.type or (dtype is not None and scores.dtype != dtype):
        _fail(f"after .to({what}) the scores are {scores.dtype} on {scores.device}")
    return f"moved to {what}; loss and scores follow"


def bitwise_determinism(subject: Subject) -> str:
    """Two builds with one seed, trained a few steps on the same batches (``pre_epoch`` each
    time), have bitwise equal scores."""
    def trained():
        model = subject.build(seed=5)
        torch.manual_seed(5)
        users, pos, neg = subject.batch(128)
        for step in range(3):  # plain SGD steps (torch.optim would import the compiler stack)
            model.train()
            model.pre_epoch()
            model.zero_grad()
            model.loss(users, pos, neg).backward()
            with torch.no_grad():
                for parameter in model.parameters():
                    if parameter.grad is not None:
                        parameter.add_(parameter.grad, alpha=-0.1)
        return _scores(model, torch.arange(min(20, subject.data.n_users)))

    if not torch.equal(trained(), trained()):
        _fail("two builds with the same seed, trained alike, score differently (unseeded randomness?)")
    return "same seed, same steps: bitwise equal scores"


def _mixed_dtypes():
    """A torch function mode recording (in ``.mixed``) the functions called with floating-point
    tensors of more than one dtype (nested lists of tensors included)."""
    from torch.overrides import TorchFunctionMode

    class MixedDtypes(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.mixed: set[str] = set()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            dtypes = {t.dtype for t in _tensors([args, list(kwargs.values())]) if t.is_floating_point()}
            if len(dtypes) > 1:
                self.mixed.add(getattr(func, "__name__", str(func)))
            return func(*args, **kwargs)

    return MixedDtypes()


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)


#: every rule, in the order ``models check`` prints them: (name, function)
RULES: tuple[tuple[str, Callable[[Subject], str]], ...] = (
    ("finite loss", finite_loss),
    ("ranker shape", ranker_shape),
    ("embedding tables", embedding_tables),
    ("features iff inference", features_iff_inference),
    ("loss_reads_features", loss_reads_features),
    ("copy and restore", copy_and_restore),
    ("device move", device_move),
    ("bitwise determinism", bitwise_determinism),
)


def run_rule(rule: Callable[[Subject], str], subject: Subject) -> tuple[bool, str]:
    """(holds, one-line reason) of one rule; an exception the rule did not expect is a failure
    named by its type and first line."""
    try:
        return True, rule(subject)
    except ContractFailure as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - a user's model may raise anything
        first = (str(exc).strip().splitlines() or [""])[0]
        return False, f"{type(exc).__name__}: {first}" + _where(exc)


def _where(exc: BaseException) -> str:
    """`` (file.py line N)``: the deepest frame outside torch, for a user's traceback."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/torch/" not in f.filename
              and not f.filename.endswith("contract.py")]
    return f" ({frames[-1].filename.rsplit('/', 1)[-1]} line {frames[-1].lineno})" if frames else ""


def check_class(cls: type, data: InteractionData | None = None, params: dict | None = None) -> list[RuleResult]:
    """Every rule on ``cls`` (a building failure is one failed "builds" result, and no more)."""
    subject = Subject(cls, data if data is not None else tiny_world(), params)
    ok, reason = run_rule(_builds, subject)
    if not ok:
        return [RuleResult("builds", False, reason)]
    results = [RuleResult("builds", True, reason)]
    for name, rule in RULES:
        ok, reason = run_rule(rule, subject)
        results.append(RuleResult(name, ok, reason))
    return results


def _builds(subject: Subject) -> str:
    model = subject.build()
    n = sum(p.numel() for p in model.parameters())
    return f"{n:,} parameters on {subject.data.n_users} users, {subject.data.n_items} items"
