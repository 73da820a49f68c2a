"""Binary classification metrics by name: the single place metric names map to scikit-learn."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier")
LOWER_IS_BETTER = frozenset({"log_loss", "brier"})


def score(metric: str, y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> float:
    """One metric of predicted probabilities; threshold turns them into labels where needed."""
    from sklearn import metrics

    predicted = (proba >= threshold).astype(int)
    functions = {
        "accuracy": lambda: metrics.accuracy_score(y_true, predicted),
        "precision": lambda: metrics.precision_score(y_true, predicted, zero_division=0),
        "recall": lambda: metrics.recall_score(y_true, predicted, zero_division=0),
        "f1": lambda: metrics.f1_score(y_true, predicted, zero_division=0),
        "roc_auc": lambda: metrics.roc_auc_score(y_true, proba),
        "pr_auc": lambda: metrics.average_precision_score(y_true, proba),
        "log_loss": lambda: metrics.log_loss(y_true, proba, labels=[0, 1]),
        "brier": lambda: metrics.brier_score_loss(y_true, proba),
    }
    return float(functions[metric]())


def all_metrics(y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Every metric in METRICS, rounded for reports (ROC-AUC needs both classes present)."""
    both_classes = len(set(y_true.tolist())) == 2
    return {
        m: round(score(m, y_true, proba, threshold), 6)
        for m in METRICS
        if both_classes or m not in ("roc_auc", "pr_auc")
    }


def better(metric: str, a: float, b: float) -> float:
    """How much better `a` is than `b` on `metric` (positive = better), whatever its direction."""
    return b - a if metric in LOWER_IS_BETTER else a - b
