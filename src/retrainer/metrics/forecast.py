"""Forecast metrics: MASE, sMAPE, RMSE, MAE, interval coverage and the ratio to the seasonal-naive
forecast, read from a forecaster's output, with their vectorised forms for the paired bootstrap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.metrics.weighted import ScoreFn, WeightedFn

if TYPE_CHECKING:
    import numpy as np

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
