"""Anomaly metrics: average precision, precision at k and recall at the alert rate on labelled rows,
and the checks that need no labels (alert rate, its gap to the expected rate, seed agreement),
with their vectorised forms for the paired bootstrap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.metrics.weighted import ScoreFn, WeightedFn

if TYPE_CHECKING:
    import numpy as np

# An anomaly detector's output (`retrainer.models.anomaly.AnomalyDetector.predict`), one row per scored row:
# the score (higher: more anomalous), the cut-off fitted on its training rows, the alert rate it was fitted
# for, and the share of its seed copies that flag the row too. `y` is 1 for a known anomaly, 0 for a known
# normal row, -1 where nothing is known (a spec without a target): the labelled metrics need both 0 and 1.
ANOMALY_OUTPUT = ("score", "cutoff", "alert_rate", "seed_agreement")


def _top_k(output: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per weighting (rows of `w`): how much of each row is among the k highest scores, k being the expected
    alert rate times the weighting's rows (a row that straddles k counts in part; ties by row order)."""
    import numpy as np

    order = np.argsort(-output[:, 0], kind="stable")
    k = output[0, 2] * w.sum(axis=1, keepdims=True) if len(output) else np.zeros((len(w), 1))
    ranked = w[:, order]
    before = np.cumsum(ranked, axis=1) - ranked
    share = np.clip(k - before, 0.0, ranked) / np.where(ranked > 0, ranked, 1.0)
    taken: np.ndarray = np.empty_like(share)
    taken[:, order] = share
    return taken


def _w_average_precision(known: np.ndarray, scores: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average precision as scikit-learn computes it (recall steps x precision, tied scores as one step),
    per weighting: the sum `evidence.scorers.weighted_average_precision` takes too."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    ranked, hits, w = scores[order], known[order], w[:, order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    positive = np.add.reduceat(np.where(hits, w, 0.0), starts, axis=1)
    negative = np.add.reduceat(np.where(hits, 0.0, w), starts, axis=1)
    true_pos, false_pos = np.cumsum(positive, axis=1), np.cumsum(negative, axis=1)
    total = positive.sum(axis=1, keepdims=True)
    precision = np.where(true_pos + false_pos > 0, true_pos / np.maximum(true_pos + false_pos, 1e-300), 0.0)
    values = (positive / np.where(total > 0, total, 1.0) * precision).sum(axis=1)
    result: np.ndarray = np.where(total[:, 0] > 0, values, np.nan)
    return result


def _anomaly_weighted(kind: str) -> WeightedFn:
    """Anomaly metrics on every weighting of the rows (the paired bootstrap's fast form)."""

    def weighted(y: np.ndarray, output: np.ndarray, w: np.ndarray) -> np.ndarray:
        import numpy as np

        w = np.asarray(w, dtype=float)
        output = np.asarray(output, dtype=float).reshape(len(y), len(ANOMALY_OUTPUT))
        flagged = (output[:, 0] >= output[:, 1]).astype(float)
        known = (np.asarray(y) == 1).astype(float)
        if not len(y):
            return np.full(len(w), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            if kind == "average_precision":
                result: np.ndarray = _w_average_precision(known > 0, output[:, 0], w)
            elif kind in ("precision_at_k", "recall_at_alert_rate"):
                top = _top_k(output, w) * w  # the weight of each row that falls in the top k
                result = (top @ known) / (top.sum(axis=1) if kind == "precision_at_k" else w @ known)
            elif kind == "alert_rate":
                result = (w @ flagged) / w.sum(axis=1)
            elif kind == "alert_rate_gap":  # how far the alert rate is from the expected one, as a share of it
                result = np.abs((w @ flagged) / w.sum(axis=1) - output[0, 2]) / output[0, 2]
            else:  # seed_agreement: over the flagged rows, the share of seed copies that flag them too
                result = (w @ (flagged * output[:, 3])) / (w @ flagged)
        return result

    return weighted


def _anomaly_score(kind: str) -> ScoreFn:
    def score(y_true: Any, output: Any, sample_weight: Any = None) -> float:
        import numpy as np

        w = np.ones((1, len(output))) if sample_weight is None else np.asarray(sample_weight, dtype=float)[None, :]
        return float(_anomaly_weighted(kind)(np.asarray(y_true), np.asarray(output, dtype=float), w)[0])

    score.__name__ = kind
    return score
