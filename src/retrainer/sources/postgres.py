"""PostgreSQL: rows through COPY or ADBC (`pg_copy`) instead of row-by-row `read_sql` (`fast_extract: auto`).

Without `partition_on`, extract streams the query `source.chunk_rows` rows at a time into a Parquet
file (`pg_copy.copy_to_parquet`), holding one chunk, not the table. With it, the query is read whole
as ranges of that column over several connections at once (`read_frame`, `partition_queries`), the
split points coming from the MIN/MAX the summary query adds. Columns COPY cannot map (json, uuid,
arrays...) fall back to `read_sql`, as does `fast_extract: off`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from retrainer.errors import SourceError, SourceUnavailable
from retrainer.sources import as_of as cut
from retrainer.sources.base import summary_sql, with_retries
from retrainer.sources.pg_copy import (
    Column,
    UnsupportedColumns,
    connect,
    copy_to_parquet,
    describe,
    literal_sql,
    read_table,
    supported_types,
    to_pandas_like_read_sql,
)
from retrainer.sources.sql import SqlSource

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    import pyarrow as pa


class PostgresSource(SqlSource):
    """A query (or table) in PostgreSQL."""

    _bounds: tuple[Any, Any] | None = None  # partition_on's (min, max), from the summary query

    @property
    def fast(self) -> bool:
        return self.spec.fast_extract == "auto"

    def summary(self) -> tuple[Any, ...]:
        """The summary row; with `partition_on`, the column's min and max come with it (kept for the
        read's split points, left out of the state: they only balance the ranges). Without them when
        the column has no min (missing, or of a type `read_frame` then names)."""
        source = self.spec
        if not source.partition_on or source.partitions < 2 or not self.fast:
            return super().summary()
        column = '"' + source.partition_on.replace('"', '""') + '"'
        try:
            row = self.scalar_row(
                summary_sql(self.query, self.time_column, f", MIN({column}), MAX({column})"), self.params()
            )
        except SourceUnavailable:
            raise
        except SourceError:
            return super().summary()
        self._bounds = (row[-2], row[-1])
        return row[:-2]

    def read_query(self) -> pd.DataFrame:
        source = self.spec
        if self.fast:
            frame = read_frame(
                self.url,
                self.query,
                self.params(),
                source.connect_timeout,
                partition_on=source.partition_on,
                partitions=source.partitions,
                bounds=self._bounds,
            )
            if frame is not None:
                return frame
            self.logger.info("fast extract: a column type COPY cannot map; using read_sql")
        return super().read_query()

    def stream(self, destination: Callable[[], str]) -> str | None:
        """COPY into a Parquet file one chunk at a time; None where the query is read whole
        (`fast_extract: off`, `partition_on`, rows already read for a content state, columns COPY cannot map)."""
        if not self.fast or self.spec.partition_on or self._rows is not None:
            return None
        path = destination()
        params = self.params()

        def copy() -> int:
            dropped: list[int] = []
            keep = cut.batch_filter(self.time_column, self.as_of, untimed_after=False, dropped=dropped)
            copy_to_parquet(
                self.url,
                self.query,
                params,
                path,
                chunk_rows=self.spec.chunk_rows,
                connect_timeout=self.spec.connect_timeout,
                keep=keep,
            )
            return sum(dropped)

        try:
            dropped = with_retries(self.spec, self.logger, copy)
        except UnsupportedColumns:
            self.logger.info("fast extract: a column type COPY cannot map; using read_sql")
            return None
        self.warn_dropped(dropped)
        return path


def read_frame(
    url: str,
    query: str,
    params: dict[str, Any],
    connect_timeout: int = 10,
    *,
    partition_on: str | None = None,
    partitions: int = 2,
    bounds: tuple[Any, Any] | None = None,
) -> pd.DataFrame | None:
    """The query's rows via COPY, equal to `pandas.read_sql`; None when a column type is not supported.

    With the ADBC PostgreSQL driver installed (`adbc-driver-postgresql`), the rows come as binary
    COPY decoded into Arrow in C; without it, as CSV parsed by pyarrow (`copy_batches`). Both
    end in the same Arrow schema, so the frame is the same either way.

    With `partition_on`, the rows are read as `partitions` ranges of that column, each over its own
    connection at the same time (see `partition_queries`); `bounds`, the column's (min, max) if known,
    saves the query that finds them.
    """
    with connect(url, connect_timeout) as connection:
        sql = literal_sql(connection, query, params)
        columns = describe(connection, sql)
        parts = [sql]
        if partition_on is not None:
            parts = partition_queries(connection, sql, columns, partition_on, partitions, bounds)
        if not supported_types(columns):
            return None
        if len(parts) == 1:
            table = read_table(url, sql, columns, connect_timeout, connection)
        else:
            table = _read_concurrently(url, parts, columns, connect_timeout)
    return to_pandas_like_read_sql(table, columns)


def _read_concurrently(url: str, parts: list[str], columns: list[Column], connect_timeout: int) -> pa.Table:
    """Each part on its own connection and thread (ADBC and the CSV parser release the GIL), in order;
    each planned serially (`SERIAL_PLAN`) when there are several."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    serial = len(parts) > 1
    with ThreadPoolExecutor(len(parts), thread_name_prefix="pg-partition") as pool:
        tables = list(pool.map(lambda part: read_table(url, part, columns, connect_timeout, serial=serial), parts))
    return pa.concat_tables(tables)


def partition_queries(
    connection: psycopg.Connection[Any],
    sql: str,
    columns: list[Column],
    partition_on: str,
    partitions: int,
    bounds: tuple[Any, Any] | None = None,
) -> list[str]:
    """The query split into ranges of one integer, date or timestamp column, in ascending order.

    The first range is open below and the last open above and holding the NULLs, so every row is in
    exactly one range whatever the split points: `bounds` (the column's min and max; queried when
    not given) only balance the ranges and may be stale. Read one after the other, the ranges give
    the rows of a query ordered by that column (ascending, NULLs last) in the same order; for any
    other order, rows come range by range, each range in the query's order.
    """
    from psycopg import sql as pg_sql

    _check_partition_column(columns, partition_on)
    name = pg_sql.Identifier(partition_on).as_string(connection)
    if partitions > 1 and bounds is None:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT min({name}), max({name}) FROM ({sql}) AS bounded")
            row = cursor.fetchone()
            assert row is not None
            bounds = (row[0], row[1])
    low, high = bounds or (None, None)
    cuts = [pg_sql.Literal(cut).as_string(connection) for cut in split_points(low, high, partitions)]
    if not cuts:
        return [sql]
    ranges = [f"{name} < {cuts[0]}"]
    ranges += [f"{name} >= {low} AND {name} < {high}" for low, high in itertools.pairwise(cuts)]
    ranges.append(f"{name} >= {cuts[-1]} OR {name} IS NULL")
    return [f"SELECT * FROM ({sql}) AS partitioned WHERE {condition}" for condition in ranges]


def split_points(low: Any, high: Any, partitions: int) -> list[Any]:
    """Up to `partitions - 1` evenly spaced values strictly between `low` and `high` (ints, dates, times).

    >>> split_points(0, 100, 4)
    [25, 50, 75]
    >>> split_points(1, 2, 4), split_points(None, None, 2)
    ([], [])
    """
    if low is None or high is None or not low < high:
        return []
    return sorted({cut for i in range(1, partitions) if low < (cut := low + (high - low) * i // partitions)})


_PARTITION_KINDS = ("int", "date", "timestamp", "timestamptz")


def _check_partition_column(columns: list[Column], partition_on: str) -> None:
    found = [column for column in columns if column.name == partition_on]
    names = ", ".join(column.name for column in columns)
    if not found:
        raise SourceError(
            f"source.partition_on: column {partition_on!r} is not in the query's result (it has: {names})",
            hint="name a column of the query's result, spelled as the result names it",
        )
    if len(found) > 1:
        raise SourceError(
            f"source.partition_on: the query's result has {len(found)} columns named {partition_on!r}",
            hint="rename the repeated columns in the query",
        )
    if found[0].kind not in _PARTITION_KINDS:
        kind = found[0].kind.replace("oid:", "type OID ")
        raise SourceError(
            f"source.partition_on: column {partition_on!r} is {kind}; ranges need an integer, date or timestamp",
            hint="partition on an id or a time column, or remove partition_on",
        )
