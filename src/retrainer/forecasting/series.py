"""Series in a table: the long frame the forecasting libraries read, its frequency, and its data checks.

statsforecast and mlforecast read one long frame `unique_id, ds, y` (plus exogenous columns); a spec
names its own columns, so `long_frame` renames them once and every other module speaks the long form.
A single series (no `series_id`) is the series `"all"`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrainer.frequencies import infer_frequency

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec

SINGLE = "all"  # the unique_id of a spec without series_id


def long_frame(frame: pd.DataFrame, spec: Spec, with_target: bool = True) -> pd.DataFrame:
    """`unique_id, ds, [y], exogenous...` sorted by series then time, timestamps naive."""
    import pandas as pd

    assert spec.forecast is not None and spec.time_column is not None
    rules = spec.forecast
    ds = pd.to_datetime(frame[spec.time_column])
    if ds.dt.tz is not None:
        ds = ds.dt.tz_convert("UTC").dt.tz_localize(None)
    ids = frame[rules.series_id].astype(str) if rules.series_id else pd.Series(SINGLE, index=frame.index)
    columns = {"unique_id": ids.to_numpy(), "ds": ds.to_numpy()}
    if with_target:
        columns["y"] = pd.to_numeric(frame[spec.target.column], errors="coerce").to_numpy(dtype=float)
    long = pd.DataFrame(columns)
    for name in rules.exogenous:
        long[name] = frame[name].to_numpy()
    return long.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)


def series_checks(frame: pd.DataFrame, spec: Spec, as_of: datetime | None = None) -> list[tuple[str, bool, str]]:
    """The forecasting data checks as (name, passed, message): duplicates, gaps, frequency, length, staleness.

    Every check runs (Hamilton's way: collect, then decide); the validate stage turns them into `Check`s.
    """
    import pandas as pd

    assert spec.forecast is not None and spec.time_column is not None
    rules = spec.forecast
    for column in filter(None, (spec.time_column, spec.target.column, rules.series_id, *rules.exogenous)):
        if column not in frame.columns:
            return [("forecast_columns", False, f"column '{column}' is missing")]
    long = long_frame(frame, spec)
    checks: list[tuple[str, bool, str]] = []
    target = pd.to_numeric(frame[spec.target.column], errors="coerce")
    bad = int(target.isna().sum() - frame[spec.target.column].isna().sum())
    checks.append(
        (
            "numeric_target",
            bad == 0 and pd.api.types.is_numeric_dtype(frame[spec.target.column]),
            f"target '{spec.target.column}' is numeric"
            if bad == 0 and pd.api.types.is_numeric_dtype(frame[spec.target.column])
            else f"target '{spec.target.column}' is not numeric ({frame[spec.target.column].dtype}): a forecast "
            "predicts numbers",
        )
    )
    duplicated = long.duplicated(["unique_id", "ds"], keep=False)
    dupes = long.loc[duplicated]
    checks.append(
        (
            "duplicate_timestamps",
            dupes.empty,
            "one value per series and timestamp"
            if dupes.empty
            else f"{dupes['unique_id'].nunique()} series have duplicate timestamps "
            f"(e.g. {dupes['unique_id'].iloc[0]} at {dupes['ds'].iloc[0]:%Y-%m-%d})",
        )
    )
    frequency = rules.frequency or (infer_frequency(long.loc[~duplicated]) if dupes.empty else None)
    if frequency is None and dupes.empty:
        checks.append(
            (
                "regular_timestamps",
                False,
                "timestamps are irregular: no single frequency fits every series "
                "(set forecast.frequency, or fill the gaps at the source)",
            )
        )
        return checks
    if frequency is None:
        return checks
    season = rules.season(frequency)
    gaps, short = [], []
    need = rules.min_length(season)
    for uid, times in long.groupby("unique_id", sort=False)["ds"]:
        expected = pd.date_range(times.iloc[0], times.iloc[-1], freq=_offset(frequency, times.iloc[0]))
        if len(expected) != times.nunique():
            gaps.append(f"{uid} ({len(expected) - times.nunique()} missing)")
        if times.nunique() < need:
            short.append(f"{uid} ({times.nunique()})")
    checks.append(
        (
            "no_gaps",
            not gaps,
            f"every series is complete at frequency {frequency}"
            if not gaps
            else f"{len(gaps)} series have gaps at frequency {frequency}: {', '.join(gaps[:3])}",
        )
    )
    checks.append(
        (
            "series_length",
            not short,
            f"every series has at least {need} periods"
            if not short
            else f"{len(short)} series are too short for a backtest of {rules.backtest.windows} windows x horizon "
            f"{rules.horizon} (need {need} periods): {', '.join(short[:3])}",
        )
    )
    if spec.validation.max_age:
        from retrainer.spec import parse_duration

        now = pd.Timestamp(as_of or datetime.now(UTC))
        now = now.tz_convert("UTC").tz_localize(None) if now.tzinfo is not None else now
        bound = pd.Timedelta(seconds=parse_duration(spec.validation.max_age))
        last = long.groupby("unique_id", sort=False)["ds"].max()
        stale = last[last < now - bound]
        checks.append(
            (
                "series_fresh",
                stale.empty,
                f"every series has data within {spec.validation.max_age}"
                if stale.empty
                else f"{len(stale)} series end before {now - bound:%Y-%m-%d} (max_age {spec.validation.max_age}): "
                + ", ".join(f"{uid} ({ts:%Y-%m-%d})" for uid, ts in stale.head(3).items()),
            )
        )
    return checks


def _offset(frequency: str, first: pd.Timestamp) -> str:
    """A frequency anchored like the series (weekly on its weekday), so date_range hits its timestamps."""
    if frequency == "W":
        return f"W-{first.day_name()[:3].upper()}"
    if frequency in ("QS", "QE", "YS", "YE"):
        return f"{frequency}-{first.month_name()[:3].upper()}"
    return frequency


def frequency_of(frame: pd.DataFrame, spec: Spec) -> str:
    """The spec's frequency, else the inferred one (the checks ran before: it exists)."""
    assert spec.forecast is not None
    if spec.forecast.frequency:
        return spec.forecast.frequency
    found = infer_frequency(long_frame(frame, spec))
    if found is None:
        from retrainer.errors import DataValidationError

        raise DataValidationError(
            "timestamps are irregular: no single frequency fits every series",
            failures=["forecast: irregular timestamps"],
            hint="set forecast.frequency, or fill the gaps at the source",
        )
    return found


LEVEL_SHIFT = 3.0  # a level this many typical period-on-period changes away from the reference: drifted
MIN_SEASONAL_CORRELATION = 0.5  # a seasonal shape less alike than this (Pearson) to the reference: drifted


def series_profile(frame: pd.DataFrame, spec: Spec) -> dict[str, dict[str, Any]]:
    """Per series: its level (the mean of its last season), its typical change (the mean |seasonal
    difference|) and its seasonal shape (the mean of each position in the season, less the mean)."""
    import numpy as np

    from retrainer.frequencies import season_length

    assert spec.forecast is not None
    long = long_frame(frame, spec)
    frequency = frequency_of(frame, spec)
    season = spec.forecast.season_length or season_length(frequency)
    profile: dict[str, dict[str, Any]] = {}
    for uid, part in long.groupby("unique_id", sort=False):
        values = part["y"].to_numpy(dtype=float)
        recent = values[-max(season, 1) :]
        lag = season if len(values) > season else 1
        change = float(np.mean(np.abs(values[lag:] - values[:-lag]))) if len(values) > lag else 0.0
        positions = _positions(part["ds"], frequency, season)
        shape = [float(np.mean(values[positions == p])) for p in range(season)] if season > 1 else []
        mean = float(np.mean(shape)) if shape else 0.0
        profile[str(uid)] = {
            "level": float(np.mean(recent)),
            "change": change,
            "season": [round(v - mean, 6) for v in shape],
            "last": str(part["ds"].max().date()),
        }
    return profile


def series_drift(reference: dict[str, dict[str, Any]], frame: pd.DataFrame, spec: Spec) -> list[dict[str, Any]]:
    """Each series' level and seasonal shape now against the champion's training data (`series_profile`)."""
    import numpy as np

    current = series_profile(frame, spec)
    found = []
    for uid, now in current.items():
        then = reference.get(uid)
        if then is None:
            found.append({"series": uid, "drifted": False, "reasons": ["new series: no reference"]})
            continue
        scale = then["change"] or abs(then["level"]) or 1.0
        shift = (now["level"] - then["level"]) / scale
        reasons = []
        if abs(shift) > LEVEL_SHIFT:
            reasons.append(f"level {then['level']:.4g} -> {now['level']:.4g} ({shift:+.1f} typical changes)")
        correlation = None
        old, new = np.asarray(then["season"]), np.asarray(now["season"])
        if len(old) == len(new) > 2 and old.std() > 0 and new.std() > 0:
            correlation = float(np.corrcoef(old, new)[0, 1])
            if correlation < MIN_SEASONAL_CORRELATION:
                reasons.append(f"seasonal shape changed (correlation {correlation:.2f})")
        found.append(
            {
                "series": uid,
                "drifted": bool(reasons),
                "level_shift": round(float(shift), 4),
                "seasonal_correlation": None if correlation is None else round(correlation, 4),
                "reasons": reasons,
            }
        )
    return found


def _positions(times: pd.Series, frequency: str, season: int) -> Any:
    """Each timestamp's position in its season (month of year, quarter, weekday...), 0-based."""
    import numpy as np

    if season <= 1:
        return np.zeros(len(times), dtype=int)
    stamps = times.dt
    base = frequency.split("-")[0]
    if base in ("MS", "ME") and season == 12:
        return (stamps.month - 1).to_numpy()
    if base in ("QS", "QE") and season == 4:
        return (stamps.quarter - 1).to_numpy()
    if base in ("D", "B") and season in (5, 7):
        return stamps.dayofweek.to_numpy() % season
    if base == "h" and season == 24:
        return stamps.hour.to_numpy()
    return np.arange(len(times)) % season
