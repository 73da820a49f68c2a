"""Every metric as an object in one registry, in the manner of scikit-learn's scorers.

A `Metric` knows its direction, what it reads from a model's output (`needs`), the tasks it applies
to and, where one exists, a vectorised form that scores many bootstrap weightings at once. Spec
validation, gates, `min_improvement`, the paired bootstrap and every display list read `REGISTRY`;
nothing keeps its own list of names.

The forms live beside this module: `weighted` (the table metrics' vectorised forms), `forecast` and
`anomaly` (each task's output and metrics); the registry below is the one list.

What a metric reads is derived from the model's *output*, whose shape the task fixes: a binary model
outputs the positive class's probability (n,), a multiclass one the probability of every class (n, k),
a regressor its values (n,). `labels` are the decided classes: the binary output cut at its decision
threshold, or the most probable class of a multiclass output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from retrainer.metrics.anomaly import ANOMALY_OUTPUT as ANOMALY_OUTPUT
from retrainer.metrics.anomaly import _anomaly_score, _anomaly_weighted
from retrainer.metrics.forecast import _INTERVALS, _forecast_score, _forecast_weighted, _values_or_forecast
from retrainer.metrics.forecast import FORECAST_OUTPUT as FORECAST_OUTPUT
from retrainer.metrics.weighted import (
    ScoreFn,
    WeightedFn,
    _w_accuracy,
    _w_averaged,
    _w_balanced_accuracy,
    _w_log_loss,
    _w_mae,
    _w_mape,
    _w_r2,
    _w_rmse,
)

if TYPE_CHECKING:
    import numpy as np

Needs = Literal["labels", "scores", "proba", "values"]


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
