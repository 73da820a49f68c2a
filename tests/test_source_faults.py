"""PostgreSQL drops the connection mid-extract: the read is retried per spec, or the run fails cleanly.

The server really terminates the backend (`pg_terminate_backend`) while it streams the extract, as
a restart or a failover would. With `source.retries` the next attempt reads the table; without, the
run fails with one clear SourceError and nothing reaches the registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import retrainer
from retrainer.errors import SourceError
from retrainer.spec import load_spec

pytestmark = pytest.mark.postgres


class Terminator:
    """Kills, once, the first backend found streaming the marked extract query."""

    def __init__(self, engine: Any, marker: str) -> None:
        self.engine, self.marker, self.killed = engine, marker, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        from sqlalchemy import text

        deadline = time.monotonic() + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self.engine.connect() as connection:
                pids = connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE query LIKE 'COPY (%' AND query LIKE :marker "
                        "AND pid <> pg_backend_pid()"
                    ),
                    {"marker": f"%{self.marker}%"},
                ).scalars()
                for pid in pids:
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    self.killed += 1
                    return
            time.sleep(0.05)

    def __enter__(self) -> Terminator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def slow_source(
    telco: pd.DataFrame, pg_table: Callable[[pd.DataFrame], str], write_spec: Callable[..., Path]
) -> Iterator[Callable[[int], Path]]:
    """A spec whose extract takes a second on the server (a pause in a CTE), so it can be cut mid-stream."""
    table = pg_table(telco)

    def spec(retries: int) -> Path:
        query = f"WITH pause AS (SELECT pg_sleep(1) AS slept) SELECT t.* FROM {table} t, pause /* cut-me */"
        source = {"url": "postgresql+psycopg://postgres@127.0.0.1:5432/test", "query": query}
        return write_spec(source={**source, "retries": retries, "retry_delay": 0.2})

    yield spec


def test_a_connection_lost_mid_extract_is_retried_per_spec(
    slow_source: Callable[[int], Path], postgres_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spec = load_spec(slow_source(1))
    with Terminator(postgres_engine, "cut-me") as terminator:
        result = retrainer.run(spec, until="extract")
    assert terminator.killed == 1
    assert result.outcome == "partial" and result.metrics["rows"] == 7043
    assert "terminating connection due to administrator command" in caplog.text
    assert "retrying in 0.2s (1 of 1)" in caplog.text


def test_without_retries_a_lost_connection_fails_the_run_and_registers_nothing(
    slow_source: Callable[[int], Path], postgres_engine: Any, tmp_path: Path
) -> None:
    spec = load_spec(slow_source(0))
    with Terminator(postgres_engine, "cut-me") as terminator, pytest.raises(SourceError) as raised:
        retrainer.run(spec)
    assert terminator.killed == 1
    assert "cannot read from postgresql+psycopg://postgres@127.0.0.1:5432/test" in raised.value.message
    assert "administrator command" in raised.value.message
    record = next((tmp_path / "store" / "runs").glob("*/run.json")).read_text()
    assert '"status": "failed"' in record
    assert not (tmp_path / "store" / "mlflow.db").exists()  # nothing got as far as the registry


def test_a_query_that_fails_mid_stream_is_a_query_error_and_not_retried(
    write_spec: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Rows already flowed when the server hits the bad one: the error is the query's, not the connection's."""
    query = "SELECT g AS customer_id, 1 / (g - 150000) AS churn FROM generate_series(1, 200000) AS g"
    source = {"url": "postgresql+psycopg://postgres@127.0.0.1:5432/test", "query": query, "retries": 2}
    spec = load_spec(write_spec(source={**source, "retry_delay": 0.2, "chunk_rows": 10_000}))

    with pytest.raises(SourceError) as raised:
        retrainer.run(spec, until="extract")

    assert raised.value.message.startswith("query failed on postgresql+psycopg://postgres@127.0.0.1:5432/test")
    assert "division by zero" in raised.value.message
    assert "retrying" not in caplog.text
