"""Forecast metrics: MASE, sMAPE, RMSE, MAE, interval coverage and the ratio to the seasonal-naive
forecast, read from a forecaster's output, with their vectorised forms for the paired bootstrap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.metrics.weighted import ScoreFn, WeightedFn

if TYPE_CHECKING:
    import numpy as np

# A forecaster's output (`retrainer.models.forecaster.Forecaster.predict`) has these columns, one row per
# row of the scored frame, NaN outside the backtest windows: metrics score the rows that have a forecast.
# Overlapping windows (`backtest.step` < horizon: a period forecast from several origins) give `layers`
# blocks of these columns side by side, each block a set of windows that do not overlap.
FORECAST_OUTPUT = ("point", "lo_80", "hi_80", "lo_95", "hi_95", "scale", "naive", "group")
_POINT, _SCALE, _NAIVE = 0, 5, 6
_INTERVALS = {"coverage_80": (1, 2), "coverage_95": (3, 4)}


def layers(output: np.ndarray) -> int:
    """How many blocks of `FORECAST_OUTPUT` columns `output` holds (1 unless the windows overlap)."""
    return max(int(output.shape[1]) // len(FORECAST_OUTPUT), 1)


def stacked(y: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, output) with one row per row and layer (layer after layer), `len(FORECAST_OUTPUT)` columns: each
    forecast of a period, from every origin that forecast it, is a row of its own."""
    import numpy as np

    y, output = np.asarray(y, dtype=float), np.asarray(output, dtype=float)
    k = layers(output)
    if k == 1:
        return y, output
    width = len(FORECAST_OUTPUT)
    return np.tile(y, k), output.reshape(len(output), k, width).transpose(1, 0, 2).reshape(k * len(output), width)


def _tiled(w: np.ndarray, rows: int) -> np.ndarray:
    """Row weights of the frame's rows, repeated for each layer (weights of `stacked` rows pass as they are)."""
    import numpy as np

    return w if w.shape[1] == rows else np.tile(w, (1, rows // w.shape[1]))


def _forecast_terms(kind: str, y: np.ndarray, output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per scored row (of `stacked`): the term whose (weighted) mean is the metric (the MAE's for
    `naive_ratio`'s numerator), and the rows it applies to (a forecast, a scale, an interval)."""
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

        y, output = stacked(y, output)
        w = _tiled(w, len(y))
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
