"""`POST /forecast`: a served forecaster's points and intervals for one series, `horizon` periods ahead.

    {"series_id": "all", "horizon": 12}                                  -> the next 12 periods
    {"series_id": "NSW", "horizon": 3, "future": [{"month": "2017-10-01", "price": 1.2}, ...]}

The model answers from the end of the history it was trained on (a registered forecaster holds it).
Exogenous columns are known in advance: `future` must give each for every period asked, else the
request is refused (422) with the columns it lacks. A request names one series; the series id
routes it to the champion or the challenger, as an entity id does on `/predict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.serving.deployment import LoadedModel


class ForecastRefused(Exception):
    """A request the model cannot answer: its status and what to tell the caller."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def parse(body: Any, default_horizon: int) -> tuple[str, int, list[dict[str, Any]] | None]:
    """(series id, horizon, future rows) of a request body; a malformed one is refused."""
    if not isinstance(body, dict):
        raise ForecastRefused(422, "send a JSON object: {series_id, horizon, future (exogenous values)}")
    series = str(body.get("series_id", "all"))
    horizon = body.get("horizon", default_horizon)
    if not isinstance(horizon, int) or isinstance(horizon, bool) or not 1 <= horizon <= default_horizon:
        raise ForecastRefused(422, f"horizon must be a whole number from 1 to {default_horizon} (the model's)")
    future = body.get("future")
    if future is not None and not (isinstance(future, list) and all(isinstance(row, dict) for row in future)):
        raise ForecastRefused(422, "future must be a list of objects (a time and each exogenous column)")
    return series, horizon, future


def answer(model: LoadedModel, series: str, horizon: int, future: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The forecast of `series` by the served version, in JSON."""
    forecaster = model.model[-1]
    known = set(forecaster.history_["unique_id"].astype(str))
    if series not in known:
        shown = ", ".join(sorted(known)[:10])
        raise ForecastRefused(404, f"unknown series_id {series!r} (the model knows {shown})")
    frame = _future(forecaster, series, horizon, future)
    ahead = forecaster.forecast(horizon, frame)
    ahead = ahead[ahead["unique_id"].astype(str) == series].head(horizon)
    points = [
        {
            "ds": row.ds.isoformat(),
            "forecast": float(row.point),
            **{name: _value(getattr(row, name, None)) for name in ("lo_80", "hi_80", "lo_95", "hi_95")},
        }
        for row in ahead.itertuples()
    ]
    return {"series_id": series, "alias": model.alias, "version": model.version, "forecasts": points}


def _future(forecaster: Any, series: str, horizon: int, future: list[dict[str, Any]] | None) -> pd.DataFrame | None:
    """The exogenous values of the periods asked, as the forecaster takes them; None without exogenous columns."""
    import pandas as pd

    exogenous = list(forecaster.exogenous)
    if not exogenous:
        return None
    rows = pd.DataFrame(future or [])
    missing = [c for c in exogenous if c not in rows.columns]
    if missing or len(rows) < horizon or rows[exogenous].isna().to_numpy().any():
        lacking = ", ".join(missing or exogenous)
        raise ForecastRefused(
            422, f"future values of {lacking} are needed for each of the {horizon} periods (known in advance)"
        )
    history = forecaster.history_
    every = history["unique_id"].astype(str).unique()
    if forecaster.time_column in rows.columns:
        times = pd.to_datetime(rows[forecaster.time_column]).head(horizon).to_numpy()
    else:  # the periods after the training end, in order
        after = pd.date_range(history["ds"].max(), periods=horizon + 1, freq=forecaster.frequency_)[1:]
        times = after.to_numpy()
    values = rows[exogenous].head(horizon).reset_index(drop=True)
    parts = [values.assign(unique_id=uid, ds=times) for uid in every]  # the libraries want every series' futures
    return pd.concat(parts, ignore_index=True)[["unique_id", "ds", *exogenous]]


def _value(value: Any) -> float | None:
    import math

    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
