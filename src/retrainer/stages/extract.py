"""Extract: read the training data from SQL (SQLAlchemy) or a Parquet/CSV file.

Caching needs to know whether the source changed without reading it all. How a source is
fingerprinted:

- file: SHA-256 of the file's bytes.
- SQL, `fingerprint: summary` (default): the query text and its bound parameters, plus one aggregate
  query over it: `SELECT COUNT(*), MAX(<time_column>) FROM (<query>)`. New or deleted rows, or
  newer timestamps, change it; an in-place update that keeps the count and the latest time does not
  (use `content` for tables updated in place).
- SQL, `fingerprint: content`: the SHA-256 of every extracted row (the query runs in full).

Memory: PostgreSQL (through COPY) and Parquet files are streamed `source.chunk_rows` rows at a time
into a Parquet file that the store moves in as the `data` artifact, so extract holds one chunk, not
the table. CSV files, other databases, `fingerprint: content` and `source.partition_on` (PostgreSQL
read in ranges over several connections at once) are read whole into a DataFrame.
Either way the data digest is `frame_digest` of the frame later stages read, so it does not depend
on the chunk size.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from retrainer.errors import SourceError, SourceUnavailable, first_line, source_query_failed, source_unreachable
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.urls import is_postgres, safe_url, sqlite_file

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Connection, Engine

    from retrainer.spec import SourceSpec
    from retrainer.store import ParquetFile

T = TypeVar("T")
_BIND_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def engine_for(source: SourceSpec) -> Engine:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    assert source.url is not None
    timeout_arg = (
        {"timeout": source.connect_timeout}
        if source.url.startswith("sqlite")
        else {"connect_timeout": source.connect_timeout}
    )
    try:
        return create_engine(source.url, connect_args=timeout_arg, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise SourceError(
            f"invalid database URL {safe_url(source.url)}: {exc}",
            hint="use e.g. postgresql+psycopg://user@host:5432/db or sqlite:///file.db",
        ) from None


def base_query(source: SourceSpec) -> str:
    if source.query:
        return source.query.strip().rstrip(";")
    assert source.table is not None
    if not re.fullmatch(r"[A-Za-z_][\w.]*", source.table):
        raise SourceError(
            f"table name {source.table!r} is not a plain identifier", hint="use 'query' for anything but a table name"
        )
    return f"SELECT * FROM {source.table}"


def bind_params(query: str, source: SourceSpec, as_of: datetime | None) -> dict[str, Any]:
    """Only the parameters the query uses; `:as_of` defaults to now when the run names no date."""
    wanted = set(_BIND_NAME.findall(query))
    params = {k: v for k, v in source.params.items() if k in wanted}
    if "as_of" in wanted:
        params["as_of"] = (as_of or datetime.now(UTC)).replace(tzinfo=None)
    missing = wanted - params.keys()
    if missing:
        raise SourceError(
            f"query uses parameters {sorted(missing)} that the spec does not give", hint="add them under source.params"
        )
    return params


def _run_sql(
    source: SourceSpec, sql: str, params: dict[str, Any], bounds: tuple[Any, Any] | None = None
) -> pd.DataFrame:
    """The query's rows; PostgreSQL streams them through COPY into Arrow unless `fast_extract: off`,
    in `source.partitions` ranges at once with `source.partition_on` (`bounds`: its min and max, if known)."""
    import pandas as pd
    from sqlalchemy import text

    from retrainer.sources import postgres

    assert source.url is not None
    if _fast_postgres(source):
        frame = postgres.read_frame(
            source.url,
            sql,
            params,
            source.connect_timeout,
            partition_on=source.partition_on,
            partitions=source.partitions,
            bounds=bounds,
        )
        if frame is not None:
            return frame
        logging.getLogger("retrainer").info("fast extract: a column type COPY cannot map; using read_sql")
    with _connection(source) as connection:
        return pd.read_sql_query(text(sql), connection, params=params)


def _fast_postgres(source: SourceSpec) -> bool:
    return source.fast_extract == "auto" and is_postgres(source.url)


def _scalar_row(source: SourceSpec, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    """One row of a small aggregate query, without pandas (the cached path stays light)."""
    assert source.url is not None
    db_file = sqlite_file(source.url)
    if db_file is not None:
        return _sqlite_scalar_row(source.url, db_file, sql, params, source.connect_timeout)
    from sqlalchemy import text

    with _connection(source) as connection:
        return tuple(connection.execute(text(sql), params).one())


def _sqlite_scalar_row(url: str, path: str, sql: str, params: dict[str, Any], timeout: int) -> tuple[Any, ...]:
    """The same query through the standard library's sqlite3, which SQLAlchemy's pysqlite dialect drives
    too (text() hands the parameters over as they are): importing SQLAlchemy takes about 0.3 s, most of
    an unchanged re-run, whose only database work is this fingerprint."""
    import sqlite3

    if not Path(path).is_file():  # mode=ro refuses to create it; say what is wrong in words
        raise SourceError(f"SQLite database file {path} not found", hint="check source.url (sqlite:///path/to/file.db)")
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as error:
        raise source_unreachable(url, error) from None
    try:
        row = connection.execute(sql, params).fetchone()
    except sqlite3.OperationalError as error:  # as through SQLAlchemy: a syntax error or missing table
        raise source_unreachable(url, error, SourceError) from None
    except sqlite3.Error as error:
        raise source_query_failed(url, error) from None
    finally:
        connection.close()
    return tuple(row)


def row_count(source: SourceSpec, query: str, params: dict[str, Any]) -> int:
    """How many rows the query returns, counted by the database."""
    return int(_scalar_row(source, f"SELECT COUNT(*) FROM ({query}) AS source_rows", params)[0])


@contextlib.contextmanager
def _connection(source: SourceSpec) -> Iterator[Connection]:
    """A connection whose errors become SourceError with the password masked."""
    from sqlalchemy import exc

    assert source.url is not None
    engine = engine_for(source)
    try:
        with engine.connect() as connection:
            yield connection
    except exc.OperationalError as error:
        # worth another try only when the connection failed or was lost: SQLite reports a syntax
        # error or a missing table as an OperationalError too, and those would fail the same way again
        lost = error.connection_invalidated or error.statement is None or "connect" in str(error.orig).lower()
        raise source_unreachable(source.url, error.orig or error, SourceUnavailable if lost else SourceError) from None
    except exc.DBAPIError as error:
        raise source_query_failed(source.url, error.orig or error) from None
    finally:
        engine.dispose()


def read_file(path: str) -> pd.DataFrame:
    import pandas as pd

    try:
        if path.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except FileNotFoundError:
        raise SourceError(
            f"source file {path} not found", hint="check source.path (relative paths are relative to the spec file)"
        ) from None
    except Exception as error:  # noqa: BLE001 - pyarrow and the csv parser raise many kinds
        raise SourceError(
            f"cannot read {path}: {first_line(error)}", hint="check the file is valid Parquet/CSV"
        ) from None


def _file_digest(path: str) -> str:
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
    except FileNotFoundError:
        raise SourceError(
            f"source file {path} not found", hint="check source.path (relative paths are relative to the spec file)"
        ) from None
    return hasher.hexdigest()[:16]


def source_state(ctx: RunContext) -> str:
    """What data the source holds for this run (see the module docstring): equal states, equal data.

    Unlike the cache fingerprint it leaves out the bound parameters, so two `as_of` dates that see the
    same rows have the same state: that is how an orchestrator knows there is nothing new to learn from.
    """
    source, spec = ctx.spec.source, ctx.spec
    if source.path:
        as_of = ctx.as_of.isoformat() if ctx.as_of and spec.time_column else ""
        return f"file:{_file_digest(source.path)}:{as_of}"
    query = base_query(source)
    params = bind_params(query, source, ctx.as_of)
    if source.fingerprint == "content":
        from retrainer.store import frame_digest

        frame = _run_sql(source, query, params)
        ctx.scratch["extract.frame"] = frame
        return f"content:{frame_digest(frame)}"
    summary = _summary_with_bounds(ctx, query, params)
    if summary is None:
        summary = _scalar_row(source, _summary_sql(ctx, query), params)
    return "summary:" + hashlib.sha256("\x1f".join([query, *(str(v) for v in summary)]).encode()).hexdigest()[:16]


def _summary_sql(ctx: RunContext, query: str, more: str = "") -> str:
    latest = f", MAX({ctx.spec.time_column}) AS latest" if ctx.spec.time_column else ""
    return f"SELECT COUNT(*) AS n{latest}{more} FROM ({query}) AS source_rows"


def _summary_with_bounds(ctx: RunContext, query: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
    """The summary row, with `partition_on`'s min and max put in `ctx.scratch` for the partitioned read:
    its split points come with a query that runs anyway, not from one more pass over the query. None
    without partition_on, or when the column has no min (missing, or of a type read_frame then names)."""
    source = ctx.spec.source
    if not source.partition_on or source.partitions < 2 or not _fast_postgres(source):
        return None
    column = '"' + source.partition_on.replace('"', '""') + '"'
    try:
        row = _scalar_row(source, _summary_sql(ctx, query, f", MIN({column}), MAX({column})"), params)
    except SourceUnavailable:
        raise
    except SourceError:
        return None
    ctx.scratch["extract.bounds"] = row[-2:]
    return row[:-2]  # the state leaves the bounds out: they only balance the ranges


def fingerprint(ctx: RunContext) -> str:
    """The extract stage's contribution to its cache key: the source's state and the bound parameters."""
    state = source_state(ctx)
    ctx.scratch["extract.state"] = state
    if ctx.spec.source.path:
        return state
    query = base_query(ctx.spec.source)
    params = bind_params(query, ctx.spec.source, ctx.as_of)
    params_text = {k: (str(v) if k != "as_of" or ctx.as_of else "now") for k, v in sorted(params.items())}
    return f"{state}:{params_text!r}"


def extract(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    source, spec = ctx.spec.source, ctx.spec
    data: pd.DataFrame | ParquetFile | None = None
    if source.path:
        origin: dict[str, Any] = {"kind": "file", "path": source.path}
        data = _stream_parquet_file(ctx, source.path)
        if data is None:
            frame = read_file(source.path)
            if spec.time_column and ctx.as_of is not None and spec.time_column in frame.columns:
                import pandas as pd

                times = pd.to_datetime(frame[spec.time_column])
                frame = frame.loc[times <= pd.Timestamp(ctx.as_of.replace(tzinfo=None))].reset_index(drop=True)
            data = frame
    else:
        assert source.url is not None
        query = base_query(source)
        origin = {"kind": "sql", "url": safe_url(source.url), "query": query}
        frame = ctx.scratch.pop("extract.frame", None)
        params = bind_params(query, source, ctx.as_of)
        if frame is None:
            data = with_retries(ctx, lambda: _stream_postgres(ctx, query, params))
        if data is None:
            if frame is None:
                bounds = ctx.scratch.pop("extract.bounds", None)
                frame = with_retries(ctx, lambda: _run_sql(source, query, params, bounds))
            data = _drop_rows_after_as_of(ctx, frame)
    from retrainer.store import ParquetFile, frame_digest

    if isinstance(data, ParquetFile):
        import pyarrow.parquet as pq

        schema = pq.read_schema(data.path)
        rows, columns, digest = pq.ParquetFile(data.path).metadata.num_rows, schema.names, data.digest
    else:
        rows, columns, digest = len(data), list(map(str, data.columns)), frame_digest(data)
    ctx.logger.info("extracted %d rows x %d columns", rows, len(columns))
    lineage = {
        **origin,
        "source_state": ctx.scratch.get("extract.state") or source_state(ctx),
        "rows": rows,
        "columns": columns,
        "data_digest": digest,
        "as_of": ctx.as_of,
    }
    return StageOutput(
        artifacts={"data": data, "source_info": lineage},
        metrics={"rows": float(rows), "columns": float(len(columns))},
        summary=f"{rows:,} rows x {len(columns)} columns",
    )


def _chunk_file(ctx: RunContext) -> str:
    """Where a chunked extract writes its Parquet before the store moves it in (local scratch)."""
    import posixpath

    return posixpath.join(ctx.work_dir(), "data.parquet")


def _stream_postgres(ctx: RunContext, query: str, params: dict[str, Any]) -> ParquetFile | None:
    """PostgreSQL through COPY into a Parquet file one chunk at a time; None where the stage must read
    the query whole (another database, `fast_extract: off`, `partition_on`, columns COPY cannot map)."""
    from retrainer.sources import pg_copy
    from retrainer.store import ParquetFile, parquet_digest

    source = ctx.spec.source
    if not _fast_postgres(source) or source.partition_on:
        return None
    assert source.url is not None
    path = _chunk_file(ctx)
    dropped: list[int] = []
    try:
        pg_copy.copy_to_parquet(
            source.url,
            query,
            params,
            path,
            chunk_rows=source.chunk_rows,
            connect_timeout=source.connect_timeout,
            keep=_as_of_filter(ctx, dropped),
        )
    except pg_copy.UnsupportedColumns:
        ctx.logger.info("fast extract: a column type COPY cannot map; using read_sql")
        return None
    _warn_dropped(ctx, sum(dropped))
    return ParquetFile(path, parquet_digest(path))


def _stream_parquet_file(ctx: RunContext, path: str) -> ParquetFile | None:
    """A Parquet source copied chunk by chunk (rows after `as_of` dropped); None for CSV, or a file
    whose pandas index is stored as columns (the whole-frame reader drops that index)."""
    if not path.lower().endswith((".parquet", ".pq")):
        return None
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from retrainer.store import ParquetFile, parquet_digest

    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError:
        raise SourceError(
            f"source file {path} not found", hint="check source.path (relative paths are relative to the spec file)"
        ) from None
    except Exception as error:  # noqa: BLE001 - pyarrow raises many kinds
        raise SourceError(f"cannot read {path}: {first_line(error)}", hint="check the file is valid Parquet") from None
    schema = parquet.schema_arrow
    pandas_meta = schema.pandas_metadata or {}
    if any(isinstance(index, str) for index in pandas_meta.get("index_columns", [])):
        return None
    if pandas_meta:  # the stored RangeIndex would not match the rows kept
        meta = dict(schema.metadata or {})
        meta[b"pandas"] = json.dumps({**pandas_meta, "index_columns": []}).encode()
        schema = schema.with_metadata(meta)
    chunk_rows = ctx.spec.source.chunk_rows
    keep = _as_of_filter(ctx, [], naive_compare=True) if ctx.as_of is not None else None
    out = _chunk_file(ctx)
    with pq.ParquetWriter(out, schema) as writer:
        for group in range(parquet.metadata.num_row_groups):  # one at a time: iter_batches reads ahead
            for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[group]):
                batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                writer.write_batch(keep(batch) if keep else batch, row_group_size=chunk_rows)
    parquet.close()
    return ParquetFile(out, parquet_digest(out))


def _as_of_filter(
    ctx: RunContext, dropped: list[int], *, naive_compare: bool = False
) -> Callable[[pa.RecordBatch], pa.RecordBatch] | None:
    """A function keeping a chunk's rows up to `as_of` (by `time_column`); counts what it drops."""
    column = ctx.spec.time_column
    if ctx.as_of is None or not column:
        return None
    import pandas as pd
    import pyarrow as pa

    as_of_naive = pd.Timestamp(ctx.as_of.replace(tzinfo=None))

    def keep(batch: pa.RecordBatch) -> pa.RecordBatch:
        index = batch.schema.get_field_index(column)
        if index < 0 or batch.num_rows == 0:
            return batch
        times = pd.to_datetime(batch.column(index).to_pandas())
        # a file source compares as its whole-file reader does: a row without a time is not kept either
        later = ~(times <= as_of_naive) if naive_compare else _later(ctx, times)
        dropped.append(int(later.sum()))
        return batch.filter(pa.array(~later.to_numpy(dtype=bool))) if dropped[-1] else batch

    return keep


def _later(ctx: RunContext, times: pd.Series) -> pd.Series:
    """Which times are after the run's `as_of`, comparing in UTC when the column has a time zone."""
    import pandas as pd

    assert ctx.as_of is not None
    as_of = pd.Timestamp(ctx.as_of)
    if times.dt.tz is not None:
        as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    else:
        as_of = as_of.tz_localize(None)
    return times > as_of


def _warn_dropped(ctx: RunContext, count: int) -> None:
    if count and ctx.as_of is not None:
        ctx.logger.warning(
            "dropped %d rows with %s after as_of %s: filter them in the query with :as_of",
            count,
            ctx.spec.time_column,
            ctx.as_of.isoformat(),
        )


def with_retries(ctx: RunContext, read: Callable[[], T]) -> T:
    """Run `read`, again after a lost or refused connection, `source.retries` times with doubling delays.

    A failed query (a syntax error, a missing table) is not retried: it would fail the same way.
    """
    source = ctx.spec.source
    for attempt in range(source.retries + 1):
        try:
            return read()
        except SourceUnavailable as error:
            if attempt == source.retries:
                raise
            delay = source.retry_delay * 2**attempt
            ctx.logger.warning("%s; retrying in %.1fs (%d of %d)", error.message, delay, attempt + 1, source.retries)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _drop_rows_after_as_of(ctx: RunContext, frame: pd.DataFrame) -> pd.DataFrame:
    """A query that forgets `:as_of` must not leak later rows into a replayed run: drop them, loudly."""
    column = ctx.spec.time_column
    if ctx.as_of is None or not column or column not in frame.columns or frame.empty:
        return frame
    import pandas as pd

    later = _later(ctx, pd.to_datetime(frame[column]))
    if later.any():
        _warn_dropped(ctx, int(later.sum()))
        frame = frame.loc[~later].reset_index(drop=True)
    return frame


STAGE = Stage(
    name="extract",
    func=extract,
    makes=("data", "source_info"),
    spec_sections=("source", "time_column"),
    fingerprint=fingerprint,
)
