"""The vectorised forms of the table metrics: each scores every weighting of the rows (a row of `w`: one
bootstrap resample's draw counts) with one matrix product, so the paired bootstrap costs a few
products instead of thousands of scikit-learn calls. Tests check each against scikit-learn."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ScoreFn = Callable[..., float]  # (y_true, prediction, sample_weight=None) -> float
# (y_true, prediction, weights: resamples x rows) -> one score per resample: the bootstrap's fast form
WeightedFn = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], "np.ndarray"]


def _w_mean(w: np.ndarray, terms: np.ndarray) -> np.ndarray:
    result: np.ndarray = (w @ terms) / w.sum(axis=1)
    return result


def _w_rmse(y: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    result: np.ndarray = np.sqrt(_w_mean(w, (y - values) ** 2))
    return result


def _w_mae(y: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return _w_mean(w, np.abs(y - values))


def _w_mape(y: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    return _w_mean(w, np.abs(y - values) / np.maximum(np.abs(y), np.finfo(np.float64).eps))


def _w_r2(y: np.ndarray, values: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    y = y.astype(float)
    residual = w @ ((y - values) ** 2)
    total = w @ (y**2) - (w @ y) ** 2 / w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1 - residual / total, np.nan)


def _w_accuracy(y: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    return _w_mean(w, (labels == y).astype(float))


def _w_log_loss(y: np.ndarray, proba: np.ndarray, w: np.ndarray) -> np.ndarray:
    import numpy as np

    eps = np.finfo(float).eps
    if proba.ndim == 1:
        p = np.clip(proba, eps, 1 - eps)
        return -_w_mean(w, y * np.log(p) + (1 - y) * np.log(1 - p))
    rows = proba / proba.sum(axis=1, keepdims=True)
    return -_w_mean(w, np.log(np.clip(rows[np.arange(len(y)), y.astype(int)], eps, 1)))


def _w_per_class(y: np.ndarray, labels: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per resample and class (resamples x k): true positives, predicted and actual counts."""
    import numpy as np

    k = int(max(y.max(initial=0), labels.max(initial=0))) + 1
    actual = np.eye(k)[y.astype(int)]
    predicted = np.eye(k)[labels.astype(int)]
    return w @ (actual * predicted), w @ predicted, w @ actual


def _w_averaged(kind: str, average: str) -> WeightedFn:
    """precision / recall / F1 averaged over classes (macro, or weighted by support), as scikit-learn
    computes them: a class absent from a resample's truth and predictions is left out of the average."""

    def weighted(y: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
        import numpy as np

        tp, predicted, actual = _w_per_class(y, labels, w)
        denominator = {"precision": predicted, "recall": actual, "f1": (predicted + actual) / 2}[kind]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(denominator > 0, tp / denominator, 0.0)
        weights = actual if average == "weighted" else ((actual + predicted) > 0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            result: np.ndarray = (per_class * weights).sum(axis=1) / weights.sum(axis=1)
        return result

    return weighted


def _w_balanced_accuracy(y: np.ndarray, labels: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The mean recall over the classes a resample's truth holds."""
    import numpy as np

    tp, _, actual = _w_per_class(y, labels, w)
    present = actual > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        result: np.ndarray = np.where(present, tp / actual, 0.0).sum(axis=1) / present.sum(axis=1)
    return result
