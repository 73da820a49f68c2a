"""Every metric as an object in one registry, in the manner of scikit-learn's scorers.

A `Metric` knows its direction, what it reads from a model's output (`needs`), the tasks it applies
to and, where one exists, a vectorised form that scores many bootstrap weightings at once. Spec
validation, gates, `min_improvement`, the paired bootstrap and every display list read `REGISTRY`;
nothing keeps its own list of names.

What a metric reads is derived from the model's *output*, whose shape the task fixes: a binary model
outputs the positive class's probability (n,), a multiclass one the probability of every class (n, k),
a regressor its values (n,). `labels` are the decided classes: the binary output cut at its decision
threshold, or the most probable class of a multiclass output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

Needs = Literal["labels", "scores", "proba", "values"]
ScoreFn = Callable[..., float]  # (y_true, prediction, sample_weight=None) -> float
# (y_true, prediction, weights: resamples x rows) -> one score per resample: the bootstrap's fast form
WeightedFn = Callable[["np.ndarray", "np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class Metric:
    """One metric: `score(y_true, output, threshold)` turns a model's output into what `func` reads."""

    name: str
    func: ScoreFn
    needs: Needs
    tasks: frozenset[str]
    greater_is_better: bool = True
    bounded: bool = True  # a score in [0, 1]: a gate outside that range is a spec error
    needs_every_class: bool = False  # undefined unless every class occurs in y_true (ROC-AUC and kin)
    weighted: WeightedFn | None = None
    description: str = ""
    # an error in the target's own units (dollars, minutes): a tolerance on it reads as a share of it
    in_target_units: bool = False

    def prediction(self, output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        """What `func` reads from the model's output (see the module docstring)."""
        import numpy as np

        if self.needs == "labels":
            return decided_labels(output, threshold)
        if self.needs == "scores" and output.ndim != 1:
            raise ValueError(f"{self.name} reads one score per row, got output of shape {output.shape}")
        return np.asarray(output)

    def score(self, y_true: np.ndarray, output: np.ndarray, threshold: float = 0.5, sample_weight: Any = None) -> float:
        return float(self.func(y_true, self.prediction(output, threshold), sample_weight=sample_weight))

    def defined_on(self, y_true: np.ndarray, output: np.ndarray) -> bool:
        """False where the metric cannot be computed (ROC-AUC on a set holding one class)."""
        import numpy as np

        if self.name in _INTERVALS and output.ndim == 2:  # a forecaster without intervals has no coverage
            low, high = _INTERVALS[self.name]
            return bool(np.isfinite(output[:, low]).any() and np.isfinite(output[:, high]).any())
        if not self.needs_every_class:
            return True
        if self.tasks == ANOMALY:  # known anomalies and known normal rows (-1: unknown)
            return bool(np.isin(0, y_true) and np.isin(1, y_true))
        classes = 2 if output.ndim == 1 else output.shape[1]
        return len(np.unique(y_true)) == classes


def decided_labels(output: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The class each row is given: a binary score cut at `threshold`, else the most probable class."""
    import numpy as np

    if output.ndim == 2:
        return np.asarray(output.argmax(axis=1), dtype="int64")
    return (output >= threshold).astype(int)


# ----------------------------------------------------------------------------- score functions
# scikit-learn is imported when a metric is computed, not when the registry is read (`retrainer --help`)


def _sk(name: str, **fixed: Any) -> ScoreFn:
    def score(y_true: Any, prediction: Any, sample_weight: Any = None) -> float:
        from sklearn import metrics

        return float(getattr(metrics, name)(y_true, prediction, sample_weight=sample_weight, **fixed))

    score.__name__ = name
    return score


def _log_loss(y_true: Any, proba: Any, sample_weight: Any = None) -> float:
    from sklearn import metrics

    classes = 2 if proba.ndim == 1 else proba.shape[1]
    return float(metrics.log_loss(y_true, proba, labels=list(range(classes)), sample_weight=sample_weight))


def _roc_auc_ovr(average: str) -> ScoreFn:
    def score(y_true: Any, proba: Any, sample_weight: Any = None) -> float:
        from sklearn import metrics

        labels = list(range(proba.shape[1]))
        if len(labels) == 2:  # each class against the other: both AUCs are the one binary AUC
            return float(metrics.roc_auc_score(y_true, proba[:, 1], sample_weight=sample_weight))
        return float(
            metrics.roc_auc_score(
                y_true, proba, multi_class="ovr", average=average, labels=labels, sample_weight=sample_weight
            )
        )

    return score


def _rmse(y_true: Any, values: Any, sample_weight: Any = None) -> float:
    from sklearn import metrics

    return float(metrics.root_mean_squared_error(y_true, values, sample_weight=sample_weight))


def _median_ae(y_true: Any, values: Any, sample_weight: Any = None) -> float:
    import numpy as np

    errors = np.abs(np.asarray(y_true, dtype=float) - np.asarray(values, dtype=float))
    if sample_weight is None:
        return float(np.median(errors))
    order = np.argsort(errors)  # the weighted median: the error where half the weight is reached
    cumulative = np.cumsum(np.asarray(sample_weight, dtype=float)[order])
    return float(errors[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


# ------------------------------------------------------------------- forecasts
# A forecaster's output (`retrainer.models.forecaster.Forecaster.predict`) has these columns, one row per
# row of the scored frame, NaN outside the backtest windows: metrics score the rows that have a forecast.
FORECAST_OUTPUT = ("point", "lo_80", "hi_80", "lo_95", "hi_95", "scale", "naive", "group")
_POINT, _SCALE, _NAIVE = 0, 5, 6
_INTERVALS = {"coverage_80": (1, 2), "coverage_95": (3, 4)}


def _forecast_terms(kind: str, y: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per scored row: the term whose (weighted) mean is the metric (the MAE's for `naive_ratio`'s numerator),
    and the rows it applies to (a forecast, a scale, an interval)."""
    import numpy as np

    y = np.asarray(y, dtype=float)
    point = output[:, _POINT]
    keep = np.isfinite(point) & np.isfinite(y)
    error = np.abs(y - point)
    if kind == "mase":
        keep &= np.isfinite(output[:, _SCALE])
        return np.where(keep, error / np.where(keep, output[:, _SCALE], 1.0), 0.0), keep
    if kind == "smape":
        denominator = np.abs(y) + np.abs(point)
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(keep & (denominator > 0), 200.0 * error / safe, 0.0), keep
    if kind == "rmse":
        return np.where(keep, error**2, 0.0), keep
    if kind in _INTERVALS:
        low, high = (output[:, i] for i in _INTERVALS[kind])
        keep &= np.isfinite(low) & np.isfinite(high)
        return ((y >= low) & (y <= high) & keep).astype(float), keep
    return np.where(keep, error, 0.0), keep  # mae


def _forecast_weighted(kind: str) -> WeightedFn:
    """The metric on every weighting of the rows (bootstrap resamples: rows of `w`)."""

    def weighted(y: np.ndarray, output: np.ndarray, w: np.ndarray) -> np.ndarray:
        import numpy as np

        if kind == "naive_ratio":
            errors, keep = _forecast_terms("mae", y, output)
            naive = np.abs(np.asarray(y, dtype=float) - output[:, _NAIVE])
            keep &= np.isfinite(naive)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratio: np.ndarray = (w @ np.where(keep, errors, 0.0)) / (w @ np.where(keep, naive, 0.0))
            return ratio
        terms, keep = _forecast_terms(kind, y, output)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean: np.ndarray = (w @ terms) / (w @ keep.astype(float))
        return np.sqrt(mean) if kind == "rmse" else mean

    return weighted


def _forecast_score(kind: str) -> ScoreFn:
    def score(y_true: Any, output: Any, sample_weight: Any = None) -> float:
        import numpy as np

        w = np.ones((1, len(output))) if sample_weight is None else np.asarray(sample_weight, dtype=float)[None, :]
        return float(_forecast_weighted(kind)(np.asarray(y_true), np.asarray(output, dtype=float), w)[0])

    return score


def _values_or_forecast(values_fn: ScoreFn, values_w: WeightedFn, kind: str) -> tuple[ScoreFn, WeightedFn]:
    """RMSE and MAE of a regressor's values (n,) or of a forecast's point column (n x len(FORECAST_OUTPUT))."""
    forecast_fn, forecast_w = _forecast_score(kind), _forecast_weighted(kind)

    def score(y_true: Any, prediction: Any, sample_weight: Any = None) -> float:
        if getattr(prediction, "ndim", 1) == 2:
            return forecast_fn(y_true, prediction, sample_weight)
        return values_fn(y_true, prediction, sample_weight=sample_weight)

    def weighted(y: np.ndarray, prediction: np.ndarray, w: np.ndarray) -> np.ndarray:
        return forecast_w(y, prediction, w) if prediction.ndim == 2 else values_w(y, prediction, w)

    score.__name__ = kind
    return score, weighted


# ------------------------------------------------------------------- anomalies
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


# ------------------------------------------------------------------- vectorised forms (the bootstrap)
# each scores every weighting (a row of `w`: one bootstrap resample's draw counts) with one matrix product


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


BINARY, MULTICLASS, REGRESSION = frozenset({"binary"}), frozenset({"multiclass"}), frozenset({"regression"})
FORECAST = frozenset({"forecast"})
ANOMALY = frozenset({"anomaly"})
# the anomaly metrics that read labels (undefined unless the rows hold known anomalies and known normal ones)
ANOMALY_LABELLED = ("average_precision", "precision_at_k", "recall_at_alert_rate")
CLASSIFICATION = BINARY | MULTICLASS


def _metrics() -> tuple[Metric, ...]:
    labels: Needs = "labels"
    rmse, w_rmse = _values_or_forecast(_rmse, _w_rmse, "rmse")
    mae, w_mae = _values_or_forecast(_sk("mean_absolute_error"), _w_mae, "mae")
    return (
        # forecasts: over the backtest windows (`FORECAST_OUTPUT`)
        Metric(
            "mase",
            _forecast_score("mase"),
            "values",
            FORECAST,
            greater_is_better=False,
            bounded=False,
            weighted=_forecast_weighted("mase"),
            description="mean absolute error over the in-sample seasonal-naive MAE before each origin",
        ),
        Metric(
            "naive_ratio",
            _forecast_score("naive_ratio"),
            "values",
            FORECAST,
            greater_is_better=False,
            bounded=False,
            weighted=_forecast_weighted("naive_ratio"),
            description="MAE over the seasonal-naive forecast's MAE on the same windows (< 1: beats the baseline)",
        ),
        Metric(
            "smape",
            _forecast_score("smape"),
            "values",
            FORECAST,
            greater_is_better=False,
            bounded=False,
            weighted=_forecast_weighted("smape"),
            description="symmetric MAPE, in percent (0 to 200)",
        ),
        *(
            Metric(
                name,
                _forecast_score(name),
                "values",
                FORECAST,
                weighted=_forecast_weighted(name),
                description=f"share of actual values inside the {name[-2:]} % interval (where the model gives one)",
            )
            for name in _INTERVALS
        ),
        # anomalies (`ANOMALY_OUTPUT`): the labelled ones rank known anomalies, the others need no label
        *(
            Metric(
                name,
                _anomaly_score(name),
                "values",
                ANOMALY,
                needs_every_class=name in ANOMALY_LABELLED,
                greater_is_better=name not in ("alert_rate", "alert_rate_gap"),
                bounded=name != "alert_rate_gap",
                weighted=_anomaly_weighted(name),
                description=description,
            )
            for name, description in (
                ("average_precision", "area under the precision-recall curve of the scores (known anomalies)"),
                ("precision_at_k", "share of known anomalies among the k highest scores, k = alert rate x rows"),
                ("recall_at_alert_rate", "share of the known anomalies among the k highest scores"),
                ("alert_rate", "share of rows flagged at the stored cut-off (no labels needed)"),
                ("alert_rate_gap", "|alert rate - expected alert rate| / expected alert rate (no labels needed)"),
                ("seed_agreement", "share of the alerts that detectors refitted with other seeds raise too"),
            )
        ),
        # binary and multiclass
        Metric("accuracy", _sk("accuracy_score"), labels, CLASSIFICATION, weighted=_w_accuracy),
        Metric(
            "balanced_accuracy", _sk("balanced_accuracy_score"), labels, CLASSIFICATION, weighted=_w_balanced_accuracy
        ),
        Metric(
            "log_loss", _log_loss, "proba", CLASSIFICATION, greater_is_better=False, bounded=False, weighted=_w_log_loss
        ),
        # binary: the positive class
        Metric("precision", _sk("precision_score", zero_division=0), labels, BINARY),
        Metric("recall", _sk("recall_score", zero_division=0), labels, BINARY),
        Metric("f1", _sk("f1_score", zero_division=0), labels, BINARY),
        Metric("roc_auc", _sk("roc_auc_score"), "scores", BINARY, needs_every_class=True),
        Metric("pr_auc", _sk("average_precision_score"), "scores", BINARY, needs_every_class=True),
        Metric("brier", _sk("brier_score_loss"), "scores", BINARY, greater_is_better=False),
        # multiclass: averaged over classes
        *(
            Metric(
                f"{kind}_{average}",
                _sk(f"{kind}_score", average=average, zero_division=0),
                labels,
                MULTICLASS,
                weighted=_w_averaged(kind, average),
            )
            for kind in ("f1", "precision", "recall")
            for average in ("macro", "weighted")
        ),
        Metric("roc_auc_ovr", _roc_auc_ovr("macro"), "proba", MULTICLASS, needs_every_class=True),
        Metric("roc_auc_ovr_weighted", _roc_auc_ovr("weighted"), "proba", MULTICLASS, needs_every_class=True),
        # regression: errors in the target's units (lower is better), and R2
        Metric(
            "rmse",
            rmse,
            "values",
            REGRESSION | FORECAST,
            greater_is_better=False,
            bounded=False,
            weighted=w_rmse,
            in_target_units=True,
        ),
        Metric(
            "mae",
            mae,
            "values",
            REGRESSION | FORECAST,
            greater_is_better=False,
            bounded=False,
            weighted=w_mae,
            in_target_units=True,
        ),
        Metric("r2", _sk("r2_score"), "values", REGRESSION, bounded=False, weighted=_w_r2),
        Metric(
            "mape",
            _sk("mean_absolute_percentage_error"),
            "values",
            REGRESSION,
            greater_is_better=False,
            bounded=False,
            weighted=_w_mape,
        ),
        Metric(
            "median_ae", _median_ae, "values", REGRESSION, greater_is_better=False, bounded=False, in_target_units=True
        ),
    )


REGISTRY: dict[str, Metric] = {metric.name: metric for metric in _metrics()}
METRICS = tuple(REGISTRY)
LOWER_IS_BETTER = frozenset(name for name, metric in REGISTRY.items() if not metric.greater_is_better)


def get_metric(name: str) -> Metric:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}") from None


def metrics_for(task: str) -> tuple[str, ...]:
    """The names of the metrics that apply to `task`, in registry order."""
    return tuple(name for name, metric in REGISTRY.items() if task in metric.tasks)


def score(metric: str, y_true: np.ndarray, output: np.ndarray, threshold: float = 0.5) -> float:
    """One metric of a model's output; `threshold` decides binary labels where the metric needs them."""
    return get_metric(metric).score(y_true, output, threshold)


def all_metrics(
    y_true: np.ndarray, output: np.ndarray, threshold: float = 0.5, task: str = "binary"
) -> dict[str, float]:
    """Every metric of `task` that is defined on these rows, rounded for reports."""
    return {
        name: round(get_metric(name).score(y_true, output, threshold), 6)
        for name in metrics_for(task)
        if get_metric(name).defined_on(y_true, output)
    }


def shown(metric: str, value: float) -> str:
    """A metric's value for people: a score to four decimals (0.8124), an error in the target's units
    with thousands separators (21,020) or four significant digits when small (0.3521)."""
    known = REGISTRY.get(metric)
    if known is not None and known.in_target_units:
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:.4f}"


def better(metric: str, a: float, b: float) -> float:
    """How much better `a` is than `b` on `metric` (positive = better), whatever its direction."""
    return a - b if get_metric(metric).greater_is_better else b - a
