"""Full-ranking evaluation and top-K metrics."""

from robustrec.evaluation.metrics import DEFAULT_KS, METRICS, all_metrics
from robustrec.evaluation.ranking import EvalResult, full_ranking, top_k_items

__all__ = ["DEFAULT_KS", "METRICS", "EvalResult", "all_metrics", "full_ranking", "top_k_items"]
