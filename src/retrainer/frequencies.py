"""Series frequencies: the pandas aliases a forecast may use, the season each implies, and inference.

A leaf (it imports nothing of retrainer): the spec reads the season lengths when it loads, the
forecaster and the series checks infer a frequency from timestamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# the aliases `forecast.frequency` may name, and the season length each implies (a year, a week, a day)
SEASON_LENGTHS: dict[str, int] = {
    "YS": 1,
    "YE": 1,
    "QS": 4,
    "QE": 4,
    "MS": 12,
    "ME": 12,
    "W": 52,
    "D": 7,
    "B": 5,
    "h": 24,
}


def season_length(frequency: str) -> int:
    """Periods in a season at `frequency` (1: no season, e.g. yearly data)."""
    return SEASON_LENGTHS.get(normalise(frequency), 1)


def normalise(alias: str) -> str:
    """An alias as `forecast.frequency` names it: QS-OCT is QS, W-SUN is W, A/Y are YE."""
    base = alias.split("-")[0]
    return {"A": "YE", "AS": "YS", "Y": "YE", "M": "ME", "Q": "QE", "H": "h"}.get(base, base)


def infer_frequency(long: pd.DataFrame) -> str | None:
    """The alias every series (`unique_id`, `ds`) follows (MS, QS, W, D...), None when irregular."""
    import pandas as pd

    found: set[str] = set()
    for _, times in long.groupby("unique_id", sort=False)["ds"]:
        if len(times) < 3:
            continue
        with pd.option_context("future.infer_freq_returns_offset", True):  # pandas 4's answer: an offset
            offset = pd.infer_freq(pd.DatetimeIndex(times))
        if offset is None:
            return None
        found.add(str(getattr(offset, "freqstr", offset)))
    if len(found) != 1:
        return None
    return normalise(found.pop())
