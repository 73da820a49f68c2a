"""Data over time on the real NYC flights: as_of end to end, windowed temporal splits, backfill."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.backfill import as_of_dates, backfill
from retrainer.errors import SpecError
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.periods import parse_period
from retrainer.spec import spec_from_dict
from retrainer.stages.split import split_frame
from retrainer.store import ArtifactRef, RunStore


def flights_spec(tmp_path: Path, pg_url: str, tables: dict[str, str], **sections: Any) -> retrainer.Spec:
    """The example's pipeline on the test's tables: EWR flights only, a third of them, one quick model."""
    example = yaml.safe_load((Path(__file__).parents[1] / "examples" / "flights" / "pipeline.yaml").read_text())
    query = example["source"]["query"]
    for name, table in tables.items():
        query = query.replace(f"FROM {name} ", f"FROM {table} ").replace(f"JOIN {name} ", f"JOIN {table} ")
    query = query.replace("WHERE ", "WHERE f.origin = 'EWR' AND f.flight_id % 3 = 0 AND ")
    features = dict(example.get("features", {}))
    features["drop"] = [*features.get("drop", []), "origin"]  # one airport here: a constant column
    example.update(
        source={"url": pg_url, "query": query},
        features=features,
        store=str(tmp_path / "store"),
        models={"candidates": ["lightgbm"], "n_trials": 1, "cv_folds": 2, "params": {"lightgbm": {"n_estimators": 40}}},
        **sections,
    )
    example.pop("schedule", None)
    return spec_from_dict(example)


def month_counts(times: pd.Series) -> dict[int, int]:
    return {int(k): int(v) for k, v in pd.to_datetime(times).dt.month.value_counts().sort_index().items()}


def test_as_of_extracts_only_rows_known_then_counted_per_month(
    tmp_path: Path, pg_url: str, flights_pg: dict[str, str], flights_frames: dict[str, pd.DataFrame]
) -> None:
    spec = flights_spec(tmp_path, pg_url, flights_pg)
    flights = flights_frames["flights"]
    sampled = flights.loc[(flights["origin"] == "EWR") & (flights["flight_id"] % 3 == 0) & flights["arr_delay"].notna()]
    store = RunStore(spec.store)

    for as_of in ("2013-03-01", "2013-05-15"):
        result = retrainer.run(spec, as_of=as_of, until="extract")
        manifest = store.read_manifest("extract", result.stages[0].key)
        assert manifest is not None
        data = store.load_artifact(ArtifactRef(**manifest["artifacts"]["data"]))
        info = store.load_artifact(ArtifactRef(**manifest["artifacts"]["source_info"]))

        known = sampled.loc[sampled["time_hour"] < pd.Timestamp(as_of)]
        assert month_counts(data["time_hour"]) == month_counts(known["time_hour"])
        assert pd.to_datetime(data["time_hour"]).max() < pd.Timestamp(as_of)
        assert info["as_of"] == datetime.fromisoformat(as_of).isoformat()
    assert max(month_counts(data["time_hour"])) == 5  # the later date sees half of May, and nothing after


def test_window_split_is_relative_to_as_of_with_train_test_and_out_of_time() -> None:
    times = pd.date_range("2013-01-01", "2013-06-30 23:00", freq="6h", tz="UTC")
    frame = pd.DataFrame({"t": times, "x": range(len(times)), "y": [i % 2 for i in range(len(times))]})
    spec = spec_from_dict(
        {
            "name": "w",
            "source": {"path": "data.csv"},
            "target": {"column": "y", "positive": 1},
            "time_column": "t",
            "split": {"method": "temporal", "test_window": "1mo", "oot_window": "2w", "train_window": "2mo"},
        }
    )

    parts = split_frame(frame, spec, datetime(2013, 5, 1))

    def span(name: str) -> tuple[str, str]:
        column = parts[name]["t"].dt.tz_localize(None)
        return str(column.min()), str(column.max())

    assert span("oot") == ("2013-04-17 00:00:00", "2013-04-30 18:00:00")
    assert span("test") == ("2013-03-17 00:00:00", "2013-04-16 18:00:00")
    assert span("train") == ("2013-01-17 00:00:00", "2013-03-16 18:00:00")
    assert parts["train"]["t"].is_monotonic_increasing
    # without as_of the windows end at the latest row
    assert str(split_frame(frame, spec)["oot"]["t"].max().tz_localize(None)) == "2013-06-30 18:00:00"


def test_periods_are_calendar_months_and_bad_windows_are_spec_errors() -> None:
    assert parse_period("1mo").after(datetime(2013, 1, 31)) == datetime(2013, 2, 28)
    assert parse_period("2w").before(datetime(2013, 3, 1)) == datetime(2013, 2, 15)
    assert as_of_dates("2013-02-01", "2013-05-01", "1mo")[-1] == datetime(2013, 5, 1)
    base = {"name": "w", "source": {"path": "d.csv"}, "target": "y", "time_column": "t"}
    with pytest.raises(SpecError, match=r"split\.test_window: not a period"):
        spec_from_dict({**base, "split": {"method": "temporal", "test_window": "a month"}})
    with pytest.raises(SpecError, match="test_window needs method: temporal"):
        spec_from_dict({**base, "split": {"test_window": "1mo"}})


@pytest.mark.slow
def test_backfill_over_four_months_decides_every_month_against_one_registry(
    tmp_path: Path, pg_url: str, flights_pg: dict[str, str]
) -> None:
    # four months of decisions, not four readiness checks (tests/test_readiness.py has those): off here
    spec = flights_spec(tmp_path, pg_url, flights_pg, readiness={"enabled": False})

    timeline = backfill(spec, "2013-02-01", "2013-05-01", "1mo")

    steps = timeline.steps
    assert [s.as_of[:10] for s in steps] == ["2013-02-01", "2013-03-01", "2013-04-01", "2013-05-01"]
    assert all(s.outcome in ("promoted", "kept_champion") for s in steps), [s.reason for s in steps]
    assert steps[0].outcome == "promoted" and steps[0].champion_before is None
    for before, after in itertools.pairwise(steps):
        assert after.champion_before == before.champion_after  # one registry carried month to month
        assert after.champion_score is not None and after.challenger_score is not None
        assert after.test_rows and after.train_rows
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    for step in steps:  # every registered challenger carries the as_of it was trained at
        assert registry.version(spec.registry_name, step.challenger_version).tags["retrainer.as_of"] == step.as_of
    store = RunStore(spec.store)
    assert store.read_bytes(timeline.plot).startswith(b"\x89PNG")
    assert len(json.loads(store.read_bytes(timeline.report))["steps"]) == 4
    readiness = [stage for stage in store.read_run(steps[0].run_id)["stages"] if stage["name"] == "readiness"]
    assert [stage["summary"] for stage in readiness] == ["off (readiness.enabled: false)"]


def test_backfill_cli_rejects_bad_dates_and_steps_before_running_anything(write_spec: Any) -> None:
    from typer.testing import CliRunner

    from retrainer.cli import app

    spec = str(write_spec())
    runner = CliRunner()
    backwards = runner.invoke(app, ["backfill", spec, "--start", "2013-03-01", "--end", "2013-01-01"])
    bad_step = runner.invoke(app, ["backfill", spec, "--start", "2013-01-01", "--end", "2013-03-01", "--every", "1q"])

    assert backwards.exit_code == 3 and "--end 2013-01-01 is before --start 2013-03-01" in backwards.output
    assert bad_step.exit_code == 3 and "--every '1q'" in bad_step.output


def test_a_stratified_split_keeps_no_reference_to_the_whole_table() -> None:
    """Its empty out-of-time part once was a slice of the table: a view that held all of it in memory."""
    import gc
    import tracemalloc

    import numpy as np

    spec = spec_from_dict({"name": "split-memory", "source": {"path": "unused.parquet"}, "target": "late"})
    rows = 1_000_000
    split_frame(pd.DataFrame({"x": [0.0, 1.0] * 5, "late": [0, 1] * 5}), spec)  # imports outside the trace
    tracemalloc.start()
    try:
        frame = pd.DataFrame({"x": np.arange(rows, dtype=np.float64), "late": np.arange(rows) % 2})
        table = tracemalloc.get_traced_memory()[0]
        parts = split_frame(frame, spec)
        del frame
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert len(parts["oot"]) == 0 and len(parts["train"]) + len(parts["test"]) == rows
    assert held < 1.3 * table  # the parts (one table's worth), not the parts and the table
