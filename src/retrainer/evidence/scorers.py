"""Vectorised metric forms: one call scores every bootstrap resample, given as row weightings.

A resample is a weighting of the test rows by their draw counts, so one sort (ROC-AUC, PR-AUC) or
one matrix product (the counted metrics) serves all of them; the bootstrap would otherwise call
scikit-learn a thousand times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from retrainer.metrics import get_metric

if TYPE_CHECKING:
    import numpy as np


def weighted_roc_auc(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC of every weighting (rows of `weights`) at once; ties count one half, as in scikit-learn.

    A bootstrap resample is a weighting by draw counts, so one sort serves every resample.
    """
    import numpy as np

    order = np.argsort(proba, kind="stable")
    return _sorted_roc_auc(proba[order], y_true[order].astype(bool), weights[:, order].astype(float))


def weighted_roc_auc_ovr(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray, by_support: bool) -> np.ndarray:
    """One-vs-rest ROC-AUC of a multiclass output for every weighting: each class's AUC against the
    rest, averaged (macro, or weighted by each class's share of the resample)."""
    import numpy as np

    w = weights.astype(float)
    per_class = np.column_stack([weighted_roc_auc(y_true == c, proba[:, c], w) for c in range(proba.shape[1])])
    if not by_support:
        result: np.ndarray = per_class.mean(axis=1)
        return result
    support = np.column_stack([w @ (y_true == c).astype(float) for c in range(proba.shape[1])])
    return (per_class * support).sum(axis=1) / support.sum(axis=1)


def _sorted_roc_auc(sorted_scores: np.ndarray, sorted_y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`weighted_roc_auc` of rows already in ascending score order (`sorted_y` boolean, `w` float)."""
    import numpy as np

    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = np.add.reduceat(np.where(sorted_y, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(sorted_y, 0.0, w), starts, axis=1)
    negatives_below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    wins = (positive * (negatives_below + 0.5 * negative)).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def weighted_average_precision(y_true: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision (PR-AUC as scikit-learn computes it: sum of recall steps x precision) per weighting."""
    import numpy as np

    order = np.argsort(-proba, kind="stable")
    return _sorted_average_precision(proba[order], y_true[order].astype(bool), weights[:, order].astype(float))


def _sorted_average_precision(sorted_scores: np.ndarray, sorted_y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`weighted_average_precision` of rows already in descending score order."""
    import numpy as np

    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    positive = np.add.reduceat(np.where(sorted_y, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(sorted_y, 0.0, w), starts, axis=1)
    true_pos, false_pos = np.cumsum(positive, axis=1), np.cumsum(negative, axis=1)
    total = positive.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(true_pos + false_pos > 0, true_pos / (true_pos + false_pos), 0.0)
        values = (positive / total * precision).sum(axis=1)
    return np.where(total[:, 0] > 0, values, np.nan)


def bootstrap_scores(
    metric: str, y_true: np.ndarray, proba: np.ndarray, counts: np.ndarray, threshold: float = 0.5
) -> np.ndarray:
    """The metric on every resample (NaN where a resample lacks a class the metric needs).

    `proba` is the model's output of any task (binary scores, n x k probabilities, values); a
    resample is a weighting of the rows by their draw counts.
    """
    import numpy as np

    if metric == "roc_auc":
        return weighted_roc_auc(y_true, proba, counts)
    if metric == "pr_auc":
        return weighted_average_precision(y_true, proba, counts)
    if metric in ("roc_auc_ovr", "roc_auc_ovr_weighted"):
        return weighted_roc_auc_ovr(y_true, proba, counts, by_support=metric.endswith("weighted"))
    if _is_counted(metric, proba):
        return _counted_metric(metric, y_true, proba, counts.astype(float), threshold)
    scorer = get_metric(metric)
    prediction = scorer.prediction(proba, threshold)
    if scorer.weighted is not None:
        return np.asarray(scorer.weighted(y_true, prediction, counts.astype(float)))
    values = np.empty(len(counts))  # any other metric: one scikit-learn call per resample, counts as weights
    for i, row in enumerate(counts):
        drawn = row > 0
        if not scorer.defined_on(y_true[drawn], proba[drawn]):
            values[i] = np.nan
            continue
        values[i] = float(scorer.func(y_true[drawn], prediction[drawn], sample_weight=row[drawn]))
    return values


_COUNTED = ("accuracy", "precision", "recall", "f1", "brier", "log_loss")


def _is_counted(metric: str, output: np.ndarray) -> bool:
    """A binary metric of one score per row with a weighted-sum form below (a multiclass output has 2 axes)."""
    return metric in _COUNTED and output.ndim == 1


def _counted_metric(metric: str, y: np.ndarray, proba: np.ndarray, w: np.ndarray, threshold: float) -> np.ndarray:
    """Metrics that are weighted sums over rows, for every weighting at once (0/0 gives 0, as sklearn's)."""
    return _from_sums(metric, y, proba, threshold, lambda values: w @ values, w.sum(axis=1))


def _from_sums(
    metric: str,
    y: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    sum_of: Callable[[np.ndarray], np.ndarray],
    total: np.ndarray | float,
) -> np.ndarray:
    """A counted metric from `sum_of` (a weighted sum over rows, per resample) of per-row terms."""
    import numpy as np

    if metric == "brier":
        return sum_of((proba - y) ** 2) / total
    if metric == "log_loss":
        clipped = np.clip(proba, np.finfo(float).eps, 1 - np.finfo(float).eps)
        return -sum_of(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)) / total
    predicted = (proba >= threshold).astype(float)
    tp, fp = sum_of(predicted * y), sum_of(predicted * (1 - y))
    fn, tn = sum_of((1 - predicted) * y), sum_of((1 - predicted) * (1 - y))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "accuracy": (tp + tn) / total,
            "precision": np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }
    return values[metric]
