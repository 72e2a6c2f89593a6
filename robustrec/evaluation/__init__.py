"""Full-ranking evaluation and top-K metrics (ranking, which needs torch, loads lazily)."""

from robustrec.evaluation.metrics import DEFAULT_KS, METRICS, all_metrics

_LAZY = {"EvalResult", "evaluate_splits", "full_ranking", "top_k_items"}


def __getattr__(name):
    if name in _LAZY:
        from robustrec.evaluation import ranking

        return getattr(ranking, name)
    raise AttributeError(f"module 'robustrec.evaluation' has no attribute {name!r}")


__all__ = ["DEFAULT_KS", "METRICS", "EvalResult", "all_metrics", "evaluate_splits", "full_ranking", "top_k_items"]
