"""Stress tests as typed specs (kept for imports): the kinds live in ``robustrec.studies.stresses``,
one module each, and register themselves; ``stress_spec(kind, options)`` builds a checked one."""

from __future__ import annotations

from robustrec.studies.stresses import (StressOutcome, StressSpec, available_stresses, parse_levels,  # noqa: F401
                                        stress_spec)
from robustrec.studies.stresses.adversarial import AdversarialStress  # noqa: F401
from robustrec.studies.stresses.caption import CaptionStress  # noqa: F401
from robustrec.studies.stresses.image import ImageStress  # noqa: F401
from robustrec.studies.stresses.modality import ModalityStress  # noqa: F401
from robustrec.studies.stresses.noise import NoiseStress  # noqa: F401
from robustrec.studies.stresses.text import TextStress, text_notes  # noqa: F401
