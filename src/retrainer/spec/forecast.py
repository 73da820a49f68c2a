"""The `forecast:` section: what `task: forecast` needs that a table does not (horizon, series, backtest)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from retrainer.frequencies import SEASON_LENGTHS
from retrainer.spec.common import _Section


class BacktestSpec(_Section):
    """Rolling-origin backtest: the last `windows` origins, `step` periods apart, each refitted."""

    windows: int = Field(4, ge=1, le=52, description="How many forecast origins the backtest scores.")
    step: int | None = Field(
        None,
        ge=1,
        description="Periods between two origins; default the horizon. Below the horizon the windows overlap: a "
        "period is forecast from several origins, each forecast scored.",
    )


class ForecastSpec(_Section):
    """`task: forecast`: one or many series in one table, forecast `horizon` periods ahead."""

    horizon: int = Field(..., ge=1, description="Periods ahead to forecast (at the series' frequency).")
    series_id: str | None = Field(None, description="Column naming each series (many series in one table).")
    frequency: Literal["YS", "YE", "QS", "QE", "MS", "ME", "W", "D", "B", "h"] | None = Field(
        None, description="pandas frequency of the time column; inferred when omitted (irregular: an error)."
    )
    season_length: int | None = Field(
        None, ge=1, description="Periods in a season; default from the frequency (12 for monthly, 4 quarterly)."
    )
    exogenous: list[str] = Field(
        default_factory=list, description="Columns known in advance (prices, holidays): serving must send them."
    )
    backtest: BacktestSpec = Field(default_factory=BacktestSpec)
    levels: list[int] = Field([80, 95], description="Prediction interval levels (percent) scored for coverage.")

    @model_validator(mode="after")
    def _steps(self) -> ForecastSpec:
        if any(not 0 < level < 100 for level in self.levels):
            raise ValueError("levels are percentages between 0 and 100, e.g. [80, 95]")
        return self

    @property
    def step(self) -> int:
        """Periods between two backtest origins (the horizon unless the spec says)."""
        return self.backtest.step or self.horizon

    def season(self, frequency: str) -> int:
        """The season length: the spec's, else the one the frequency implies."""
        return self.season_length or SEASON_LENGTHS.get(frequency, 1)

    def min_length(self, season: int) -> int:
        """Fewest periods a series needs: the backtest's span, then two seasons (at least 8 periods) to learn from
        before the first origin (AutoETS and a seasonal naive need a full season and a bit)."""
        return self.horizon + self.step * (self.backtest.windows - 1) + max(2 * season, 8)
