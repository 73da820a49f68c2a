"""Every kind of source passes the same tests, on the real Telco data (as Optuna tests every storage).

A kind is a way to write a frame where a source reads it (a CSV file, a Parquet file, a SQLite table,
a PostgreSQL table) and the `source:` section that names it. Every test below runs once per kind;
a new kind of source joins by adding its line to `KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retrainer import sources
from retrainer.errors import SourceError, SourceUnavailable
from retrainer.spec import SourceSpec

TIME = "snapshot_date"
# noon: no row sits on the cut, so SQLite, which compares its stored text, agrees with the others
AS_OF = datetime(2026, 2, 15, 12)
SECRET = "s3cret-pw"

Write = Callable[[pd.DataFrame], dict[str, Any]]  # the frame written where the source reads it -> source section


@pytest.fixture
def telco_dated(telco: pd.DataFrame) -> pd.DataFrame:
    """The Telco customers with a snapshot date (one per tenure month, 2026-01-01 onwards)."""
    frame = telco.copy()
    frame[TIME] = pd.Timestamp("2026-01-01") + pd.to_timedelta(frame["tenure"], unit="D")
    return frame


def _csv(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    def write(frame: pd.DataFrame) -> dict[str, Any]:
        frame.to_csv(tmp_path / "telco.csv", index=False)
        return {"path": str(tmp_path / "telco.csv")}

    return write


def _parquet(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    def write(frame: pd.DataFrame) -> dict[str, Any]:
        frame.to_parquet(tmp_path / "telco.parquet", index=False, row_group_size=2_500)
        return {"path": str(tmp_path / "telco.parquet")}

    return write


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest, options: str = "") -> Write:
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'telco.db'}"

    def write(frame: pd.DataFrame) -> dict[str, Any]:
        engine = create_engine(url)
        with engine.begin() as connection:
            frame.to_sql("customers", connection, if_exists="replace", index=False)
        engine.dispose()
        return {"url": url + options, "table": "customers"}

    return write


def _sqlite_through_sqlalchemy(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    """A URL with driver options: every query goes through SQLAlchemy, none through `sqlite3`."""
    return _sqlite(tmp_path, request, "?check_same_thread=false")


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    """PostgreSQL with a password in the URL (trust auth ignores it): no message may show it."""
    from conftest import PG_URL

    load = request.getfixturevalue("pg_table")
    url = PG_URL.replace("postgres@", f"postgres:{SECRET}@", 1)

    def write(frame: pd.DataFrame) -> dict[str, Any]:
        return {"url": url, "table": load(frame)}

    return write


def _postgres_read_sql(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    write = _postgres(tmp_path, request)
    return lambda frame: {**write(frame), "fast_extract": "off"}


def _postgres_partitioned(tmp_path: Path, request: pytest.FixtureRequest) -> Write:
    write = _postgres(tmp_path, request)
    return lambda frame: {**write(frame), "partition_on": "tenure", "partitions": 3}


KINDS = [
    pytest.param(_csv, id="csv"),
    pytest.param(_parquet, id="parquet"),
    pytest.param(_sqlite, id="sqlite"),
    pytest.param(_sqlite_through_sqlalchemy, id="sqlite-sqlalchemy"),
    pytest.param(_postgres, id="postgres", marks=pytest.mark.postgres),
    pytest.param(_postgres_read_sql, id="postgres-read-sql", marks=pytest.mark.postgres),
    pytest.param(_postgres_partitioned, id="postgres-partitioned", marks=pytest.mark.postgres),
]


@pytest.fixture(params=KINDS)
def write(request: pytest.FixtureRequest, tmp_path: Path) -> Write:
    kind: Callable[[Path, pytest.FixtureRequest], Write] = request.param
    return kind(tmp_path, request)


def source_for(section: dict[str, Any], as_of: datetime | None = None, **spec: Any) -> sources.Source:
    return sources.for_spec(SourceSpec(**{**section, "chunk_rows": 1_000, **spec}), time_column=TIME, as_of=as_of)


def streamed_or_read(source: sources.Source, tmp_path: Path) -> pd.DataFrame:
    """What the extract stage's later stages see: the streamed file read back, or the whole read."""
    path = source.stream(lambda: str(tmp_path / "streamed.parquet"))
    return source.read() if path is None else pd.read_parquet(path)


def sorted_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("customer_id").reset_index(drop=True)


# ------------------------------------------------------------------------------------ reading


def test_reads_every_row_and_column(write: Write, telco_dated: pd.DataFrame) -> None:
    frame = source_for(write(telco_dated)).read()

    assert list(frame.columns) == list(telco_dated.columns)
    assert len(frame) == len(telco_dated) == 7_043
    got, expected = sorted_rows(frame), sorted_rows(telco_dated)
    for column in ("customer_id", "churn", "tenure", "monthly_charges", "contract"):
        assert got[column].tolist() == expected[column].tolist(), column
    assert (pd.to_datetime(got[TIME]) == expected[TIME]).all()


def test_chunked_and_whole_reads_give_the_same_rows_and_dtypes(
    write: Write, telco_dated: pd.DataFrame, tmp_path: Path
) -> None:
    section = write(telco_dated)
    whole = source_for(section).read()
    chunked = streamed_or_read(source_for(section), tmp_path)

    pd.testing.assert_frame_equal(sorted_rows(chunked), sorted_rows(whole))


def test_count_is_the_number_of_rows(write: Write, telco_dated: pd.DataFrame) -> None:
    assert source_for(write(telco_dated)).count() == len(telco_dated)


def test_check_says_the_source_answers(write: Write, telco_dated: pd.DataFrame) -> None:
    assert source_for(write(telco_dated)).check()


# ------------------------------------------------------------------------------------ as_of


def test_rows_after_as_of_are_dropped_whole_and_chunked(
    write: Write, telco_dated: pd.DataFrame, tmp_path: Path
) -> None:
    section = write(telco_dated)
    expected = sorted_rows(telco_dated.loc[telco_dated[TIME] <= AS_OF])
    assert 0 < len(expected) < len(telco_dated)

    for frame in (source_for(section, AS_OF).read(), streamed_or_read(source_for(section, AS_OF), tmp_path)):
        assert sorted_rows(frame)["customer_id"].tolist() == expected["customer_id"].tolist()
        assert (pd.to_datetime(frame[TIME]) <= AS_OF).all()


def test_a_query_that_filters_with_as_of_binds_the_run_date(write: Write, telco_dated: pd.DataFrame) -> None:
    section = write(telco_dated)
    if "path" in section:
        pytest.skip("a file has no query")
    query = f"SELECT * FROM {section.pop('table')} WHERE {TIME} <= :as_of"
    frame = source_for({**section, "query": query}, AS_OF).read()

    assert len(frame) == int((telco_dated[TIME] <= AS_OF).sum())


# ------------------------------------------------------------------------------------ fingerprints


def test_fingerprint_is_stable_while_the_data_is(write: Write, telco_dated: pd.DataFrame) -> None:
    first = source_for(write(telco_dated), AS_OF).fingerprint()

    assert source_for(write(telco_dated), AS_OF).fingerprint() == first


@pytest.mark.parametrize("fingerprint", ["summary", "content"])
def test_fingerprint_changes_when_a_row_goes(write: Write, telco_dated: pd.DataFrame, fingerprint: str) -> None:
    before = source_for(write(telco_dated), fingerprint=fingerprint).fingerprint()

    assert source_for(write(telco_dated.iloc[1:]), fingerprint=fingerprint).fingerprint() != before


def test_content_fingerprint_changes_when_a_value_changes_in_place(write: Write, telco_dated: pd.DataFrame) -> None:
    """A summary (row count, latest time) cannot see this; hashing every row (files always) does."""
    before = source_for(write(telco_dated), fingerprint="content")
    state, fingerprint = before.state(), before.fingerprint()
    changed = telco_dated.copy()
    changed.loc[100, "monthly_charges"] += 1.0

    after = source_for(write(changed), fingerprint="content")
    assert after.state() != state and after.fingerprint() != fingerprint


def test_state_leaves_out_the_bound_date(write: Write, telco_dated: pd.DataFrame) -> None:
    section = write(telco_dated)
    if "path" in section:
        pytest.skip("a file's state names the as_of it is read at")
    later = datetime(2027, 1, 1)
    query = f"SELECT * FROM {section.pop('table')} WHERE {TIME} <= :as_of"
    one, other = (source_for({**section, "query": query}, moment) for moment in (later, datetime(2027, 6, 1)))

    assert one.state() == other.state()
    assert one.fingerprint() != other.fingerprint()


# ------------------------------------------------------------------------------------ errors and secrets


def test_a_missing_table_or_file_is_a_source_error_that_is_not_retried(write: Write, telco_dated: pd.DataFrame) -> None:
    section = write(telco_dated)
    if "path" in section:
        section["path"] = section["path"].replace("telco.", "missing.")
    else:
        section["table"] = "no_such_table"
    source = source_for(section)

    for call in (source.read, source.count, source.state, source.check):
        with pytest.raises(SourceError) as raised:
            call()
        assert not isinstance(raised.value, SourceUnavailable), call
        assert "missing" in raised.value.message or "no_such_table" in raised.value.message
        assert SECRET not in raised.value.message


def test_the_password_is_masked_in_every_description(write: Write, telco_dated: pd.DataFrame) -> None:
    section = write(telco_dated)
    source = source_for(section)

    shown = [source.describe(), repr(source.lineage()), source.check()]
    assert all(SECRET not in text for text in shown), shown
    if SECRET in section.get("url", ""):
        assert ":***@" in source.describe()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://etl:{SECRET}@db:5432/prod",
        f"postgres://etl:{SECRET}@db/prod?sslmode=require",
        f"mysql+pymysql://etl:{SECRET}@db/prod",
        f"sqlite+pysqlite://etl:{SECRET}@/x.db",
    ],
)
def test_descriptions_never_show_a_password_whatever_the_kind(url: str) -> None:
    source = sources.for_spec(SourceSpec(url=url, table="customers"))

    assert SECRET not in source.describe() and SECRET not in repr(source.lineage())


def test_the_kind_is_chosen_by_path_and_url() -> None:
    from retrainer.sources.files import CsvSource, ParquetSource
    from retrainer.sources.postgres import PostgresSource
    from retrainer.sources.sql import SqlSource
    from retrainer.sources.sqlite import SqliteSource

    def kind(**section: Any) -> type:
        return type(sources.for_spec(SourceSpec(**section)))

    assert kind(path="a.csv") is CsvSource and kind(path="a.csv.gz") is CsvSource
    assert kind(path="a.parquet") is ParquetSource and kind(path="a.PQ") is ParquetSource
    assert kind(url="sqlite:///a.db", table="t") is SqliteSource
    assert kind(url="postgresql+psycopg://u@h/db", table="t") is PostgresSource
    assert kind(url="postgres://u@h/db", table="t") is PostgresSource
    assert kind(url="mysql+pymysql://u@h/db", table="t") is SqlSource
