"""Extract throughput on the full flights join: the COPY→Arrow fast path against `pandas.read_sql`.

    .venv/bin/python benchmarks/extract.py [--url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--repeat 3]

Loads the NYC flights of 2013 (examples/flights/setup_data.py) into PostgreSQL under temporary table
names, then, in one run, reads the example pipeline's query (flights ⋈ weather ⋈ planes, as_of
2014-01-01: all 327,346 flights that arrived) through each path, alternating, `--repeat` times. Also
times the COPY alone (server work and transfer, no parsing) and the chunked Parquet writer. Prints
rows/s per path (median of the repeats) and the ratio; checks the two frames are equal. Drops the
tables at the end.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from retrainer.integrations import pg_copy  # noqa: E402


def flights_setup() -> Any:
    found = importlib.util.spec_from_file_location("flights_setup", ROOT / "examples" / "flights" / "setup_data.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def example_query(tables: dict[str, str]) -> str:
    query = yaml.safe_load((ROOT / "examples" / "flights" / "pipeline.yaml").read_text())["source"]["query"]
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
    args = parser.parse_args()
    setup = flights_setup()
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

    def chunked() -> int:
        with tempfile.TemporaryDirectory() as scratch:
            return pg_copy.copy_to_parquet(args.url, query, params, f"{scratch}/flights.parquet", chunk_rows=50_000)

    try:
        times: dict[str, list[float]] = {"fast (COPY -> Arrow -> pandas)": [], "pandas.read_sql": []}
        times.update({"COPY alone (no parsing)": [], "COPY -> Parquet, 50k-row chunks": []})
        rows = 0
        for _ in range(args.repeat):
            seconds, fast = timed(lambda: pg_copy.read_frame(args.url, query, params))
            times["fast (COPY -> Arrow -> pandas)"].append(seconds)
            seconds, slow = timed(read_sql)
            times["pandas.read_sql"].append(seconds)
            times["COPY alone (no parsing)"].append(timed(copy_only)[0])
            times["COPY -> Parquet, 50k-row chunks"].append(timed(chunked)[0])
            pd.testing.assert_frame_equal(fast, slow)
            rows = len(fast)
        print(f"flights join: {rows:,} rows x {fast.shape[1]} columns; median of {args.repeat} runs; frames equal")
        median = {name: statistics.median(values) for name, values in times.items()}
        for name, seconds in median.items():
            print(f"  {name:<34} {seconds:6.2f} s  {rows / seconds:>10,.0f} rows/s")
        ratio = median["pandas.read_sql"] / median["fast (COPY -> Arrow -> pandas)"]
        print(f"  fast path / read_sql throughput: {ratio:.2f}x")
    finally:
        with engine.begin() as connection:
            for table in tables.values():
                connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()


if __name__ == "__main__":
    main()
