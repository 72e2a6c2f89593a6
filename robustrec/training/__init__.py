"""Training: one trainer, typed config, optimizers and step strategies (plain, mirror, SAM)."""

from robustrec.training.config import TrainConfig
from robustrec.training.strategies import MirrorGradientStep, PlainStep, SharpnessAwareStep
from robustrec.training.trainer import EpochRecord, Trainer, TrainerCallback, TrainResult

__all__ = ["TrainConfig", "Trainer", "TrainerCallback", "TrainResult", "EpochRecord",
           "MirrorGradientStep", "PlainStep", "SharpnessAwareStep"]
