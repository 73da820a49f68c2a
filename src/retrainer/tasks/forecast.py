"""Forecasting: one or many series, `horizon` periods ahead, judged by a rolling-origin backtest.

What differs from a table, each a method here with a default in `Task`:
- the data checks (`data_checks`: duplicate timestamps, gaps, an irregular frequency, series too short
  for the backtest, a stale series);
- the split (`split`): `train` is the history before the test windows (tuning backtests on it, so
  Optuna never sees the test windows), `test` is the whole history, whose last `windows` origins the
  evaluation, the champion's comparison and the evidence score;
- the model's inputs (`preprocessor`, `input_columns`): the series id, the time, the target and the
  exogenous columns, unchanged; `final_fit_rows`: the registered model learns from the whole history;
- the output (`Forecaster.predict`): the backtest, one row per scored row (`metrics.FORECAST_OUTPUT`),
  so the champion's configuration is refitted on the new windows when compare scores it;
- the registered model's answer (`answers_rows` False): not one per row but the forecasts a request
  asks for (`answer_requests`: series, horizon, future exogenous values; `forecasting.ahead`), which
  `retrainer serve`'s `POST /forecast` and the `python_function` flavor share;
- the gate (`gate_failures`): a forecaster must beat the seasonal-naive baseline on the same windows
  (`naive_ratio` < 1), and `seasonal_naive` is a candidate of every run;
- the paired bootstrap resamples series x origin (`bootstrap_groups`), not rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.tasks.base import Task, invalid_target

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec

BASELINE = "seasonal_naive"


class ForecastTask(Task):
    name: ClassVar[str] = "forecast"
    estimator_type: ClassVar[str] = "forecaster"
    default_metric: ClassVar[str] = "mase"
    sklearn_scoring: ClassVar[str] = "neg_mean_absolute_error"
    explainable: ClassVar[bool] = False  # no SHAP over lags the model builds itself
    score_drift: ClassVar[bool] = False  # forecasts follow the trend: drift compares each series instead
    answers_rows: ClassVar[bool] = False  # the registered model forecasts after its training end

    def __init__(self, horizon: int = 1, series_id: str | None = None) -> None:
        self.horizon = horizon
        self.series_id = series_id

    # ------------------------------------------------------------------ identity
    @classmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> ForecastTask:
        import pandas as pd

        column = spec.target.column
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            shown = ", ".join(repr(v) for v in values.dropna().unique()[:3])
            raise invalid_target(
                f"target '{column}' is not numeric ({values.dtype}: {shown}); a forecast predicts numbers",
                "target: not numeric",
                hint="cast it in the source query",
            )
        assert spec.forecast is not None  # the spec requires the section with task: forecast
        return cls(spec.forecast.horizon, spec.forecast.series_id)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> ForecastTask:
        return cls(int(info.get("horizon", 1)), info.get("series_id"))

    def info(self) -> dict[str, Any]:
        return {"task": self.name, "horizon": self.horizon, "series_id": self.series_id}

    # ------------------------------------------------------------------ the data
    @classmethod
    def data_checks(cls, frame: pd.DataFrame, spec: Spec, as_of: datetime | None) -> list[tuple[str, bool, str]]:
        from retrainer.forecasting.series import series_checks

        return series_checks(frame, spec, as_of)

    def split(self, frame: pd.DataFrame, spec: Spec, as_of: datetime | None) -> dict[str, pd.DataFrame] | None:
        """train: each series without its backtest span; test: the whole history (see the module docstring)."""
        import pandas as pd

        assert spec.forecast is not None
        rules = spec.forecast
        span = rules.horizon + rules.step * (rules.backtest.windows - 1)
        keys = frame[rules.series_id].astype(str) if rules.series_id else pd.Series("all", index=frame.index)
        times = pd.to_datetime(frame[spec.time_column])
        ordered = frame.assign(_key=keys.to_numpy(), _t=times.to_numpy()).sort_values(["_key", "_t"], kind="stable")
        rank_from_end = ordered.groupby("_key", sort=False).cumcount(ascending=False)
        ordered = ordered.drop(columns=["_key", "_t"])
        return {
            "train": ordered.loc[(rank_from_end >= span).to_numpy()],
            "test": ordered,
            "oot": ordered.iloc[0:0].copy(),
        }

    @classmethod
    def series_profile(cls, frame: pd.DataFrame, spec: Spec) -> dict[str, Any] | None:
        """Each series' level, typical change and seasonal shape (kept with the registered version)."""
        from retrainer.forecasting.series import series_profile

        return series_profile(frame, spec)

    @classmethod
    def series_drift(cls, reference: dict[str, Any], frame: pd.DataFrame, spec: Spec) -> list[dict[str, Any]]:
        from retrainer.forecasting.series import series_drift

        return series_drift(reference, frame, spec)

    def encode(self, values: pd.Series) -> np.ndarray:
        import numpy as np

        return np.asarray(values, dtype=float)

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        if len(parts["train"]) < 2:
            raise invalid_target(
                "no history before the backtest windows: nothing to tune on",
                "split: series shorter than the backtest",
                hint="lower forecast.backtest.windows or the horizon",
            )

    def one_vs_rest(self, y: np.ndarray) -> list[np.ndarray]:
        import numpy as np

        return [(y > np.median(y)).astype(int)]

    def describe(self, y: np.ndarray) -> dict[str, Any]:
        import numpy as np

        if not len(y):
            return {"mean": None}
        return {"mean": round(float(np.mean(y)), 6), "std": round(float(np.std(y)), 6)}

    def folds(self, y: np.ndarray, n_splits: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One "fold": the forecaster's backtest refits at each of its origins itself."""
        import numpy as np

        rows = np.arange(len(y))
        yield rows, rows

    # ------------------------------------------------------------------ the model
    @classmethod
    def preprocessor(cls, train: pd.DataFrame, spec: Spec) -> tuple[Any, dict[str, Any]] | None:
        """The forecaster reads the series columns as they are: an identity step keeps the column names."""
        from sklearn.preprocessing import FunctionTransformer

        assert spec.forecast is not None and spec.time_column is not None
        columns = [c for c in (spec.forecast.series_id, spec.time_column, spec.target.column) if c]
        columns += list(spec.forecast.exogenous)
        schema = {
            "inputs": {c: str(train[c].dtype) for c in columns},
            "numeric": list(spec.forecast.exogenous),
            "categorical": [spec.forecast.series_id] if spec.forecast.series_id else [],
            "derived": [],
        }
        return FunctionTransformer(None, feature_names_out="one-to-one"), schema

    def leakage_columns(self, columns: list[str], spec: Spec) -> list[str]:
        """Only the exogenous columns: the series' own past is what a forecaster is meant to read."""
        assert spec.forecast is not None
        return [c for c in columns if c in spec.forecast.exogenous]

    def final_fit_rows(self, parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """The whole history: a forecaster must see the newest data it will forecast after."""
        return parts["test"]

    def wrap(self, estimator: Any, spec: Spec, calibrate: bool) -> Any:
        """The spec's series settings on the candidate's forecaster."""
        assert spec.forecast is not None
        rules = spec.forecast
        return estimator.set_params(
            time_column=spec.time_column,
            target=spec.target.column,
            series_id=rules.series_id,
            exogenous=tuple(rules.exogenous),
            frequency=rules.frequency,
            season_length=rules.season_length,
            horizon=rules.horizon,
            windows=rules.backtest.windows,
            step=rules.step,
        )

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        return np.asarray(model.predict(frame), dtype=float)

    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        import numpy as np

        return [
            {"forecast": float(row[0]), "lo_80": _num(row[1]), "hi_80": _num(row[2])}
            for row in output
            if np.isfinite(row[0])
        ]

    def scored_like_this_run(self, model: Any, spec: Spec) -> Any:
        """The champion's configuration backtested on this run's windows (horizon, windows, step): its own
        may differ (an older spec), and the paired comparison needs the same cutoffs."""
        assert spec.forecast is not None
        rules = spec.forecast
        forecaster = model[-1] if hasattr(model, "steps") else model
        if hasattr(forecaster, "backtest"):
            forecaster.set_params(horizon=rules.horizon, windows=rules.backtest.windows, step=rules.step)
        return model

    def request_columns(self, model: Any) -> list[tuple[str, str, bool]] | None:
        """series_id and horizon (and the time and exogenous columns of a model that has them)."""
        from retrainer.forecasting.ahead import request_columns

        return request_columns(model)

    def request_example(self, model: Any) -> pd.DataFrame | None:
        from retrainer.forecasting.ahead import request_example

        return request_example(model)

    def answer_requests(self, model: Any, requests: pd.DataFrame) -> list[dict[str, Any]]:
        """One answer per series and step: `series_id, step, ds, forecast, lo_80, hi_80, lo_95, hi_95`."""
        from retrainer.forecasting.ahead import forecasts, records

        return records(forecasts(model, requests))

    def drift_values(self, output: np.ndarray) -> np.ndarray:
        import numpy as np

        from retrainer.metrics.forecast import stacked

        points = stacked(np.zeros(len(output)), output)[1][:, 0]
        return points[np.isfinite(points)]

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:

        values = self.drift_values(output)
        return {"mean": float(values.mean()) if len(values) else None, "forecasts": len(values)}

    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """MAE per group (highest over lowest), on the backtest rows."""
        import numpy as np
        import pandas as pd

        from retrainer.evidence import bound_failures, residual_fairness_summary, residual_group_errors
        from retrainer.metrics.forecast import layers, stacked

        repeats = layers(output)  # overlapping windows: every forecast of a row is scored, in its group
        y, output = stacked(y, output)
        groups = pd.Series(np.tile(groups.to_numpy(), repeats), name=groups.name)
        scored = np.isfinite(output[:, 0])
        errors = residual_group_errors(groups[scored], y[scored], output[scored, 0], rules.min_group_size)
        summary = residual_fairness_summary(errors)
        return errors, summary, bound_failures(summary, self.fairness_limits(rules.model_dump())), "mae_ratio"

    # ------------------------------------------------------------------ metrics and gates
    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        return ("mase", "naive_ratio", "smape", "rmse", "mae", "coverage_80", "coverage_95")

    def candidates(self, spec: Spec) -> list[str]:
        """The spec's candidates (or the defaults), always with the seasonal-naive baseline."""
        chosen = super().candidates(spec)
        return chosen if BASELINE in chosen else [BASELINE, *chosen]

    def gate_failures(self, metrics: Mapping[str, float], spec: Spec) -> list[str]:
        """A forecaster that does not beat the seasonal-naive forecast on the same windows is not worth serving."""
        ratio = metrics.get("naive_ratio")
        if ratio is None or not ratio < 1.0:
            shown = "not computed" if ratio is None else f"{ratio:.4f}"
            return [f"naive_ratio {shown}: MAE not below the seasonal-naive baseline's on the same windows"]
        return []

    def bootstrap_groups(self, output: np.ndarray) -> np.ndarray | None:
        """Series x origin codes (-1: a row outside the windows): the paired bootstrap resamples these.
        With overlapping windows, one per row and layer, in the order of `metrics.forecast.stacked`."""
        import numpy as np

        from retrainer.metrics.forecast import stacked

        codes = stacked(np.zeros(len(output)), output)[1][:, -1]
        return np.where(np.isfinite(codes), codes, -1).astype(int)


def _num(value: float) -> float | None:
    import numpy as np

    return float(value) if np.isfinite(value) else None
