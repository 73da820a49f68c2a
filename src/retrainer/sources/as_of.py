"""Rows after the run's `as_of`: the one rule every kind of source applies, whole or chunk by chunk.

A replayed run (`--as-of 2026-11-01`) must not learn from rows it could not have seen then. A query
should filter them itself with `:as_of`; a file cannot, and a query that forgets to is caught here.
Times with a time zone are compared in UTC (a naive `as_of` is read as UTC); naive times as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def after(times: pd.Series, as_of: datetime, *, untimed_after: bool) -> pd.Series:
    """Which `times` are after `as_of`; a missing time counts as after when `untimed_after`.

    >>> import pandas as pd
    >>> after(pd.Series(pd.to_datetime(["2026-01-01", "2026-03-01", None])), datetime(2026, 2, 1), untimed_after=True)
    0    False
    1     True
    2     True
    dtype: bool
    """
    import pandas as pd

    times = pd.to_datetime(times)
    moment = pd.Timestamp(as_of)
    if times.dt.tz is not None:
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    else:
        moment = moment.tz_localize(None)
    later = times > moment
    return later | times.isna() if untimed_after else later


def drop_after(
    frame: pd.DataFrame, column: str | None, as_of: datetime | None, *, untimed_after: bool
) -> tuple[pd.DataFrame, int]:
    """The frame without its rows after `as_of` (by `column`, when the frame has it), and how many went."""
    if as_of is None or not column or column not in frame.columns or frame.empty:
        return frame, 0
    later = after(frame[column], as_of, untimed_after=untimed_after)
    if not later.any():
        return frame, 0
    return frame.loc[~later].reset_index(drop=True), int(later.sum())


def batch_filter(
    column: str | None, as_of: datetime | None, *, untimed_after: bool, dropped: list[int]
) -> Callable[[pa.RecordBatch], pa.RecordBatch] | None:
    """`drop_after` for one Arrow record batch at a time (appending each count to `dropped`); None
    when nothing is filtered (no `as_of` or no time column)."""
    if as_of is None or not column:
        return None

    def keep(batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow as pa

        index = batch.schema.get_field_index(column)
        if index < 0 or batch.num_rows == 0:
            return batch
        later = after(batch.column(index).to_pandas(), as_of, untimed_after=untimed_after)
        dropped.append(int(later.sum()))
        return batch.filter(pa.array(~later.to_numpy(dtype=bool))) if dropped[-1] else batch

    return keep
