"""`Forecaster`: one estimator for every forecasting candidate, so the stages fit and score it like any model.

`fit(X, y)` learns from the whole history and keeps it: `forecast(h)` answers from the training end
(serving, the registered model). `predict(X)` is the rolling-origin backtest of this configuration
on `X` (history with the target): the last `windows` origins `step` periods apart (overlapping when
`step` < `horizon`: then `layers` blocks of columns, see `predict`), refitted at each,
as statsforecast's and mlforecast's `cross_validation` do it (not our own lag code). Its output has
one row per row of `X`, NaN outside the windows, with the columns of `OUTPUT`: the point forecast, the
80 % and 95 % intervals (NaN where the model gives none), the MASE scale of the row's series and origin
(the in-sample seasonal-naive MAE before the origin), the seasonal-naive forecast on the same window
(the baseline every run is gated on) and a group code per series x origin (the paired bootstrap's unit).
So the champion's configuration, scored on a new run's data, is refitted on the new windows.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator, RegressorMixin

from retrainer.frequencies import infer_frequency, season_length
from retrainer.metrics import FORECAST_OUTPUT as OUTPUT

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

LEVELS = (80, 95)
SINGLE = "all"  # the series of a spec without series_id (as `forecasting.series.long_frame` names it)
STATISTICAL = {"auto_ets": "AutoETS", "auto_arima": "AutoARIMA", "auto_theta": "AutoTheta", "seasonal_naive": None}
LIKE_STATSFORECAST = {*STATISTICAL, "prophet"}  # fitted, predicted and backtested with statsforecast's keywords
# backtests already computed in this process, by configuration and data: Optuna's trials of a model without
# parameters (AutoETS) are identical, and the champion is rescored on the same data by compare and evidence
_BACKTESTS: dict[str, pd.DataFrame] = {}
MAX_CACHED = 64


class Forecaster(RegressorMixin, BaseEstimator):
    """A statsforecast model (`method`: auto_ets, auto_arima, auto_theta, seasonal_naive) or LightGBM on
    lags, rolling means and calendar features through mlforecast (`method: lightgbm`)."""

    early_stops = False  # `fitting.fit_model`: mlforecast fits the booster on its own lag features

    def __init__(
        self,
        method: str = "seasonal_naive",
        time_column: str = "ds",
        target: str = "y",
        series_id: str | None = None,
        exogenous: Sequence[str] = (),
        frequency: str | None = None,
        season_length: int | None = None,
        horizon: int = 1,
        windows: int = 4,
        step: int | None = None,
        params: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.method = method
        self.time_column = time_column
        self.target = target
        self.series_id = series_id
        self.exogenous = exogenous
        self.frequency = frequency
        self.season_length = season_length
        self.horizon = horizon
        self.windows = windows
        self.step = step
        self.params = params
        self.seed = seed

    # ------------------------------------------------------------------ saving
    def __getstate__(self) -> dict[str, Any]:
        """The fitted libraries' objects (numba-compiled models, coreforecast transforms, a LightGBM booster)
        travel as one cloudpickle blob: skops, which MLflow saves the model with, then sees plain values.
        Loading it runs pickle, so a registered forecaster is as trusted as the registry it comes from."""
        import cloudpickle

        state = dict(self.__dict__)
        fitted = {key: state.pop(key) for key in ("engine_", "history_") if key in state}
        if fitted:
            state["fitted_blob_"] = cloudpickle.dumps(fitted)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import cloudpickle

        state = dict(state)
        blob = state.pop("fitted_blob_", None)
        self.__dict__.update(state)
        if blob is not None:
            self.__dict__.update(cloudpickle.loads(blob))

    # ------------------------------------------------------------------ the long frame
    def long(self, X: pd.DataFrame, y: Any = None) -> pd.DataFrame:  # noqa: N803
        """`unique_id, ds, y, exogenous...` in this estimator's column names, sorted, with the row's position."""
        import pandas as pd

        ds = pd.to_datetime(X[self.time_column])
        if ds.dt.tz is not None:
            ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
        ids = X[self.series_id].astype(str) if self.series_id else pd.Series(SINGLE, index=X.index)
        long = pd.DataFrame({"unique_id": ids.to_numpy(), "ds": ds.to_numpy(), "row": range(len(X))})
        values = y if y is not None else (X[self.target] if self.target in X.columns else None)
        if values is not None:
            long["y"] = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        for name in self.exogenous:
            long[name] = X[name].to_numpy()
        return long.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)

    def _frequency(self, long: pd.DataFrame) -> str:
        found = self.frequency or infer_frequency(long)
        if found is None:
            raise ValueError("timestamps are irregular: set forecast.frequency")
        return found

    def _season(self, frequency: str) -> int:
        return self.season_length or season_length(frequency)

    # ------------------------------------------------------------------ the libraries
    def _engine(self, frequency: str, seed_offset: int = 0) -> Any:
        """The statsforecast, mlforecast or Prophet object for this configuration (unfitted)."""
        season = self._season(frequency)
        if self.method == "prophet":
            return ProphetEngine(frequency, dict(self.params or {}), self.seed + seed_offset)
        if self.method in STATISTICAL:
            from statsforecast import StatsForecast

            return StatsForecast(models=[self._statistical(self.method, season)], freq=frequency, n_jobs=1)
        if self.method != "lightgbm":
            raise ValueError(f"unknown forecasting method {self.method!r}")
        from lightgbm import LGBMRegressor
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean
        from mlforecast.target_transforms import Differences

        params = dict(self.params or {})
        lags = int(params.pop("lags", season))
        window = int(params.pop("rolling_window", max(season // 2, 2)))
        # trees cannot extrapolate a trend: by default they learn the period-on-period changes
        differences = [1] if params.pop("difference", True) else []
        booster = LGBMRegressor(random_state=self.seed + seed_offset, n_jobs=1, verbose=-1, **params)
        lag_list = sorted({1, *range(1, lags + 1)}) if lags <= 3 else sorted({1, 2, 3, lags})
        calendar = _calendar(frequency)
        return MLForecast(
            models={"model": booster},
            freq=frequency,
            lags=lag_list,
            lag_transforms={1: [RollingMean(window_size=window)]},
            date_features=calendar,
            target_transforms=[Differences(differences)] if differences else None,
        )

    @staticmethod
    def _statistical(method: str, season: int) -> Any:
        from statsforecast import models

        if method == "seasonal_naive":
            return models.SeasonalNaive(season_length=season, alias="model")
        return getattr(models, STATISTICAL[method] or "")(season_length=season, alias="model")

    # ------------------------------------------------------------------ fit and forecast
    def fit(self, X: pd.DataFrame, y: Any = None) -> Forecaster:  # noqa: N803
        """Learn from the whole history (the model that serves forecasts after its end)."""
        long = self.long(X, y).drop(columns="row")
        frequency = self._frequency(long)
        engine = self._engine(frequency)
        with _quiet():
            if self.method in LIKE_STATSFORECAST:
                engine.fit(df=long)
            else:
                from mlforecast.utils import PredictionIntervals

                engine.fit(
                    long, static_features=[], prediction_intervals=PredictionIntervals(n_windows=2, h=self.horizon)
                )
        self.engine_ = engine
        self.frequency_ = frequency
        self.history_ = long
        self.n_features_in_ = X.shape[1]
        return self

    def forecast(self, horizon: int | None = None, future: pd.DataFrame | None = None) -> pd.DataFrame:
        """`unique_id, ds, point, lo_80, hi_80, lo_95, hi_95`: `horizon` periods after the training end.

        `future` holds the exogenous columns for those periods (`unique_id, ds, <exogenous>`)."""
        h = horizon or self.horizon
        if self.exogenous and future is None:
            raise ValueError(f"forecasting needs the future values of {', '.join(self.exogenous)}")
        with _quiet():
            if self.method in LIKE_STATSFORECAST:
                kwargs = {"X_df": future} if self.exogenous else {}
                raw = self.engine_.predict(h=h, level=list(LEVELS), **kwargs)
            else:
                raw = self.engine_.predict(h, level=list(LEVELS), X_df=future if self.exogenous else None)
        return _renamed(raw.reset_index() if "unique_id" not in raw.columns else raw)

    # ------------------------------------------------------------------ the backtest
    def backtest(self, X: pd.DataFrame, y: Any = None) -> pd.DataFrame:  # noqa: N803
        """Rolling-origin forecasts on `X`: `unique_id, ds, cutoff, y, point, lo_*, hi_*, naive, scale, row`."""
        long = self.long(X, y)
        key = _key(self, long)
        if key in _BACKTESTS:
            return _BACKTESTS[key]
        frequency = self._frequency(long)
        season = self._season(frequency)
        data = long.drop(columns="row")
        step = self.step or self.horizon
        with _quiet():
            if self.method in LIKE_STATSFORECAST:
                raw = self._engine(frequency).cross_validation(
                    df=data, h=self.horizon, n_windows=self.windows, step_size=step, level=list(LEVELS), refit=True
                )
            else:
                from mlforecast.utils import PredictionIntervals

                raw = self._engine(frequency).cross_validation(
                    data,
                    n_windows=self.windows,
                    h=self.horizon,
                    step_size=step,
                    refit=True,
                    static_features=[],
                    level=list(LEVELS),
                    prediction_intervals=PredictionIntervals(n_windows=2, h=self.horizon),
                )
            from statsforecast import StatsForecast
            from statsforecast.models import SeasonalNaive

            naive = StatsForecast(models=[SeasonalNaive(season_length=season, alias="naive")], freq=frequency)
            baseline = naive.cross_validation(
                df=data[["unique_id", "ds", "y"]], h=self.horizon, n_windows=self.windows, step_size=step, refit=True
            )
        frame = _renamed(raw.reset_index() if "unique_id" not in raw.columns else raw)
        frame = frame.merge(baseline[["unique_id", "ds", "cutoff", "naive"]], on=["unique_id", "ds", "cutoff"])
        frame = frame.merge(_scales(data, season), on=["unique_id", "cutoff"], how="left")
        frame = frame.merge(long[["unique_id", "ds", "row"]], on=["unique_id", "ds"])
        if len(_BACKTESTS) >= MAX_CACHED:  # the oldest first: a long tuning keeps only its recent trials
            _BACKTESTS.pop(next(iter(_BACKTESTS)))
        _BACKTESTS[key] = frame
        return frame

    def can_backtest(self, X: pd.DataFrame) -> bool:  # noqa: N803
        """Whether every series of `X` is long enough for the backtest (its windows and a season before them)."""
        long = self.long(X)
        shortest = int(long.groupby("unique_id")["ds"].size().min()) if len(long) else 0
        span = self.horizon + (self.step or self.horizon) * (self.windows - 1)
        return shortest > span + 2

    @property
    def layers(self) -> int:
        """Blocks of `OUTPUT` columns `predict` returns: 1, or with overlapping windows (step < horizon) as
        many as origins forecast one period (ceil(horizon / step))."""
        return -(-self.horizon // (self.step or self.horizon))

    def predict(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        """The backtest as one row per row of `X` (columns `OUTPUT`; NaN outside the windows).

        Overlapping windows give `layers` blocks of `OUTPUT` columns: the i-th origin of a series (in
        time order) writes block i % layers, whose windows are `layers x step` >= horizon periods apart,
        so no two of them forecast the same row (`metrics.forecast.stacked` reads them as rows)."""
        import numpy as np
        import pandas as pd

        width, k = len(OUTPUT), self.layers
        output = np.full((len(X), width * k), np.nan)
        if not self.can_backtest(X):  # a few rows (MLflow's input example): nothing to score them on
            return output
        frame = self.backtest(X)
        groups = pd.MultiIndex.from_frame(frame[["unique_id", "cutoff"]].astype(str)).factorize()[0]
        origin = frame.groupby("unique_id", sort=False)["cutoff"].rank(method="dense").to_numpy(dtype=int) - 1
        for layer in range(k):
            mine = (origin % k == layer) if k > 1 else np.ones(len(frame), dtype=bool)
            part, rows = frame.loc[mine], frame["row"].to_numpy()[mine]
            for position, column in enumerate(OUTPUT[:-1]):
                if column in part.columns:
                    output[rows, width * layer + position] = part[column].to_numpy(dtype=float)
            output[rows, width * layer + width - 1] = groups[mine]
        return output


class ProphetEngine:
    """Prophet (one model per series) behind statsforecast's calls: `fit(df=)`, `predict(h=, level=, X_df=)`,
    `cross_validation(df=, h=, n_windows=, step_size=, level=, refit=True)`, with the same column names.

    Its intervals are quantiles of Prophet's predictive samples (trend and noise), all levels from one
    draw; the draw is seeded. Exogenous columns (any beyond unique_id, ds, y) are Prophet regressors.
    Fitted models are kept as Prophet's JSON (`model_to_json`), which is how Prophet saves a model.
    """

    def __init__(self, frequency: str, params: dict[str, Any], seed: int) -> None:
        self.frequency, self.params, self.seed = frequency, params, seed
        self.models: dict[str, str] = {}  # unique_id -> the fitted model as JSON

    def _new(self, regressors: list[str]) -> Any:
        import logging

        logging.getLogger("prophet.plot").disabled = True  # "Importing plotly failed": we draw no Prophet plot
        from cmdstanpy.utils import get_logger
        from prophet import Prophet

        get_logger().setLevel(logging.WARNING)  # cmdstanpy sets its logger to INFO when first asked for it
        logging.getLogger("prophet").setLevel(logging.WARNING)

        yearly = self.frequency.split("-")[0] in ("MS", "ME", "QS", "QE", "W", "D", "B")
        model = Prophet(
            yearly_seasonality=yearly,
            weekly_seasonality=self.frequency.split("-")[0] in ("D", "B", "h"),
            daily_seasonality=self.frequency == "h",
            uncertainty_samples=500,
            **self.params,
        )
        for name in regressors:
            model.add_regressor(name)
        return model

    def fit(self, df: pd.DataFrame) -> ProphetEngine:
        from prophet.serialize import model_to_json

        regressors = [c for c in df.columns if c not in ("unique_id", "ds", "y")]
        self.models = {}
        for uid, part in df.groupby("unique_id", sort=False):
            model = self._new(regressors)
            model.fit(part.drop(columns="unique_id"))
            self.models[str(uid)] = model_to_json(model)
        return self

    def predict(self, h: int, level: list[int], X_df: pd.DataFrame | None = None) -> pd.DataFrame:  # noqa: N803
        import pandas as pd
        from prophet.serialize import model_from_json

        parts = []
        for uid, saved in self.models.items():
            model = model_from_json(saved)
            future = model.make_future_dataframe(periods=h, freq=self.frequency, include_history=False)
            if X_df is not None:
                rows = X_df[X_df["unique_id"].astype(str) == uid].drop(columns="unique_id")
                future = future.merge(rows, on="ds", how="left")
            parts.append(self._answer(model, future, level).assign(unique_id=uid))
        return pd.concat(parts, ignore_index=True)

    def _answer(self, model: Any, future: pd.DataFrame, level: list[int]) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        state = np.random.get_state()
        np.random.seed(self.seed)  # Prophet draws its samples from numpy's global generator
        try:
            point = model.predict(future)["yhat"].to_numpy()
            samples = model.predictive_samples(future)["yhat"]
        finally:
            np.random.set_state(state)
        answer = pd.DataFrame({"ds": future["ds"].to_numpy(), "model": point})
        for lvl in level:
            tail = (100 - lvl) / 200
            answer[f"model-lo-{lvl}"] = np.quantile(samples, tail, axis=1)
            answer[f"model-hi-{lvl}"] = np.quantile(samples, 1 - tail, axis=1)
        return answer

    def cross_validation(
        self, df: pd.DataFrame, h: int, n_windows: int, step_size: int, level: list[int], refit: bool = True
    ) -> pd.DataFrame:
        import pandas as pd

        regressors = [c for c in df.columns if c not in ("unique_id", "ds", "y")]
        parts = []
        for uid, part in df.groupby("unique_id", sort=False):
            part = part.reset_index(drop=True)
            for window in range(n_windows):
                end = len(part) - h - step_size * (n_windows - 1 - window)  # rows up to the origin
                history, ahead = part.iloc[:end], part.iloc[end : end + h]
                model = self._new(regressors)
                model.fit(history.drop(columns="unique_id"))
                answer = self._answer(model, ahead.drop(columns=["unique_id", "y"]), level)
                answer = answer.assign(unique_id=uid, cutoff=history["ds"].iloc[-1], y=ahead["y"].to_numpy())
                parts.append(answer)
        return pd.concat(parts, ignore_index=True)


def _calendar(frequency: str) -> list[str]:
    base = frequency.split("-")[0]
    if base in ("MS", "ME"):
        return ["month"]
    if base in ("QS", "QE"):
        return ["quarter"]
    if base in ("D", "B", "h"):
        return ["dayofweek"]
    if base == "W":
        return ["week"]
    return []


def _renamed(raw: pd.DataFrame) -> pd.DataFrame:
    """`model`, `model-lo-80` ... as `point`, `lo_80` ..."""
    names = {"model": "point"}
    for level in LEVELS:
        names[f"model-lo-{level}"] = f"lo_{level}"
        names[f"model-hi-{level}"] = f"hi_{level}"
    return raw.rename(columns=names)


def _scales(data: pd.DataFrame, season: int) -> pd.DataFrame:
    """Per series and origin: the mean |y_t - y_{t-season}| of the history up to the origin (MASE's scale)."""
    import numpy as np
    import pandas as pd

    rows = []
    for uid, part in data.groupby("unique_id", sort=False):
        values, times = part["y"].to_numpy(dtype=float), part["ds"].to_numpy()
        lag = season if len(values) > season else 1
        diffs = np.abs(values[lag:] - values[:-lag])
        cumulative = np.concatenate([[0.0], np.cumsum(diffs)])
        for end, cutoff in enumerate(times, start=1):  # history up to and including `cutoff`: `end` values
            count = end - lag
            rows.append((uid, cutoff, cumulative[count] / count if count > 0 else np.nan))
    scales = pd.DataFrame(rows, columns=["unique_id", "cutoff", "scale"])
    scales.loc[scales["scale"] <= 0, "scale"] = np.nan
    return scales


def _key(model: Forecaster, long: pd.DataFrame) -> str:
    import pandas as pd

    hasher = hashlib.sha256(repr(sorted(model.get_params().items())).encode())
    hasher.update(pd.util.hash_pandas_object(long, index=False).to_numpy().tobytes())
    return hasher.hexdigest()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The forecasting libraries' pandas-3 deprecation notes (`copy=` keywords) are theirs, not ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield
