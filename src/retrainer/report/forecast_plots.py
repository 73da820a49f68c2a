"""A forecaster's plots, from its backtest (`metrics.FORECAST_OUTPUT` per test row): the history with
each origin's forecast and its 80 % / 95 % intervals, the error by horizon step, and the error of each
origin against the seasonal-naive forecast's on the same window.

The test set of a forecast is the whole history, sorted by series then time; the history plot shows
the first `MAX_SERIES` series, each on its own axes, against the test rows' timestamps (the first
datetime column of `Scored.rows`; periods counted from the series' start when there is none).
Overlapping windows (several blocks of columns, `metrics.forecast.stacked`) draw every origin's
forecast, and the error plots count each forecast of a period once per origin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.report.figures import BAD, CHALLENGER, CHAMPION, Scored, figure, png

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEMS = ("forecast_history", "error_by_step", "backtest_errors")
MAX_SERIES = 4
GROUP = -1  # the output's last column: series x origin


def draw(scored: Scored) -> dict[str, bytes]:
    """The plots of a backtest, by stem (`STEMS`)."""
    import numpy as np

    from retrainer.metrics.forecast import stacked

    y, output = scored.y.astype(float), np.asarray(scored.output, dtype=float)
    flat_y, flat = stacked(y, output)  # one row per forecast: each origin's of a period
    return {
        "forecast_history": history_plot(y, output, _times(scored.rows)),
        "error_by_step": error_by_step_plot(flat_y, flat),
        "backtest_errors": origin_errors_plot(flat_y, flat),
    }


def _times(rows: pd.DataFrame | None) -> np.ndarray | None:
    """The test rows' timestamps: their first column of dates (the spec's time column; text read from a
    CSV file is parsed), if any."""
    import warnings

    import pandas as pd

    if rows is None:
        return None
    for column in rows.columns:
        values = rows[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            found = values
        elif pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            with warnings.catch_warnings():  # "could not infer format": a column of names is not dates
                warnings.simplefilter("ignore")
                found = pd.to_datetime(values, errors="coerce")
            if found.isna().any():
                continue
        else:
            continue
        if found.dt.tz is not None:
            found = found.dt.tz_convert("UTC").dt.tz_localize(None)
        return found.to_numpy()
    return None


def _series_starts(output: np.ndarray) -> list[tuple[int, int]]:
    """(first row, end row) of each series: a series' rows end where the next one's history starts, which
    shows as a window's group code followed by rows without a forecast (in any block of columns)."""
    import numpy as np

    from retrainer.metrics.forecast import FORECAST_OUTPUT

    scored = np.isfinite(output[:, :: len(FORECAST_OUTPUT)]).any(axis=1)
    bounds, start = [], 0
    for row in range(1, len(output)):
        if scored[row - 1] and not scored[row]:  # the end of one series' last window
            bounds.append((start, row))
            start = row
    bounds.append((start, len(output)))
    return [(a, b) for a, b in bounds if b > a]


def history_plot(y: np.ndarray, output: np.ndarray, times: np.ndarray | None = None) -> bytes:
    import numpy as np
    from matplotlib.figure import Figure

    from retrainer.metrics.forecast import FORECAST_OUTPUT, layers

    width = len(FORECAST_OUTPUT)
    series = _series_starts(output)[:MAX_SERIES]
    drawn = Figure(figsize=(7.0, 2.6 * len(series)), dpi=90)
    axes = list(np.atleast_1d(drawn.subplots(len(series), 1)))
    for ax, (start, end) in zip(axes, series, strict=False):
        steps = np.arange(end - start) if times is None else times[start:end]
        values = y[start:end]
        ax.plot(steps, values, color="black", linewidth=1, label="actual")
        for layer in range(layers(output)):
            part = output[start:end, width * layer : width * (layer + 1)]
            scored = np.isfinite(part[:, 0])
            for code in np.unique(part[scored, GROUP]):
                rows = np.flatnonzero(part[:, GROUP] == code)
                ax.plot(steps[rows], part[rows, 0], color=CHALLENGER, linewidth=1.5)
                for low, high, alpha in ((3, 4, 0.15), (1, 2, 0.3)):
                    if np.isfinite(part[rows, low]).all():
                        ax.fill_between(steps[rows], part[rows, low], part[rows, high], color=CHALLENGER, alpha=alpha)
        ax.set_xlabel("period" if times is None else "time")
    axes[0].set_title("Backtest forecasts (blue; 80 % and 95 % intervals) against actuals")
    return png(drawn)


def _steps(output: np.ndarray) -> np.ndarray:
    """Each scored row's step ahead (1..h) within its window."""
    import numpy as np

    steps = np.zeros(len(output), dtype=int)
    codes = output[:, GROUP]
    for code in np.unique(codes[np.isfinite(codes)]):
        rows = np.flatnonzero(codes == code)
        steps[rows] = np.arange(1, len(rows) + 1)
    return steps


def error_by_step_plot(y: np.ndarray, output: np.ndarray) -> bytes:
    import numpy as np

    steps, scored = _steps(output), np.isfinite(output[:, 0])
    horizon = int(steps.max()) if scored.any() else 0
    model = [np.mean(np.abs(y - output[:, 0])[scored & (steps == s)]) for s in range(1, horizon + 1)]
    naive = [np.mean(np.abs(y - output[:, 6])[scored & (steps == s)]) for s in range(1, horizon + 1)]
    drawn, ax = figure(6.0, 3.5)
    ax.plot(range(1, horizon + 1), model, marker="o", color=CHALLENGER, label="model")
    ax.plot(range(1, horizon + 1), naive, marker="s", color=CHAMPION, label="seasonal naive")
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("mean absolute error")
    ax.set_title("Backtest error by horizon step")
    ax.legend()
    return png(drawn)


def origin_errors_plot(y: np.ndarray, output: np.ndarray) -> bytes:
    import numpy as np

    codes = output[:, GROUP]
    found = np.unique(codes[np.isfinite(codes)])
    model = [np.mean(np.abs(y - output[:, 0])[codes == code]) for code in found]
    naive = [np.mean(np.abs(y - output[:, 6])[codes == code]) for code in found]
    drawn, ax = figure(6.0, 3.5)
    positions = np.arange(len(found))
    ax.bar(positions - 0.2, model, width=0.4, color=CHALLENGER, label="model")
    ax.bar(positions + 0.2, naive, width=0.4, color=BAD, alpha=0.6, label="seasonal naive")
    ax.set_xticks(positions, [f"{int(code) + 1}" for code in found])
    ax.set_xlabel("series x origin")
    ax.set_ylabel("mean absolute error")
    ax.set_title("Backtest error per window")
    ax.legend()
    return png(drawn)
