"""`POST /forecast`: a served forecaster's points and intervals for one series, `horizon` periods ahead.

    {"series_id": "all", "horizon": 12}                                  -> the next 12 periods
    {"series_id": "NSW", "horizon": 3, "future": [{"month": "2017-10-01", "price": 1.2}, ...]}

The model answers from the end of the history it was trained on (a registered forecaster holds it).
`series_id` may be left out when the model forecasts one series, `horizon` (1 to the model's) when
the model's own is wanted. Exogenous columns are known in advance: `future` must give each for every
period asked (the time is optional: the periods after the training end, in order), else the request
is refused (422) with the columns it lacks; an unknown series is a 404. A request names one series;
the series id routes it to the champion or the challenger, as an entity id does on `/predict`.

The body becomes the rows of a `python_function` request (`retrainer.forecasting.ahead`: one row per
future period, each with `series_id` and `horizon`) and is answered by `LoadedModel.answer`, the code
of the version's `python_function` flavor: `mlflow.pyfunc` answers the same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.errors import ForecastRefused

if TYPE_CHECKING:
    from retrainer.serving.deployment import LoadedModel

__all__ = ["ForecastRefused", "answer", "parse", "request_rows"]


def parse(body: Any) -> tuple[str | None, int | None, list[dict[str, Any]] | None]:
    """(series id, horizon, future rows) of a request body, None where left out; a malformed one is refused.

    The horizon's range and the series are the model's to check (`forecasting.ahead`), as for MLflow's callers."""
    if not isinstance(body, dict):
        raise ForecastRefused("send a JSON object: {series_id, horizon, future (exogenous values)}")
    series = body.get("series_id")
    horizon = body.get("horizon")
    if horizon is not None and (not isinstance(horizon, int) or isinstance(horizon, bool)):
        raise ForecastRefused(f"horizon must be a whole number, not {horizon!r}")
    future = body.get("future")
    if future is not None and not (isinstance(future, list) and all(isinstance(row, dict) for row in future)):
        raise ForecastRefused("future must be a list of objects (a time and each exogenous column)")
    return None if series is None else str(series), horizon, future


def request_rows(series: str | None, horizon: int | None, future: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The `python_function` request of one body: a row per future period (or one row without `future`)."""
    return [{**row, "series_id": series, "horizon": horizon} for row in (future or [{}])]


def answer(
    model: LoadedModel, series: str | None, horizon: int | None, future: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The forecast of `series` by the served version, in JSON."""
    import pandas as pd

    answered = model.answer(pd.DataFrame(request_rows(series, horizon, future)))
    points = [
        {
            **{k: v for k, v in point.items() if k != "series_id"},
            "ds": pd.Timestamp(point["ds"]).isoformat(),
        }
        for point in answered
    ]
    name = answered[0]["series_id"] if answered else series
    return {"series_id": name, "alias": model.alias, "version": model.version, "forecasts": points}
