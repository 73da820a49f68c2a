"""Calendar periods ('1mo', '2w', '30d', '12h'): windows of a temporal split and backfill steps.

A month is a calendar month (2013-01-31 + 1mo = 2013-02-28), not 30 days, so monthly windows line up
with the months a report is read by.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PERIOD = re.compile(r"^\s*(\d+)\s*(mo|y|w|d|h|m|s)\s*$")


@dataclass(frozen=True)
class Period:
    months: int = 0
    delta: timedelta = timedelta()

    def after(self, moment: datetime, times: int = 1) -> datetime:
        return _add_months(moment, self.months * times) + self.delta * times

    def before(self, moment: datetime, times: int = 1) -> datetime:
        return _add_months(moment, -self.months * times) - self.delta * times


def parse_period(text: str) -> Period:
    """'1mo' -> one calendar month, '1y' -> twelve, '2w', '30d', '12h', '90m', '30s'."""
    match = _PERIOD.match(str(text))
    if not match:
        raise ValueError(f"not a period: {text!r} (use e.g. 1mo, 2w, 30d, 12h)")
    count, unit = int(match.group(1)), match.group(2)
    if count <= 0:
        raise ValueError(f"a period must be positive, got {text!r}")
    if unit in ("mo", "y"):
        return Period(months=count * (12 if unit == "y" else 1))
    seconds = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}[unit]
    return Period(delta=timedelta(seconds=count * seconds))


def _add_months(moment: datetime, months: int) -> datetime:
    if not months:
        return moment
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)
