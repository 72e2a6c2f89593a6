"""The typed training configuration; CLI flags map 1:1 onto its fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from robustrec.errors import ConfigError
from robustrec.training.strategies import validate_mirror

OPTIMIZER_NAMES = ("adam", "sgd", "rmsprop", "adagrad")


@dataclass
class TrainConfig:
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
    valid_metric: str = "recall@20"
    eval_batch_size: int = 0

    def validate(self) -> "TrainConfig":
        checks = [
            (self.epochs >= 1, f"--epochs must be >= 1, got {self.epochs}"),
            (self.patience >= 1, f"--patience must be >= 1, got {self.patience}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.eval_batch_size >= 0, f"eval_batch_size must be >= 0 (0 = automatic), got {self.eval_batch_size}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}"),
            (self.sam_rho >= 0, f"--sam-rho must be >= 0, got {self.sam_rho}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
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
        if self.mg:
            validate_mirror(self.alpha1, self.alpha2, self.beta, self.mg_form)
        return self

    def strategy(self):
        """The step strategy this config asks for: plain or SAM, optionally wrapped by MG."""
        from robustrec.training.strategies import MirrorGradientStep, PlainStep, SharpnessAwareStep

        base = SharpnessAwareStep(self.sam_rho) if self.sam_rho > 0 else PlainStep()
        if not self.mg:
            return base
        return MirrorGradientStep(self.alpha1, self.alpha2, self.beta, self.mg_form, base)
