"""robustrec: stress-test multimodal recommenders (Mirror Gradient, inference-time perturbations)."""

__version__ = "0.1.0"
