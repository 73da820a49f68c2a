"""Extract throughput on the full flights join: the COPY→Arrow fast path against `pandas.read_sql`.

    .venv/bin/python benchmarks/extract.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--repeat 3]

Loads the NYC flights of 2013 (examples/flights/setup_data.py) into PostgreSQL under temporary table
names, then, in one run, reads the example pipeline's query (flights ⋈ weather ⋈ planes, as_of
2014-01-01: all 327,346 flights that arrived) through each path, alternating, `--repeat` times: the
fast path (binary COPY decoded to Arrow by the ADBC driver) on one connection, the same split into
`--partitions` ranges of `flight_id` read over as many connections at once (`source.partition_on`),
the CSV fallback (COPY CSV parsed by pyarrow, used when ADBC is not installed), `pandas.read_sql`.
The partitioned read is timed twice: with the split points known, as the extract stage has them (from
its fingerprint query, which runs anyway: its extra cost is timed too), and finding them with one
more `SELECT min, max` over the query, as `read_frame` alone does. Also times the CSV COPY alone
(server work and transfer, no parsing) and the chunked Parquet writer (the stage's path for
PostgreSQL without `partition_on`). Prints rows/s per path (median of the repeats), the ratios and
the machine's load; checks the frames are equal. Drops the tables at the end. Target (issue 8): the
path the example pipeline takes on PostgreSQL ≥ 3 x read_sql's rows/s.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _examples import example_setup  # noqa: E402

from retrainer.sources import pg_copy, postgres  # noqa: E402


def example_source() -> dict[str, Any]:
    """The flights example's source as `--env postgres` reads it: pipeline.postgres.yaml over the base."""
    folder = ROOT / "examples" / "flights"
    base = yaml.safe_load((folder / "pipeline.yaml").read_text())["source"]
    return {**base, **yaml.safe_load((folder / "pipeline.postgres.yaml").read_text())["source"]}


def example_query(tables: dict[str, str]) -> str:
    query = example_source()["query"]
    for name, table in tables.items():
        query = query.replace(f"FROM {name} ", f"FROM {table} ").replace(f"JOIN {name} ", f"JOIN {table} ")
    return str(query)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=example_source().get("partitions", 2))
    args = parser.parse_args()
    setup = example_setup("flights")
    tables = setup.load(args.url, setup.flights_frames(), prefix=f"bench{secrets.token_hex(3)}_")
    engine = create_engine(args.url)
    query, params = example_query(tables), {"as_of": datetime(2014, 1, 1)}

    def read_sql() -> pd.DataFrame:
        with engine.connect() as connection:
            return pd.read_sql_query(text(query), connection, params=params)

    def copy_only() -> int:
        with pg_copy.connect(args.url) as connection:
            sql = pg_copy.literal_sql(connection, query, params)
            size = 0
            with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT CSV)") as copy:  # type: ignore[arg-type]
                while data := copy.read():
                    size += len(data)
            return size

    def csv_fallback() -> pd.DataFrame | None:
        installed = pg_copy.adbc_installed
        pg_copy.adbc_installed = lambda: False  # type: ignore[assignment]  # as without the ADBC driver
        try:
            return postgres.read_frame(args.url, query, params)
        finally:
            pg_copy.adbc_installed = installed  # type: ignore[assignment]

    with pg_copy.connect(args.url) as psql:  # the split points the stage's fingerprint query finds
        sql = pg_copy.literal_sql(psql, query, params)
        bounds = psql.execute(f"SELECT min(flight_id), max(flight_id) FROM ({sql}) AS q").fetchone()
        assert bounds is not None

    def summary(more: str = "") -> Any:
        """The fingerprint query the extract stage runs before any read (with the bounds it adds)."""
        with engine.connect() as sql_connection:
            summary_sql = f"SELECT COUNT(*) AS n, MAX(time_hour) AS latest{more} FROM ({query}) AS source_rows"
            return sql_connection.execute(text(summary_sql), params).one()

    def partitioned(known: bool) -> pd.DataFrame | None:
        return postgres.read_frame(
            args.url,
            query,
            params,
            partition_on="flight_id",
            partitions=args.partitions,
            bounds=(bounds[0], bounds[1]) if known else None,
        )

    def chunked() -> int:
        with tempfile.TemporaryDirectory() as scratch:
            return pg_copy.copy_to_parquet(args.url, query, params, f"{scratch}/flights.parquet", chunk_rows=50_000)

    try:
        fast_name, csv_name = "fast, 1 connection (ADBC)", "CSV fallback (COPY CSV -> pyarrow)"
        parts_name = f"fast, {args.partitions} partitions on flight_id"
        parts_min_max = f"{parts_name} + min/max query"
        chunked_name = "chunked: ADBC -> Parquet, 50k-row groups"
        times: dict[str, list[float]] = {fast_name: [], parts_name: [], parts_min_max: [], csv_name: []}
        times.update({"pandas.read_sql": [], "COPY CSV alone (no parsing)": [], chunked_name: []})
        times.update({"fingerprint query": [], "fingerprint query + MIN/MAX": []})
        rows, load_before = 0, os.getloadavg()
        for _ in range(args.repeat):
            seconds, fast = timed(lambda: postgres.read_frame(args.url, query, params))
            times[fast_name].append(seconds)
            seconds, parts = timed(lambda: partitioned(known=True))
            times[parts_name].append(seconds)
            seconds, parts_found = timed(lambda: partitioned(known=False))
            times[parts_min_max].append(seconds)
            seconds, fallback = timed(csv_fallback)
            times[csv_name].append(seconds)
            seconds, slow = timed(read_sql)
            times["pandas.read_sql"].append(seconds)
            times["COPY CSV alone (no parsing)"].append(timed(copy_only)[0])
            times[chunked_name].append(timed(chunked)[0])
            times["fingerprint query"].append(timed(summary)[0])
            times["fingerprint query + MIN/MAX"].append(timed(lambda: summary(", MIN(flight_id), MAX(flight_id)"))[0])
            for frame in (fast, parts, parts_found, fallback):
                pd.testing.assert_frame_equal(frame, slow)
            rows = len(fast)
        print(f"flights join: {rows:,} rows x {fast.shape[1]} columns; median of {args.repeat} runs; frames equal")
        median = {name: statistics.median(values) for name, values in times.items()}
        for name, seconds in median.items():
            throughput = f"{rows / seconds:>10,.0f} rows/s" if "fingerprint" not in name else ""
            print(f"  {name:<48} {seconds:6.2f} s  {throughput}")
        for name in (csv_name, chunked_name, fast_name, parts_name, parts_min_max):
            print(f"  {name} / read_sql throughput: {median['pandas.read_sql'] / median[name]:.2f}x")
        # the example's extract with --env postgres: with partition_on, the partitioned read plus what its
        # split points add to the fingerprint query; without, the chunked writer
        if example_source().get("partition_on") == "flight_id":
            extra = max(0.0, median["fingerprint query + MIN/MAX"] - median["fingerprint query"])
            pipeline = f"{parts_name} + {extra:.2f} s of MIN/MAX in the fingerprint"
            seconds = median[parts_name] + extra
        else:
            pipeline, seconds = chunked_name, median[chunked_name]
        ratio = median["pandas.read_sql"] / seconds
        verdict = "PASS" if ratio >= 3 else "FAIL"
        print(f"  the example's extract with --env postgres ({pipeline}): {seconds:.2f} s")
        print(f"  the example's extract / read_sql throughput: {ratio:.2f}x (target >= 3x) -> {verdict}")
        load_after = os.getloadavg()[0]
        print(f"  load average (1 min) before {load_before[0]:.1f}, after {load_after:.1f}; {os.cpu_count()} cores")
    finally:
        with engine.begin() as connection:
            for table in tables.values():
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


if __name__ == "__main__":
    main()
