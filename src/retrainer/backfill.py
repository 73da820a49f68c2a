"""Backfill: replay retraining at past dates against one store and registry, and keep the timeline.

Each step is an ordinary `retrainer.run(spec, as_of=date)`: the extract sees only rows known at that
date, the temporal split tests on the window just before it, and the challenger meets the champion
that the previous steps left in the registry, on that step's test rows. The timeline (who was
champion, both scores, the decision) shows when the data drifted enough for a new model to win.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from retrainer.errors import RetrainerError, SpecError
from retrainer.executor import RunResult, parse_as_of, run
from retrainer.periods import parse_period
from retrainer.pipeline import Reporter
from retrainer.spec import Spec
from retrainer.store import RunStore


@dataclass
class Step:
    """One replayed retraining: what it decided at `as_of`, and on what evidence."""

    as_of: str
    outcome: str  # promoted | kept_champion | unchanged | rejected | failed
    reason: str
    champion_before: int | None = None
    challenger_version: int | None = None
    champion_after: int | None = None
    metric: str = ""
    challenger_score: float | None = None
    champion_score: float | None = None
    train_rows: int | None = None
    test_rows: int | None = None
    run_id: str = ""
    seconds: float = 0.0


@dataclass
class Timeline:
    pipeline: str
    every: str
    steps: list[Step] = field(default_factory=list)
    plot: str | None = None
    report: str | None = None

    @property
    def ok(self) -> bool:
        return all(step.outcome != "failed" for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def as_of_dates(start: str | datetime, end: str | datetime, every: str) -> list[datetime]:
    """start, start + every, ... up to and including end."""
    first, last = parse_as_of(start), parse_as_of(end)
    assert first is not None and last is not None
    try:
        period = parse_period(every)
    except ValueError as error:
        raise SpecError(f"--every {every!r}: {error}", hint="use e.g. 1mo, 2w, 7d") from None
    if last < first:
        raise SpecError(f"--end {last.date()} is before --start {first.date()}", hint="swap them")
    dates, n = [], 0
    while (moment := period.after(first, n)) <= last:
        dates.append(moment)
        n += 1
    return dates


def backfill(
    spec: Spec,
    start: str | datetime,
    end: str | datetime,
    every: str = "1mo",
    *,
    reporter: Reporter | None = None,
    on_step: Callable[[Step], None] | None = None,
    plot: bool = True,
) -> Timeline:
    """Run the pipeline once per date from `start` to `end`; return the timeline (also saved in the store)."""
    timeline = Timeline(pipeline=spec.name, every=every)
    store = RunStore(spec.store)
    for moment in as_of_dates(start, end, every):
        step = _replay(spec, store, moment, reporter)
        timeline.steps.append(step)
        if on_step is not None:
            on_step(step)
    label = f"{timeline.steps[0].as_of[:10]}_{timeline.steps[-1].as_of[:10]}" if timeline.steps else "empty"
    directory = posixpath.join(store.path("backfill"), f"{spec.name}-{label}")
    timeline.report = posixpath.join(directory, "timeline.json")
    if plot and timeline.steps:
        timeline.plot = posixpath.join(directory, "timeline.png")
        store.write_bytes(timeline.plot, plot_png(timeline))
    store.write_bytes(timeline.report, json.dumps(timeline.to_dict(), indent=2, default=str).encode())
    return timeline


def _replay(spec: Spec, store: RunStore, moment: datetime, reporter: Reporter | None) -> Step:
    champion_before = _champion_version(spec, store)
    try:
        result = run(spec, as_of=moment, reporter=reporter)
    except RetrainerError as error:
        return Step(moment.isoformat(), "failed", error.message, champion_before, champion_after=champion_before)
    step = Step(
        as_of=moment.isoformat(),
        outcome=result.outcome,
        reason=result.reason,
        champion_before=champion_before,
        challenger_version=result.model_version if result.outcome != "unchanged" else None,
        run_id=result.run_id,
        seconds=result.seconds,
    )
    step.champion_after = result.model_version if result.outcome == "promoted" else champion_before
    decision = _artifact(store, result, "compare", "decision")
    if decision:
        step.metric = decision.get("metric") or ""
        step.challenger_score = decision.get("challenger_score")
        step.champion_score = decision.get("champion_score")
    split_info = _artifact(store, result, "split", "split_info")
    if split_info:
        step.train_rows = split_info.get("train", {}).get("rows")
        step.test_rows = split_info.get("test", {}).get("rows")
    return step


def _champion_version(spec: Spec, store: RunStore) -> int | None:
    from retrainer.integrations.mlflow_registry import Registry

    champion = Registry.for_spec(spec, store).by_alias(spec.registry_name, "champion")
    return champion.version if champion is not None else None


def _artifact(store: RunStore, result: RunResult, stage: str, name: str) -> Any:
    """A JSON artifact a stage of this run made (or found in the cache), or None."""
    record = next((s for s in result.stages if s.name == stage and s.status in ("ran", "cached")), None)
    if record is None:
        return None
    manifest = store.read_manifest(stage, record.key)
    if manifest is None:  # not cacheable: kept with the run
        try:
            manifest = store.read_json(posixpath.join(store.run_dir(result.run_id), stage, "manifest.json"))
        except FileNotFoundError:
            return None
    ref = manifest.get("artifacts", {}).get(name)
    return json.loads(store.read_bytes(ref["path"])) if ref else None


def plot_png(timeline: Timeline) -> bytes:
    """Challenger and champion scores per step, each step marked by its decision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = timeline.steps
    dates = [datetime.fromisoformat(step.as_of) for step in steps]
    figure, axes = plt.subplots(figsize=(9, 4.5), layout="constrained")
    challenger = [step.challenger_score for step in steps]
    champion = [step.champion_score for step in steps]
    axes.plot(dates, [float("nan") if v is None else v for v in challenger], "o-", label="challenger", color="C0")  # type: ignore[arg-type]
    axes.plot(dates, [float("nan") if v is None else v for v in champion], "s--", label="champion", color="C1")  # type: ignore[arg-type]
    colours = {"promoted": "green", "kept_champion": "grey", "rejected": "red", "failed": "red"}
    for date, step in zip(dates, steps, strict=True):
        score = step.challenger_score if step.challenger_score is not None else step.champion_score
        label = step.outcome.replace("_", " ") + (f" v{step.champion_after}" if step.outcome == "promoted" else "")
        where = {"xy": (date, score), "xytext": (0, 10)} if score is not None else {"xy": (date, 0.04)}
        axes.annotate(
            label,
            textcoords="offset points" if score is not None else None,
            xycoords="data" if score is not None else ("data", "axes fraction"),
            ha="center",
            fontsize=8,
            color=colours.get(step.outcome, "black"),
            **where,
        )
    metric = next((step.metric for step in steps if step.metric), "score")
    axes.set_ylabel(f"{metric} on the step's test window")
    axes.set_title(f"{timeline.pipeline}: backfill every {timeline.every}")
    axes.legend(loc="best")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()
