"""Forecasts after the training end, as the registered model answers them: one function for every caller.

A request is a frame of rows, the same for the `python_function` flavor (`mlflow.pyfunc.load_model(uri)
.predict(rows)`, `mlflow models serve`) and `retrainer serve`'s `POST /forecast` (which turns its JSON
body into these rows), so the two cannot drift:

    series_id   which series (optional when the model forecasts one series: that one)
    horizon     how many periods ahead, 1 to the model's horizon (optional: the model's)

    series_id  horizon                  a model without exogenous columns: one row per series
    NSW        3
    VIC        12

A model with exogenous columns (known in advance) needs their values for each period it forecasts:
one row per series and period, in time order, each with every exogenous column and optionally the
period's time (the model's time column; then rows are matched to the periods by it, and a period
without a row is refused). The periods are those after the series' last training timestamp.

    series_id  horizon  month       price
    NSW        2        2017-10-01  1.2
    NSW        2        2017-11-01  1.3

The answer (`forecasts`) has one row per series and step, series in the order asked: `series_id`,
`step` (1..horizon), `ds` (the period's timestamp), `forecast`, and `lo_80`, `hi_80`, `lo_95`,
`hi_95` (NaN where the model gives no interval). A request the model cannot answer raises
`ForecastRefused` (an unknown series: status 404; a horizon past the model's, a missing future
value: 422), one line naming what is wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.errors import ForecastRefused

if TYPE_CHECKING:
    import pandas as pd

SERIES, HORIZON = "series_id", "horizon"  # the request columns every forecaster takes
INTERVALS = ("lo_80", "hi_80", "lo_95", "hi_95")
ANSWER = (SERIES, "step", "ds", "forecast", *INTERVALS)


def forecaster_of(model: Any) -> Any:
    """The `Forecaster` at the end of a registered pipeline (or the forecaster itself)."""
    return model if hasattr(model, "forecast") else model[-1]


def request_columns(model: Any) -> list[tuple[str, str, bool]]:
    """(column, MLflow type, required) of a request: the model's signature inputs."""
    from retrainer.column_types import source_columns

    forecaster = forecaster_of(model)
    columns = [(SERIES, "string", False), (HORIZON, "long", False)]
    exogenous = list(forecaster.exogenous)
    if exogenous:
        columns.append((forecaster.time_column, "datetime", False))
        types = {c: kind for c, kind, _ in source_columns(forecaster.history_[exogenous])}
        columns += [(c, types[c], True) for c in exogenous]
    return columns


def request_example(model: Any) -> pd.DataFrame:
    """A request for every series at the model's horizon; exogenous values stand in from each series'
    last `horizon` training periods (the input example, and what the readiness check asks)."""
    import pandas as pd

    forecaster = forecaster_of(model)
    horizon = int(forecaster.horizon)
    ends = _ends(forecaster)
    exogenous = list(forecaster.exogenous)
    if not exogenous:
        return pd.DataFrame({SERIES: list(ends), HORIZON: [horizon] * len(ends)})
    stand_in = _stand_in(forecaster, horizon, ends)
    stand_in = stand_in.rename(columns={"unique_id": SERIES, "ds": forecaster.time_column})
    return stand_in.assign(**{HORIZON: horizon})[[SERIES, HORIZON, forecaster.time_column, *exogenous]]


def forecasts(model: Any, requests: pd.DataFrame) -> pd.DataFrame:
    """The forecasts asked by `requests` (see the module docstring), one row per series and step."""
    import numpy as np
    import pandas as pd

    forecaster = forecaster_of(model)
    ends = _ends(forecaster)  # read once per request: each series' training end
    asked = _asked(forecaster, requests, ends)
    parts = []
    for horizon in sorted({h for _, h, _ in asked}):
        here = [(series, rows) for series, h, rows in asked if h == horizon]
        future = _future(forecaster, horizon, here, requests, ends) if list(forecaster.exogenous) else None
        ahead = forecaster.forecast(horizon, future)
        ahead = ahead.assign(unique_id=ahead["unique_id"].astype(str)).sort_values(["unique_id", "ds"], kind="stable")
        for series, _ in here:
            mine = ahead.loc[ahead["unique_id"] == series].head(horizon)
            part = pd.DataFrame(
                {
                    SERIES: series,
                    "step": np.arange(1, len(mine) + 1),
                    "ds": pd.to_datetime(mine["ds"]).to_numpy(),
                    "forecast": mine["point"].to_numpy(dtype=float),
                    **{name: _column(mine, name) for name in INTERVALS},
                }
            )
            parts.append((series, part))
    order = {series: i for i, (series, _, _) in enumerate(asked)}
    parts.sort(key=lambda pair: order[pair[0]])
    return pd.concat([part for _, part in parts], ignore_index=True)[list(ANSWER)]


def records(answer: pd.DataFrame) -> list[dict[str, Any]]:
    """`forecasts`' frame as plain values: numbers as floats (a missing interval None), `ds` a Timestamp."""
    import math

    found = []
    for row in answer.to_dict(orient="records"):
        entry: dict[str, Any] = {SERIES: str(row[SERIES]), "step": int(row["step"]), "ds": row["ds"]}
        for name in ("forecast", *INTERVALS):
            value = float(row[name])
            entry[name] = None if math.isnan(value) else value
        found.append(entry)
    return found


# ---------------------------------------------------------------------------- reading a request
def _asked(forecaster: Any, requests: pd.DataFrame, known: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    """(series, horizon, the request's row positions) per series asked, in the order first asked
    (`known`: the model's series and their training ends)."""
    if not len(requests):
        raise ForecastRefused("no forecast asked: send one row per series (series_id, horizon)")
    ids = requests[SERIES].tolist() if SERIES in requests.columns else [None] * len(requests)
    horizons = requests[HORIZON].tolist() if HORIZON in requests.columns else [None] * len(requests)
    found: dict[str, tuple[set[int], list[int]]] = {}
    for position, (value, asked_horizon) in enumerate(zip(ids, horizons, strict=True)):
        series = _series(value, known)
        horizon = _horizon(asked_horizon, int(forecaster.horizon))
        wanted, rows = found.setdefault(series, (set(), []))
        if horizon is not None:
            wanted.add(horizon)
        rows.append(position)
    asked = []
    for series, (wanted, rows) in found.items():
        if len(wanted) > 1:
            shown = " and ".join(str(h) for h in sorted(wanted))
            raise ForecastRefused(f"series_id {series!r} is asked with horizons {shown}: one horizon per series")
        asked.append((series, next(iter(wanted), int(forecaster.horizon)), rows))
    return asked


def _series(value: Any, known: dict[str, Any]) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        if len(known) == 1:
            return next(iter(known))
        shown = ", ".join(list(known)[:10])
        raise ForecastRefused(f"series_id is needed: the model forecasts {len(known)} series ({shown})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a numeric id read back as a float (a column with nulls)
    series = str(value)
    if series not in known:
        shown = ", ".join(sorted(known)[:10])
        raise ForecastRefused(f"unknown series_id {series!r} (the model knows {shown})", status=404)
    return series


def _horizon(value: Any, most: int) -> int | None:
    import numbers

    import pandas as pd

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    whole = isinstance(value, numbers.Integral) or (isinstance(value, numbers.Real) and float(value).is_integer())
    if isinstance(value, bool) or not whole or not 1 <= int(value) <= most:
        shown = int(value) if whole and not isinstance(value, bool) else repr(value)
        raise ForecastRefused(f"horizon must be a whole number from 1 to {most} (the model's), not {shown}")
    return int(value)


# ---------------------------------------------------------------------------- the exogenous futures
def _ends(forecaster: Any) -> dict[str, Any]:
    """Each series' last training timestamp, series in the order the model holds them."""
    history = forecaster.history_
    last = history.assign(unique_id=history["unique_id"].astype(str)).groupby("unique_id", sort=False)["ds"].max()
    return {str(series): end for series, end in last.items()}


def _periods(forecaster: Any, end: Any, horizon: int) -> Any:
    import pandas as pd

    return pd.date_range(end, periods=horizon + 1, freq=forecaster.frequency_)[1:]


def _stand_in(forecaster: Any, horizon: int, ends: dict[str, Any]) -> pd.DataFrame:
    """`unique_id, ds, exogenous...` for every series and period ahead, from its last training values: the
    libraries want every series' futures, so the series not asked get these (their forecasts are dropped)."""
    import pandas as pd

    exogenous = list(forecaster.exogenous)
    history = forecaster.history_.assign(unique_id=forecaster.history_["unique_id"].astype(str))
    parts = []
    for series, end in ends.items():
        recent = history.loc[history["unique_id"] == series, exogenous].tail(horizon).reset_index(drop=True)
        recent = recent.iloc[[i % len(recent) for i in range(horizon)]].reset_index(drop=True)
        parts.append(recent.assign(unique_id=series, ds=_periods(forecaster, end, horizon)))
    return pd.concat(parts, ignore_index=True)[["unique_id", "ds", *exogenous]]


def _future(
    forecaster: Any, horizon: int, asked: list[tuple[str, list[int]]], requests: pd.DataFrame, ends: dict[str, Any]
) -> pd.DataFrame:
    """`unique_id, ds, exogenous...` of the periods ahead: the request's values for the series asked."""
    import pandas as pd

    exogenous = list(forecaster.exogenous)
    time = forecaster.time_column
    frame = _stand_in(forecaster, horizon, ends)
    history = forecaster.history_
    for series, positions in asked:
        rows = requests.iloc[positions]
        periods = _periods(forecaster, ends[series], horizon)
        lacking = [c for c in exogenous if c not in rows.columns]
        if lacking:
            raise ForecastRefused(_needed(lacking, series, horizon, periods))
        if time in rows.columns and rows[time].notna().any():
            stamps = pd.to_datetime(rows[time], errors="coerce")
            if stamps.dt.tz is not None:
                stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
            by_time = rows.assign(_at=stamps.to_numpy()).drop_duplicates("_at").set_index("_at")
            missing = [p for p in periods if p not in by_time.index]
            if missing:
                raise ForecastRefused(_needed(exogenous, series, horizon, periods, f"none for {missing[0]:%Y-%m-%d}"))
            values = by_time.loc[periods, exogenous].reset_index(drop=True)
        else:
            if len(rows) < horizon:
                raise ForecastRefused(_needed(exogenous, series, horizon, periods, f"{len(rows)} given"))
            values = rows[exogenous].head(horizon).reset_index(drop=True)
        empty = values.isna()
        if empty.to_numpy().any():
            column = next(c for c in exogenous if empty[c].any())
            period = periods[int(empty[column].to_numpy().argmax())]
            raise ForecastRefused(_needed([column], series, horizon, periods, f"none for {period:%Y-%m-%d}"))
        for column in exogenous:
            kind = history[column].dtype
            if pd.api.types.is_numeric_dtype(kind):
                try:
                    values[column] = pd.to_numeric(values[column]).astype(kind)
                except (TypeError, ValueError):
                    raise ForecastRefused(f"future values of {column} must be numbers (as in training)") from None
        at = (frame["unique_id"] == series).to_numpy()
        frame.loc[at, exogenous] = values[exogenous].to_numpy()
    return frame.astype({c: history[c].dtype for c in exogenous})


def _needed(columns: list[str], series: str, horizon: int, periods: Any, detail: str = "") -> str:
    first, last = periods[0], periods[-1]
    return (
        f"future values of {', '.join(columns)} are needed for each of the {horizon} periods of series "
        f"{series!r} ({first:%Y-%m-%d} to {last:%Y-%m-%d}; known in advance)" + (f": {detail}" if detail else "")
    )


def _column(frame: pd.DataFrame, name: str) -> Any:
    import numpy as np

    return frame[name].to_numpy(dtype=float) if name in frame.columns else np.full(len(frame), np.nan)
