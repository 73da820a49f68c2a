"""Past runs: `runs`, `report` (a run's HTML report) and `backfill` (replayed retraining over dates)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from retrainer.cli.shared import (
    EnvOpt,
    JsonOpt,
    SpecArg,
    StoreOpt,
    console,
    guarded,
    state,
)


@guarded
def runs(
    store: StoreOpt = ".retrainer",
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs to show.")] = 20,
    as_json: JsonOpt = False,
) -> int:
    """Past runs, newest first: id, pipeline, status, duration, outcome."""
    from retrainer.store import RunStore

    records = [r for _, r in zip(range(limit), RunStore(store).iter_runs(), strict=False)]
    if as_json:
        console.print_json(json.dumps(records, default=str))
        return 0
    from rich.table import Table

    table = Table(title=f"runs in {store}")
    table.add_column("run", no_wrap=True)  # whole: `report` takes it (or its first characters)
    for column in ("pipeline", "status", "seconds", "version"):
        table.add_column(column)
    table.add_column("reason", overflow="fold")  # the whole reason, wrapped: it says why
    for record in records:
        seconds = record.get("seconds")
        table.add_row(
            record["run_id"],
            record.get("pipeline", ""),
            record.get("status", ""),
            f"{seconds:.1f}" if isinstance(seconds, int | float) else "",
            str(record.get("model_version") or ""),
            escape(record.get("reason") or ""),
        )
    console.print(table)
    return 0


@guarded
def report(
    run_id: Annotated[
        str, typer.Argument(help="Run id, or its first characters (see `retrainer runs`).", show_default=False)
    ],
    store: StoreOpt = ".retrainer",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of runs/<id>/report.html.")] = None,
) -> int:
    """Write a run's HTML report: decision and reason first, then data, drift, tuning, metrics, fairness."""
    from retrainer.report import write_report
    from retrainer.store import RunStore

    run_store = RunStore(store)
    written = write_report(run_store, run_store.resolve_run_id(run_id), out=str(out) if out else None)
    console.print(f"wrote {written}")
    return 0


@guarded
def backfill(
    spec_path: SpecArg,
    start: Annotated[str, typer.Option("--start", help="First as_of date (ISO).", show_default=False)],
    end: Annotated[str, typer.Option("--end", help="Last as_of date (ISO), included.", show_default=False)],
    every: Annotated[str, typer.Option("--every", help="Step between dates: 1mo, 2w, 7d...")] = "1mo",
    env: EnvOpt = None,
    no_plot: Annotated[bool, typer.Option("--no-plot", help="Do not draw the timeline PNG.")] = False,
    as_json: JsonOpt = False,
) -> int:
    """Replay retraining at each date from --start to --end against one registry; print the timeline."""
    from retrainer.backfill import Step, backfill
    from retrainer.spec import load_spec

    spec = load_spec(spec_path, env=env)
    show = not (as_json or state["quiet"])

    def progress(step: Step) -> None:
        if show:
            console.print(f"[bold]{step.as_of[:10]}[/] {_decision_text(step)}: [dim]{step.reason}[/]")

    timeline = backfill(spec, start, end, every, on_step=progress, plot=not no_plot)
    if as_json:
        console.print_json(json.dumps(timeline.to_dict(), default=str))
    else:
        _print_timeline(timeline)
    return 0 if timeline.ok else 1


def _decision_text(step: Any) -> str:
    colour = {"promoted": "green", "kept_champion": "cyan", "unchanged": "cyan", "rejected": "yellow"}
    return f"[{colour.get(step.outcome, 'red')}]{step.outcome.replace('_', ' ')}[/]"


def _print_timeline(timeline: Any) -> None:
    from rich.table import Table

    def score(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    def version(value: int | None) -> str:
        return "-" if value is None else f"v{value}"

    metric = next((step.metric for step in timeline.steps if step.metric), "score")
    table = Table(title=f"{timeline.pipeline}: backfill every {timeline.every}")
    for column in ("as_of", "champion", f"challenger {metric}", f"champion {metric}", "decision", "now serving"):
        table.add_column(column)
    table.add_column("test rows", justify="right")
    for step in timeline.steps:
        table.add_row(
            step.as_of[:10],
            version(step.champion_before),
            score(step.challenger_score),
            score(step.champion_score),
            _decision_text(step) + (f" {version(step.challenger_version)}" if step.outcome == "promoted" else ""),
            version(step.champion_after),
            "-" if step.test_rows is None else f"{step.test_rows:,}",
        )
    console.print(table)
    if timeline.plot:
        console.print(f"[dim]timeline plot: {timeline.plot}[/]")
    console.print(f"[dim]timeline data: {timeline.report}[/]")
