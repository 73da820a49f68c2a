"""The COPY extract returns exactly what `pandas.read_sql` returns, on real PostgreSQL and real data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer import sources
from retrainer.sources import pg_copy, postgres
from retrainer.spec import spec_from_dict
from retrainer.stages import extract as extract_stage
from retrainer.urls import is_postgres

TYPED_ROWS = """
    SELECT 1::int AS i, NULL::int AS i_null, 2::bigint AS b, 3::smallint AS s, 1.5::float8 AS f,
           0.1::real AS r, 1.25::numeric(10, 2) AS n, 'NaN'::float8 AS nan, true AS bo, NULL::bool AS bo_null,
           'x'::text AS t, NULL::text AS t_null, 'c'::varchar(3) AS v, 'ab '::char(3) AS ch,
           '2013-01-01 10:00:00.25'::timestamp AS ts, '2013-06-01 10:00+05'::timestamptz AS tstz,
           '2013-01-02'::date AS d, 'a"b,c
d'::text AS quoted, ''::text AS empty, NULL::int AS all_null, 7 AS t
    UNION ALL
    SELECT NULL, 5, NULL, NULL, NULL, NULL, NULL, 2.5, false, true, NULL, 'y', NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, :eight
"""


def read_sql(query: str, params: dict[str, Any], engine: Any) -> pd.DataFrame:
    from sqlalchemy import text

    with engine.connect() as connection:
        return pd.read_sql_query(text(query), connection, params=params)


@pytest.mark.parametrize("decoder", ["adbc", "csv"])
@pytest.mark.parametrize("suffix", ["", " LIMIT 0", " OFFSET 1"])
def test_every_supported_type_nulls_and_empty_results_match_read_sql(
    pg_url: str, postgres_engine: Any, suffix: str, decoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both decoders: binary COPY through ADBC, and the CSV path taken where ADBC is not installed."""
    if decoder == "csv":
        monkeypatch.setattr(pg_copy, "adbc_installed", lambda: False)  # as if it were not installed
    query, params = f"SELECT * FROM ({TYPED_ROWS}) AS rows{suffix}", {"eight": 8}

    fast = postgres.read_frame(pg_url, query, params)

    assert fast is not None
    # repeated column names, NULL ints as float, NULL bools as object, timestamptz in UTC, '' vs NULL
    pd.testing.assert_frame_equal(fast, read_sql(query, params, postgres_engine))


def test_session_time_zone_and_date_order_are_the_servers_as_read_sql_sees_them(pg_url: str) -> None:
    from sqlalchemy import create_engine

    url = f"{pg_url}?options=-c%20TimeZone%3DAmerica/New_York%20-c%20DateStyle%3DISO,DMY"
    query = """SELECT '2013-06-01 23:30+00'::timestamptz AS moment,
                      '2013-06-01 23:30+00'::timestamptz::date AS local_day, '02/03/2013'::date AS literal"""
    engine = create_engine(url)
    try:
        expected = read_sql(query, {}, engine)
    finally:
        engine.dispose()

    fast = postgres.read_frame(url, query, {})

    pd.testing.assert_frame_equal(fast, expected)
    assert str(fast.loc[0, "local_day"]) == "2013-06-01" and str(fast.loc[0, "literal"]) == "2013-03-02"


def test_telco_table_matches_read_sql(
    pg_url: str, postgres_engine: Any, pg_table: Callable[..., str], telco: pd.DataFrame
) -> None:
    table = pg_table(telco)
    query = f"SELECT * FROM {table} WHERE tenure >= :tenure ORDER BY customer_id"

    fast = postgres.read_frame(pg_url, query, {"tenure": 2})

    assert fast is not None and len(fast) == int((telco["tenure"] >= 2).sum())
    pd.testing.assert_frame_equal(fast, read_sql(query, {"tenure": 2}, postgres_engine))


@pytest.mark.parametrize("partition_on", [None, "flight_id"])
def test_flights_join_matches_read_sql(
    pg_url: str, postgres_engine: Any, flights_pg: dict[str, str], partition_on: str | None
) -> None:
    query = flights_query(flights_pg) + " ORDER BY f.flight_id"
    params = {"as_of": datetime(2013, 3, 1)}

    fast = postgres.read_frame(pg_url, query, params, partition_on=partition_on, partitions=3)

    assert fast is not None and len(fast) > 10_000
    pd.testing.assert_frame_equal(fast, read_sql(query, params, postgres_engine))


# ------------------------------------------------------------------ partitioned read (source.partition_on)
# a key with NULLs (every 7th row), an int with NULLs, text, a time and a date: ordered by the key,
# NULLs last as PostgreSQL orders them
KEYED_ROWS = """
    SELECT CASE WHEN g % 7 = 0 THEN NULL ELSE g END AS k, g, NULLIF(g % 5, 0) AS maybe, md5(g::text) AS token,
           timestamp '2020-01-01' + g * interval '1 hour' AS at, date '2020-01-01' + g AS day
    FROM generate_series(1, :rows) AS g"""


@pytest.mark.parametrize(
    ("order_by", "partition_on", "partitions", "rows"),
    [
        ("k, g", "k", 3, 2_000),  # NULLs in the partition column (ties ordered: their order is the server's)
        ("at", "at", 4, 2_000),  # timestamp ranges
        ("day DESC", "day", 2, 2_000),  # date ranges; not ordered by it ascending: compared as sets
        ("k", "k", 2, 0),  # empty result: nothing to split
        ("k, g", "k", 1, 2_000),  # one partition: one plain read
        ("k", "k", 8, 3),  # more partitions than rows
    ],
)
@pytest.mark.parametrize("decoder", ["adbc", "csv"])
def test_partitioned_read_equals_read_sql(
    pg_url: str,
    postgres_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
    decoder: str,
    order_by: str,
    partition_on: str,
    partitions: int,
    rows: int,
) -> None:
    if decoder == "csv":
        monkeypatch.setattr(pg_copy, "adbc_installed", lambda: False)  # as if it were not installed
    query, params = f"SELECT * FROM ({KEYED_ROWS}) AS keyed ORDER BY {order_by}", {"rows": rows}
    expected = read_sql(query, params, postgres_engine)

    fast = postgres.read_frame(pg_url, query, params, partition_on=partition_on, partitions=partitions)

    assert fast is not None
    if order_by.endswith("DESC"):  # rows come range by range, ranges ascending, each in the query's order
        steps_up = pd.to_datetime(fast[partition_on]).diff() > pd.Timedelta(0)
        assert steps_up.sum() == partitions - 1
        fast, expected = (frame.sort_values("g", ignore_index=True) for frame in (fast, expected))
    pd.testing.assert_frame_equal(fast, expected)


def test_partitions_cover_every_row_once_whatever_the_bounds(pg_url: str, postgres_engine: Any) -> None:
    """Stale bounds (the table grew since they were taken) only unbalance the ranges: no row is lost."""
    query, params = f"SELECT * FROM ({KEYED_ROWS}) AS keyed ORDER BY k, g", {"rows": 3_000}
    with pg_copy.connect(pg_url) as connection:
        sql = pg_copy.literal_sql(connection, query, params)
        parts = postgres.partition_queries(connection, sql, pg_copy.describe(connection, sql), "k", 4, (100, 200))
    assert len(parts) == 4 and "IS NULL" in parts[-1]

    fast = postgres.read_frame(pg_url, query, params, partition_on="k", partitions=4, bounds=(100, 200))

    pd.testing.assert_frame_equal(fast, read_sql(query, params, postgres_engine))


@pytest.mark.parametrize(
    ("partition_on", "message"),
    [
        ("missing", "column 'missing' is not in the query's result (it has: k, g, maybe, token, at, day, k)"),
        ("token", "column 'token' is text; ranges need an integer, date or timestamp"),
        ("k", "the query's result has 2 columns named 'k'"),
    ],
)
def test_a_bad_partition_column_is_a_clear_source_error(pg_url: str, partition_on: str, message: str) -> None:
    from retrainer.errors import SourceError

    query = f"SELECT *, 0 AS k FROM ({KEYED_ROWS}) AS keyed"

    with pytest.raises(SourceError) as caught:
        postgres.read_frame(pg_url, query, {"rows": 10}, partition_on=partition_on)

    assert caught.value.message == f"source.partition_on: {message}"


def test_split_points_are_evenly_spaced_and_distinct() -> None:
    assert postgres.split_points(0, 10, 3) == [3, 6]
    assert postgres.split_points(5, 7, 8) == [6]  # more partitions than values: fewer ranges
    start = datetime(2020, 1, 1)
    assert postgres.split_points(start, datetime(2020, 1, 3), 2) == [datetime(2020, 1, 2)]
    assert postgres.split_points(3, 3, 2) == postgres.split_points(None, None, 2) == []


def test_bound_values_are_quoted_by_psycopg_never_formatted(pg_url: str, postgres_engine: Any) -> None:
    hostile = "x'); DROP TABLE pg_class; -- 100% :as_of"
    query = "SELECT CAST(:value AS text) AS value, 5 % 3 AS remainder, '{\"a\": 1}'::text AS colon"

    fast = postgres.read_frame(pg_url, query, {"value": hostile})

    assert fast is not None
    assert fast.loc[0, "value"] == hostile and fast.loc[0, "remainder"] == 2
    pd.testing.assert_frame_equal(fast, read_sql(query, {"value": hostile}, postgres_engine))


def test_unsupported_column_types_fall_back_to_read_sql(pg_url: str, postgres_engine: Any) -> None:
    query = "SELECT 1 AS id, '[1, 2]'::jsonb AS payload, '1 day'::interval AS span"
    source = spec_from_dict({"name": "t", "source": {"url": pg_url, "query": query}, "target": "id"}).source

    assert postgres.read_frame(pg_url, query, {}) is None
    frame = sources.for_spec(source).read()  # the stage's reader: fast path declined, read_sql used

    pd.testing.assert_frame_equal(frame, read_sql(query, {}, postgres_engine))


def test_postgres_urls_choose_the_fast_path_unless_turned_off(
    pg_url: str, postgres_engine: Any, monkeypatch: Any
) -> None:
    calls: list[str] = []
    real = postgres.read_frame
    monkeypatch.setattr(postgres, "read_frame", lambda *a, **k: calls.append("copy") or real(*a, **k))
    for fast_extract, expected in (("auto", ["copy"]), ("off", [])):
        calls.clear()
        source = spec_from_dict(
            {
                "name": "t",
                "source": {"url": pg_url, "query": "SELECT 1 AS x", "fast_extract": fast_extract},
                "target": "x",
            }
        ).source
        assert sources.for_spec(source).read()["x"].tolist() == [1]
        assert calls == expected
    assert not is_postgres("sqlite:///x.db") and is_postgres(pg_url)


@pytest.mark.parametrize("decoder", ["adbc", "csv"])
def test_chunked_parquet_holds_the_same_rows(
    pg_url: str,
    tmp_path: Path,
    postgres_engine: Any,
    flights_pg: dict[str, str],
    decoder: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pyarrow.parquet as pq

    if decoder == "csv":
        monkeypatch.setattr(pg_copy, "adbc_installed", lambda: False)  # as if it were not installed

    query = flights_query(flights_pg) + " ORDER BY f.flight_id"
    params = {"as_of": datetime(2013, 2, 1)}
    path = tmp_path / "flights.parquet"

    rows = pg_copy.copy_to_parquet(pg_url, query, params, str(path), chunk_rows=2_000)

    parquet = pq.ParquetFile(path)
    assert rows == parquet.metadata.num_rows and parquet.num_row_groups >= rows // 2_000
    expected = read_sql(query, params, postgres_engine)
    pd.testing.assert_frame_equal(parquet.read().to_pandas(), expected, check_dtype=False)


def test_unreachable_postgres_is_a_source_error_without_the_password() -> None:
    from retrainer.errors import SourceError

    with pytest.raises(SourceError) as caught:
        postgres.read_frame("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test", "SELECT 1", {}, 2)
    assert "postgres:***@127.0.0.1:1" in caught.value.message and "s3cret" not in caught.value.message


def flights_query(tables: dict[str, str]) -> str:
    return f"""
        SELECT f.flight_id, f.time_hour, f.carrier, f.origin, f.dest, f.distance, f.tailnum,
               w.temp, w.wind_gust, w.precip, 2013 - p.year AS plane_age, p.seats, p.engine,
               f.arr_delay > 15 AS late
        FROM {tables["flights"]} f
        LEFT JOIN {tables["weather"]} w ON w.origin = f.origin AND w.time_hour = f.time_hour
        LEFT JOIN {tables["planes"]} p ON p.tailnum = f.tailnum
        WHERE f.time_hour < :as_of"""


# ------------------------------------------------------------------ chunked extract inside the pipeline
def extract_only(spec_dict: dict[str, Any], tmp_path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the pipeline up to extract; the frame later stages read, and the lineage it recorded."""
    import retrainer
    from retrainer.store import ArtifactRef, RunStore

    spec = spec_from_dict({"store": str(tmp_path / "store"), "report": {"auto": False}, **spec_dict})
    result = retrainer.run(spec, until="extract")
    store = RunStore(spec.store)
    manifest = store.read_manifest("extract", result.stages[0].key)
    assert manifest is not None
    artifacts = {name: ArtifactRef(**ref) for name, ref in manifest["artifacts"].items()}
    return store.load_artifact(artifacts["data"]), store.load_artifact(artifacts["source_info"])


@pytest.mark.parametrize("decoder", ["adbc", "csv"])
@pytest.mark.parametrize("suffix", ["", " LIMIT 0"])
def test_chunked_stage_extract_reads_back_exactly_what_read_sql_returns(
    pg_url: str, postgres_engine: Any, tmp_path: Path, suffix: str, decoder: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainer.store import frame_digest

    if decoder == "csv":
        monkeypatch.setattr(pg_copy, "adbc_installed", lambda: False)  # as if it were not installed

    rows = f"SELECT * FROM ({TYPED_ROWS}) AS typed, generate_series(1, 2500) AS g{suffix}"
    query = (
        f"SELECT g, i, i_null, b, f, n, bo, bo_null, v, t_null, ts, tstz, d, quoted, empty, all_null FROM ({rows}) AS r"
    )
    source = {"url": pg_url, "query": query, "params": {"eight": 8}, "chunk_rows": 1_000}

    frame, lineage = extract_only({"name": "chunks", "source": source, "target": "bo"}, tmp_path)

    expected = read_sql(query, {"eight": 8}, postgres_engine)
    pd.testing.assert_frame_equal(frame, expected)  # NULLs only in some chunks: still one dtype per column
    assert lineage["rows"] == len(expected) and lineage["data_digest"] == frame_digest(expected)


def test_stage_reads_partitioned_with_bounds_from_its_summary_query(
    pg_url: str, postgres_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainer.store import frame_digest

    query = f"SELECT * FROM ({KEYED_ROWS}) AS keyed ORDER BY k, g"
    source = {"url": pg_url, "query": query, "params": {"rows": 5_000}, "partition_on": "k", "partitions": 3}
    calls: list[Any] = []
    real = postgres.read_frame
    monkeypatch.setattr(postgres, "read_frame", lambda *a, **k: calls.append(k["bounds"]) or real(*a, **k))

    frame, lineage = extract_only({"name": "parts", "source": source, "target": "g"}, tmp_path)

    expected = read_sql(query, {"rows": 5_000}, postgres_engine)
    pd.testing.assert_frame_equal(frame, expected)
    assert lineage["data_digest"] == frame_digest(expected)
    assert calls == [(1, 5_000)]  # the whole-frame read, its split points from the fingerprint's query


def test_chunked_flights_extract_equals_the_whole_frame_path_and_the_pipeline_runs(
    pg_url: str, postgres_engine: Any, tmp_path: Path, flights_pg: dict[str, str]
) -> None:
    import retrainer
    from retrainer.store import frame_digest

    base = {
        "name": "flights-chunks",
        "target": "late",
        "time_column": "time_hour",
        "validation": {"max_null_fraction": 0.9, "max_duplicate_fraction": 0.5},
        "models": {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2},
        "promotion": {"registry_name": "flights-chunks"},
        "report": {"auto": False},
    }
    # the query forgets no rows: :as_of filters it, and the stage drops nothing more
    source = {"url": pg_url, "query": flights_query(flights_pg) + " ORDER BY f.flight_id"}
    chunked, lineage = extract_only({**base, "source": {**source, "chunk_rows": 5_000}}, tmp_path / "chunked")
    whole, whole_lineage = extract_only({**base, "source": {**source, "fast_extract": "off"}}, tmp_path / "whole")
    direct = read_sql(source["query"], {"as_of": datetime.now()}, postgres_engine)

    assert len(chunked) > 4 * 5_000
    pd.testing.assert_frame_equal(chunked, whole)
    pd.testing.assert_frame_equal(chunked, direct)
    assert lineage["data_digest"] == whole_lineage["data_digest"] == frame_digest(direct)

    spec = spec_from_dict(
        {**base, "store": str(tmp_path / "chunked" / "store"), "source": {**source, "chunk_rows": 5_000}}
    )
    result = retrainer.run(spec, as_of="2013-03-01")
    assert result.outcome == "promoted", result.reason
    assert result.metrics["rows"] == int((direct["time_hour"] < "2013-03-01").sum())


PEAK_RSS_SCRIPT = """
import json, sys
import retrainer
from retrainer.spec import spec_from_dict
from retrainer.sources import postgres

def rss_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024

def extract(query, store):
    spec = spec_from_dict({"name": "peak", "source": {"url": url, "query": query, "chunk_rows": 20000},
                           "target": "flag", "store": store, "report": {"auto": False}})
    assert retrainer.run(spec, until="extract").ok

url, query, store, mode = sys.argv[1:5]
extract(query.replace("ROWS", "1000"), store + "/warm-up")  # every import the stage makes, before the baseline
before = rss_mib("VmRSS:")
if mode == "whole":
    frame = postgres.read_frame(url, query.replace("ROWS", "2000000"), {})
    size = frame.memory_usage(deep=True).sum() / 2**20
else:
    extract(query.replace("ROWS", "2000000"), store + "/big")
    size = None
print(json.dumps({"growth_mib": rss_mib("VmHWM:") - before, "size_mib": size}))
"""


def test_chunked_extract_peak_memory_is_bounded_by_the_chunk_not_the_table(pg_url: str, tmp_path: Path) -> None:
    """2,000,000 rows (about 180 MiB as a DataFrame) extracted 20,000 at a time in a child process: its
    peak RSS grows by a fraction of the table. The whole-frame reader, measured the same way, grows by
    more than the table: the measurement would catch an extract that holds it."""
    import json
    import os
    import subprocess
    import sys

    query = """SELECT g AS id, g * 1.5 AS amount, g % 7 AS bucket, md5(g::text) AS token, g % 2 = 0 AS flag,
                      'customer ' || (g % 1000)::text AS name, timestamp '2020-01-01' + g * interval '1 second' AS at
               FROM generate_series(1, ROWS) AS g"""
    env = {**os.environ, "PYTHONPATH": str(Path(extract_stage.__file__).parents[2])}

    def measure(mode: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_SCRIPT, pg_url, query, str(tmp_path / mode), mode],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=300,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    chunked, whole = measure("chunked"), measure("whole")

    size = whole["size_mib"]
    print(
        f"table {size:.0f} MiB; peak RSS growth: chunked {chunked['growth_mib']:.0f}, whole {whole['growth_mib']:.0f}"
    )
    assert size > 150
    assert chunked["growth_mib"] < 0.5 * size < whole["growth_mib"], (chunked, whole)
