"""The typed training configuration; CLI flags map 1:1 onto its fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from robustrec.config import MAX_SEED
from robustrec.errors import ConfigError
from robustrec.training.strategies import validate_mirror

OPTIMIZER_NAMES = ("adam", "sgd", "rmsprop", "adagrad")
#: ``--step``: the base step (mg wraps any of plain/sam/asam; sgbd is a mirror step itself)
STEPS = ("plain", "mg", "sam", "asam", "sgbd")
#: ρ when ``--rho`` is not given: SAM's and SGBD's usual 0.05, ASAM's 0.5 (Kwon et al.)
DEFAULT_RHO = {"sam": 0.05, "asam": 0.5, "sgbd": 0.05}


#: the TrainConfig fields that say *what* is trained (``ModelSpec``); the rest say *how*
MODEL_SPEC_FIELDS = ("model", "dataset", "data_dir", "modalities", "model_params", "model_source")


@dataclass(frozen=True)
class ModelSpec:
    """What a run trains: the model, its data and modalities, and its hyper-parameters.

    Two runs with equal specs differ only in how they were trained (optimizer, step strategy,
    seed, ...), which is what MG-vs-plain comparisons pair on. ``config.json`` stays one flat
    TrainConfig so that every run folder written so far still loads.
    """

    model: str
    dataset: str
    data_dir: str
    modalities: tuple[str, ...] | None
    model_params: tuple[tuple[str, str], ...]
    #: the model's source identity (``robustrec.models.sources``) as sorted items; None: built in
    source: tuple[tuple[str, str], ...] | None = None

    def build(self, data, seed: int):
        """The model on ``data`` with weights seeded by ``seed``; a model from a file is built
        only from the very source recorded (a ConfigError line when the file changed)."""
        from robustrec.models import build_model
        from robustrec.models.sources import source_changed_message

        source = dict(self.source) if self.source else None
        if source:
            problem = source_changed_message(source, f"model {self.model}")
            if problem:
                raise ConfigError(problem)
        return build_model(self.model, data, dict(self.model_params), seed=seed,
                           modalities=list(self.modalities) if self.modalities is not None else None,
                           sha256=source["sha256"] if source else None)


@dataclass
class TrainConfig:
    #: a model reference (``robustrec.models.sources``): a name, PATH.py:CLASS or mmrec:PATH.py:CLASS
    #: (``validate`` makes a PATH absolute)
    model: str = "lightgcn"
    dataset: str = "synthetic"
    data_dir: str = "data"
    model_params: dict[str, str] = field(default_factory=dict)
    #: item modalities a multimodal model uses; None: every <modality>_feat.npy of the dataset
    #: (train resolves and records the actual list in the run folder)
    modalities: list[str] | None = None
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 2048
    epochs: int = 1000
    patience: int = 20
    seed: int = 0
    mg: bool = False
    mg_form: str = "optimizer"
    alpha1: float = 1.0
    alpha2: float = 0.1
    beta: int = 3
    sam_rho: float = 0.0
    step: str = "plain"
    #: "amr": AMR adversarial training on the item features (Tang et al., TKDE 2019)
    adversarial: str = "none"
    #: AMR budget ε (per row, relative to the modality's mean row norm) and weight λ
    adv_eps: float = 0.1
    adv_reg: float = 1.0
    valid_metric: str = "recall@20"
    eval_batch_size: int = 0
    #: also evaluate the test split after every epoch, into the history (a study's protocol
    #: audit reads it; nothing in training ever does)
    track_test: bool = False
    #: where a model from a file comes from: kind, absolute path, class and the file's SHA-256
    #: (pinned by ``validate``; None for built-in models). Loading a run refuses another content.
    model_source: dict | None = None

    @classmethod
    def with_defaults(cls, values: dict) -> dict:
        """``values`` (a stored config) with the default of every field it lacks: a config written
        before a field existed compares as if it had that field's default."""
        import dataclasses

        missing = {f.name: (f.default_factory() if f.default is dataclasses.MISSING else f.default)
                   for f in dataclasses.fields(cls) if f.name not in values}
        return {**values, **missing}

    def validate(self) -> "TrainConfig":
        """Check every field (one ConfigError line); a model from a file gets its path made
        absolute and its source identity pinned (``model_source``) unless one is recorded."""
        self._pin_model_source()
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.patience >= 1, f"--patience must be >= 1, got {self.patience}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 0, f"eval_batch_size must be >= 0 (0 = automatic), got {self.eval_batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (self.sam_rho >= 0, f"--rho must be >= 0, got {self.sam_rho}"),
            (0 <= self.seed <= MAX_SEED, f"--seed must be between 0 and 2^63-1, got {self.seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        self._check_numbers(("lr", "--lr"), ("weight_decay", "--weight-decay"), ("alpha1", "--alpha1"),
                            ("alpha2", "--alpha2"), ("sam_rho", "--rho"))
        metric, _, k = self.valid_metric.partition("@")
        if metric not in ("recall", "precision", "map", "ndcg") or k not in ("5", "10", "20", "50"):
            raise ConfigError(f"--valid-metric must look like recall@20 (metric@K, K in 5/10/20/50), "
                              f"got {self.valid_metric!r}")
        if self.modalities is not None:
            from robustrec.data.dataset import check_modality_name

            for name in self.modalities:
                check_modality_name(name)
            if len(set(self.modalities)) != len(self.modalities):
                raise ConfigError(f"--modalities names a modality twice: {','.join(self.modalities)}")
        if self.optimizer.lower() not in OPTIMIZER_NAMES:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
        if self.step not in STEPS:
            raise ConfigError(f"unknown --step {self.step!r}; choose one of {', '.join(STEPS)}")
        if self.step in ("sam", "asam") and not self.sam_rho > 0:
            raise ConfigError(f"--step {self.step} needs --rho > 0, got {self.sam_rho}")
        if self.step == "sgbd" and not self.mg:
            raise ConfigError("--step sgbd is a Mirror Gradient step: it needs mg (set by --step sgbd)")
        if self.mg:
            validate_mirror(self.alpha1, self.alpha2, self.beta, self.mg_form)
        self._validate_adversarial()
        self._check_numbers(("adv_eps", "--adv-eps"), ("adv_reg", "--adv-reg"))
        if self.model_params:  # names, types and finite floats (--param reg_weight=inf), before the data loads
            from robustrec.config import from_dict
            from robustrec.models import get_model_class

            from_dict(get_model_class(self.model).Params, dict(self.model_params), self.model)
        return self

    def _pin_model_source(self) -> None:
        from robustrec.models.sources import parse_reference, source_identity

        reference = parse_reference(self.model)
        if reference.kind != "name":
            self.model = reference.text
        if self.model_source is None:
            self.model_source = source_identity(self.model)

    def _check_numbers(self, *fields: tuple[str, str]) -> None:
        """Each (field, flag) finite and inside its range of `robustrec.limits.LIMITS`, even when the
        field is unused: the config is saved with the run, and JSON has no Infinity or NaN."""
        from robustrec.limits import check_number

        for name, flag in fields:
            check_number(getattr(self, name), flag, f"train.{name.removeprefix('sam_')}")

    @property
    def model_spec(self) -> ModelSpec:
        """What this config trains (the rest of its fields say how)."""
        return ModelSpec(self.model, self.dataset, self.data_dir,
                         tuple(self.modalities) if self.modalities is not None else None,
                         tuple(sorted((k, str(v)) for k, v in self.model_params.items())),
                         tuple(sorted((k, str(v)) for k, v in self.model_source.items())) if self.model_source else None)

    def training_settings(self) -> dict:
        """How the model is trained: every field outside the model spec."""
        import dataclasses

        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in MODEL_SPEC_FIELDS}

    def _validate_adversarial(self) -> None:
        from robustrec.training.adversarial import METHODS, amr_refusal, supports_amr

        if self.adversarial not in METHODS:
            raise ConfigError(f"unknown --adversarial {self.adversarial!r}; choose one of {', '.join(METHODS)}")
        self.objective()  # checks the budget and weight even when unused
        if self.adversarial == "amr":
            from robustrec.models import get_model_class

            cls = get_model_class(self.model)
            if not supports_amr(cls):
                raise ConfigError(amr_refusal(cls))

    def objective(self):
        """The loss wrapper the trainer composes with the step strategy (None: the model's loss)."""
        from robustrec.training.adversarial import AdversarialFeatureLoss

        amr = AdversarialFeatureLoss(self.adv_eps, self.adv_reg)
        return amr if self.adversarial == "amr" else None

    def strategy(self):
        """The step strategy this config asks for: plain, SAM or ASAM, optionally wrapped by MG;
        or SGBD (sharpness-aware MG)."""
        from robustrec.training.strategies import (AdaptiveSharpnessAwareStep, MirrorGradientStep, PlainStep,
                                                   SharpMirrorStep, SharpnessAwareStep)

        if self.step == "sgbd":
            return SharpMirrorStep(self.alpha1, self.alpha2, self.beta, self.mg_form, PlainStep(), rho=self.sam_rho)
        if self.step == "asam":
            base = AdaptiveSharpnessAwareStep(self.sam_rho)
        elif self.step == "sam" or self.sam_rho > 0:
            base = SharpnessAwareStep(self.sam_rho)
        else:
            base = PlainStep()
        if not self.mg:
            return base
        return MirrorGradientStep(self.alpha1, self.alpha2, self.beta, self.mg_form, base)

    def strategy_name(self) -> str:
        """'plain', 'SAM', 'ASAM', 'Mirror Gradient + ASAM', 'SGBD', ... for messages (with
        ' + AMR' when adversarial training is on)."""
        amr = f" + AMR (eps {self.adv_eps:g}, reg {self.adv_reg:g})" if self.adversarial == "amr" else ""
        if self.step == "sgbd":
            return "SGBD (sharpness-aware Mirror Gradient)" + amr
        base = {"asam": "ASAM", "sam": "SAM"}.get(self.step) or ("SAM" if self.sam_rho > 0 else "")
        if self.mg:
            return "Mirror Gradient" + (f" + {base}" if base else "") + amr
        return (base or "plain") + amr
