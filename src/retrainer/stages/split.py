"""Split: train / test (stratified), or train / test / out-of-time ordered by `time_column`.

A temporal split with `test_window` cuts by time relative to the run's `as_of` (without one, the
latest time in the data): out-of-time is [as_of - oot_window, as_of), test the `test_window` before
it, train everything earlier (or only `train_window` of it). Replaying runs month by month (backfill)
then tests each month's models on that month's rows.

The run's task is resolved here (`retrainer.tasks.resolve`: the spec's `task` or the one the target
implies) and the target encoded by it, once (0/1, class codes, or numbers), so every later stage and
the champion see the same labels; `target_info` writes the task down for the stages after.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.target import shown_labels
from retrainer.tasks import Task, resolve, task_class

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec


def split_frame(frame: pd.DataFrame, spec: Spec, as_of: datetime | None = None) -> dict[str, pd.DataFrame]:
    """Return {'train', 'test', 'oot'} frames with the target encoded (oot may be empty)."""
    return split_with_task(frame, spec, as_of)[0]


def split_with_task(
    frame: pd.DataFrame, spec: Spec, as_of: datetime | None = None
) -> tuple[dict[str, pd.DataFrame], Task]:
    """`split_frame`, and the task the target was encoded by."""
    import pandas as pd

    target = spec.target.column
    frame = task_class(spec).with_target(frame, spec)  # an anomaly spec without target: every row "unknown"
    has_label = frame[target].notna()
    # a shallow copy when every row is labelled: copy-on-write keeps the caller's frame as it was, and
    # the table is not held twice while the parts are cut from it
    labelled = frame.copy(deep=False) if has_label.all() else frame.loc[has_label].copy()
    task = resolve(spec, labelled[target])
    labelled[target] = task.encode(labelled[target])
    rules = spec.split
    own = task.split(labelled, spec, as_of)
    if own is not None:  # a forecast: the history before the backtest windows, and the whole history
        parts = own
    elif rules.method == "stratified":
        strata = task.strata(labelled[target].to_numpy())
        if strata is not None and pd.Series(strata).value_counts().min() < 2:
            raise DataValidationError(
                "too few rows of the rarer class to split", failures=["split: rarer class has < 2 rows"]
            )
        kept, held = task.holdout(labelled[target].to_numpy(), rules.test_size, spec.seed)
        # a copy: an empty slice is still a view that would keep the whole table in memory
        parts = {"train": labelled.iloc[kept], "test": labelled.iloc[held], "oot": labelled.iloc[0:0].copy()}
    elif rules.test_window:
        parts = _window_split(labelled, spec, as_of)
    else:
        assert spec.time_column is not None
        ordered = (
            labelled.assign(_t=pd.to_datetime(labelled[spec.time_column]))
            .sort_values("_t", kind="stable")
            .drop(columns="_t")
        )
        n = len(ordered)
        n_oot = round(n * rules.oot_size)
        n_test = round(n * rules.test_size)
        parts = {
            "train": ordered.iloc[: n - n_oot - n_test],
            "test": ordered.iloc[n - n_oot - n_test : n - n_oot],
            "oot": ordered.iloc[n - n_oot :],
        }
    task.check_split({name: part[target].to_numpy() for name, part in parts.items()})
    return {name: part.reset_index(drop=True) for name, part in parts.items()}, task


def _window_split(labelled: pd.DataFrame, spec: Spec, as_of: datetime | None) -> dict[str, pd.DataFrame]:
    """Train / test / out-of-time by time windows ending at `as_of` (see the module docstring)."""
    import pandas as pd

    from retrainer.periods import parse_period

    assert spec.time_column is not None and spec.split.test_window is not None
    times = pd.to_datetime(labelled[spec.time_column])
    if times.dt.tz is not None:  # compare in UTC, naive, like the :as_of bind parameter
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)
    if as_of is not None and as_of.tzinfo is not None:
        from datetime import UTC

        as_of = as_of.astimezone(UTC)
    end = as_of.replace(tzinfo=None) if as_of is not None else times.max().to_pydatetime() + pd.Timedelta("1us")
    rules = spec.split
    test_end = parse_period(rules.oot_window).before(end) if rules.oot_window else end
    assert rules.test_window is not None  # windowed splits are only taken when test_window is set
    test_start = parse_period(rules.test_window).before(test_end)
    train_start = parse_period(rules.train_window).before(test_start) if rules.train_window else None
    in_train = times < test_start
    if train_start is not None:
        in_train &= times >= train_start
    masks = {
        "train": in_train,
        "test": (times >= test_start) & (times < test_end),
        "oot": (times >= test_end) & (times < end),
    }
    order = times.sort_values(kind="stable").index
    return {name: labelled.loc[order[mask.loc[order].to_numpy()]] for name, mask in masks.items()}


def split(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    parts, task = split_with_task(inputs["data"], spec, ctx.as_of)
    target = spec.target.column
    info: dict[str, Any] = {
        "method": spec.split.method,
        "as_of": ctx.as_of.isoformat() if ctx.as_of else None,
        "task": task.name,
    }
    for name, part in parts.items():
        info[name] = {"rows": len(part), **task.describe(part[target].to_numpy())}
        if spec.time_column and len(part):
            info[name]["from"] = str(part[spec.time_column].min())
            info[name]["to"] = str(part[spec.time_column].max())
    sizes = ", ".join(f"{name} {len(part):,}" for name, part in parts.items() if len(part))
    notes = [] if spec.task else ["inferred"]
    if spec.target.positive is None and task.info().get("positive") is not None:  # which label a threshold flags
        notes.append(f"positive {shown_labels([task.info()['positive']])}")
    inferred = f" ({', '.join(notes)})" if notes else ""
    ctx.logger.info("task %s%s", task.name, inferred)
    return StageOutput(
        artifacts={**parts, "split_info": info, "target_info": task.info()},
        summary=f"{task.name}{inferred}: {sizes}",
    )


def _window_anchor(ctx: RunContext) -> str:
    """Windows end at as_of: two dates that extract the same rows still split them differently."""
    return ctx.as_of.isoformat() if ctx.as_of is not None and ctx.spec.split.test_window else ""


STAGE = Stage(
    name="split",
    func=split,
    needs=("data",),
    makes=("train", "test", "oot", "split_info", "target_info"),
    spec_sections=("split", "target", "task", "time_column", "seed", "forecast"),
    fingerprint=_window_anchor,
    code=("retrainer.target", "retrainer.tasks", "retrainer.forecasting"),
)
