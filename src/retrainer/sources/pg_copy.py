"""Fast PostgreSQL extract: `COPY (query) TO STDOUT` streamed into Arrow, instead of row-by-row fetching.

`pandas.read_sql` turns every value into a Python object and then infers each column's dtype; on the
flights join that is most of the extract's time. Here the server writes CSV, pyarrow parses it in
blocks of whole rows (a few MiB each) with column types taken from the query's result description
(PostgreSQL type OIDs), and the frame is built column by column with the same dtypes
`read_sql` would infer (ints with NULLs become float64, booleans with NULLs object, an all-NULL or
empty column object, timestamptz UTC, numeric float64), so the two paths return equal frames.

Bind parameters (`:as_of`, `source.params`) are never formatted into the SQL by hand: SQLAlchemy
compiles the query for psycopg and psycopg's client-side binding (`ClientCursor.mogrify`) quotes the
values, since COPY cannot take server-side parameters.

Columns of other types (json, bytea, interval, uuid, arrays...) make `supported_types` false and the
caller falls back to `read_sql`.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrainer.errors import SourceError, source_query_failed, source_unreachable

if TYPE_CHECKING:
    import pandas as pd
    import psycopg
    import pyarrow as pa

# PostgreSQL type OID -> the kind of column it becomes
_KINDS: dict[int, str] = {
    20: "int",  # int8
    21: "int",  # int2
    23: "int",  # int4
    700: "float",  # float4
    701: "float",  # float8
    1700: "float",  # numeric: read_sql's coerce_float makes Decimal a float
    16: "bool",
    25: "text",  # text
    1042: "text",  # bpchar
    1043: "text",  # varchar
    19: "text",  # name
    1114: "timestamp",
    1184: "timestamptz",
    1082: "date",
}
DEFAULT_BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class Column:
    name: str
    kind: str


def conninfo(url: str) -> str:
    """The libpq connection string for a SQLAlchemy URL (its query options, e.g. sslmode, kept)."""
    from psycopg.conninfo import make_conninfo
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    options = {key: value if isinstance(value, str) else value[-1] for key, value in parsed.query.items()}
    parts = {"host": parsed.host, "port": parsed.port, "dbname": parsed.database, "user": parsed.username}
    parts["password"] = parsed.password
    return make_conninfo("", **{k: v for k, v in parts.items() if v is not None}, **options)


def literal_sql(connection: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> str:
    """The query with its `:name` parameters bound client-side by psycopg (quoted, never formatted)."""
    from psycopg import ClientCursor
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

    dialect = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]
    compiled = str(text(query).compile(dialect=dialect))  # :name -> %(name)s, % -> %%
    with ClientCursor(connection) as cursor:
        return cursor.mogrify(compiled, params)


def describe(connection: psycopg.Connection[Any], sql: str) -> list[Column]:
    """The result's columns and their kinds, from a zero-row run of the query."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS described LIMIT 0")
        assert cursor.description is not None
        return [Column(d.name, _KINDS.get(d.type_code, f"oid:{d.type_code}")) for d in cursor.description]


def supported_types(columns: list[Column]) -> bool:
    return all(not column.kind.startswith("oid:") for column in columns)


@contextlib.contextmanager
def connect(url: str, connect_timeout: int = 10) -> Iterator[psycopg.Connection[Any]]:
    """A psycopg connection writing ISO dates (what the CSV parser reads); errors become SourceError."""
    import psycopg

    try:
        with psycopg.connect(conninfo(url), connect_timeout=connect_timeout, autocommit=True) as connection:
            # ISO output for the CSV parser; the field order for reading date literals and the
            # session time zone stay the server's, as read_sql sees them
            connection.execute("SET DateStyle = 'ISO'")
            yield connection
    except psycopg.OperationalError as error:
        raise source_unreachable(url, error) from None
    except psycopg.Error as error:
        raise source_query_failed(url, error) from None


def _arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "int": pa.int64(),
        "float": pa.float64(),
        "bool": pa.bool_(),
        "text": pa.string(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
    }[kind]


def copy_batches(
    connection: psycopg.Connection[Any], sql: str, columns: list[Column], block_bytes: int = DEFAULT_BLOCK_BYTES
) -> Iterator[pa.RecordBatch]:
    """Stream the query's rows as Arrow record batches of about `block_bytes` of CSV each.

    COPY sends one message per row, so a block of whole messages is a complete CSV document: each is
    parsed on its own (pyarrow, multithreaded) while no thread of ours touches the connection.
    """
    import pyarrow.csv as csv

    names = [f"c{i}" for i in range(len(columns))]  # positional: result columns may repeat a name
    read_options = csv.ReadOptions(column_names=names)
    convert_options = csv.ConvertOptions(
        column_types={name: _arrow_type(column.kind) for name, column in zip(names, columns, strict=True)},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,  # COPY writes NULL unquoted and the empty string as ""
        true_values=["t"],
        false_values=["f"],
    )

    def parse(block: list[Any]) -> Iterator[pa.RecordBatch]:
        table = csv.read_csv(io.BytesIO(b"".join(block)), read_options=read_options, convert_options=convert_options)
        yield from table.to_batches()

    with connection.cursor() as cursor, cursor.copy(f"COPY ({sql}) TO STDOUT (FORMAT CSV)") as copy:
        block: list[Any] = []
        size = 0
        while data := copy.read():  # b"" once at the end; never read after that
            block.append(data)
            size += len(data)
            if size >= block_bytes:
                yield from parse(block)
                block, size = [], 0
        if block:
            yield from parse(block)


def to_pandas_like_read_sql(table: pa.Table, columns: list[Column]) -> pd.DataFrame:
    """The frame `pandas.read_sql` would build from the same rows: its per-column dtype inference."""
    import numpy as np
    import pandas as pd

    data: dict[str, Any] = {}
    for i, column in enumerate(columns):
        values = table.column(i)
        if len(values) == 0 or values.null_count == len(values):
            series = pd.Series([None] * len(values), dtype=object)
        elif column.kind == "int":
            series = pd.Series(values.to_numpy().astype(np.float64 if values.null_count else np.int64))
        elif column.kind == "bool" and values.null_count:
            series = pd.Series(values.to_pylist(), dtype=object)
        elif column.kind == "text":
            series = pd.Series(values.to_pandas(), dtype="str")
        else:  # float, bool, timestamps, dates: Arrow's pandas conversion matches read_sql
            series = values.to_pandas()
        data[f"c{i}"] = series.reset_index(drop=True)
    frame = pd.DataFrame(data, index=pd.RangeIndex(table.num_rows))
    frame.columns = [column.name for column in columns]
    return frame


def read_table(
    url: str,
    sql: str,
    columns: list[Column],
    connect_timeout: int,
    connection: psycopg.Connection[Any] | None = None,
    serial: bool = False,
) -> pa.Table:
    """The rows as one Arrow table in `copy_batches`' schema (see `_batches`)."""
    import pyarrow as pa

    schema = pa.schema([(f"c{i}", _arrow_type(column.kind)) for i, column in enumerate(columns)])
    batches = _batches(url, sql, columns, connect_timeout, connection, serial=serial)
    return pa.Table.from_batches(list(batches), schema=schema)


def _batches(
    url: str,
    sql: str,
    columns: list[Column],
    connect_timeout: int,
    connection: psycopg.Connection[Any] | None = None,
    block_bytes: int | None = None,
    serial: bool = False,
) -> Iterator[pa.RecordBatch]:
    """The rows in `copy_batches`' schema: through ADBC where it is installed (binary COPY decoded in C,
    on its own connection; about 1.5x faster than the CSV path, whose per-message `copy.read()` loop
    and text parsing cost more than the server's COPY), else COPY CSV on `connection` (or a new one).
    `block_bytes`: about how much each batch holds (default: ADBC's 16 MiB, the CSV path's 8 MiB).
    `serial`: on a new connection, the server plans the query without parallel workers (`SERIAL_PLAN`)."""
    settings = (SERIAL_PLAN,) if serial else ()
    if adbc_installed():
        yield from adbc_batches(url, sql, columns, connect_timeout, block_bytes, settings)
    elif connection is not None:
        yield from copy_batches(connection, sql, columns, block_bytes or DEFAULT_BLOCK_BYTES)
    else:
        with connect(url, connect_timeout) as own:
            for setting in settings:
                own.execute(setting)
            yield from copy_batches(own, sql, columns, block_bytes or DEFAULT_BLOCK_BYTES)


# The partitions are the read's parallelism: each range planned with parallel workers as well would
# put (1 + 2 workers) x partitions backends on the cores. Measured on the flights join, 2 cores:
# two serial ranges 0.71 to 0.87 s, two parallel ones 0.82 to 0.98 s, the whole query 0.88 to 1.22 s.
SERIAL_PLAN = "SET max_parallel_workers_per_gather = 0"


def adbc_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("adbc_driver_postgresql") is not None


def adbc_batches(
    url: str,
    sql: str,
    columns: list[Column],
    connect_timeout: int,
    batch_bytes: int | None = None,
    settings: Sequence[str] = (),
) -> Iterator[pa.RecordBatch]:
    """Stream the rows through ADBC as record batches of about `batch_bytes` (the driver's default:
    16 MiB), each cast to `copy_batches`' schema, after running `settings` (SET statements) on the
    connection. Needs `adbc_installed()`."""
    import adbc_driver_manager
    import adbc_driver_postgresql
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa
    from psycopg.conninfo import make_conninfo

    names = [f"c{i}" for i in range(len(columns))]
    try:
        with (
            adbc.connect(make_conninfo(conninfo(url), connect_timeout=connect_timeout)) as connection,
            connection.cursor() as cursor,
        ):
            if batch_bytes:
                option = adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value
                cursor.adbc_statement.set_options(**{option: str(batch_bytes)})
            for setting in settings:
                cursor.execute(setting)
            cursor.execute(sql)
            for batch in cursor.fetch_record_batch():
                arrays = [_cast_adbc(batch.column(i), column) for i, column in enumerate(columns)]
                yield pa.RecordBatch.from_arrays(arrays, names=names)
    except adbc_driver_manager.OperationalError as error:
        raise source_unreachable(url, error) from None
    except adbc_driver_manager.Error as error:
        raise source_query_failed(url, error) from None
    except OSError as error:  # raised by the Arrow stream once rows flow: libpq's status in the text
        statement_error = "ERROR:" in str(error) and "FATAL:" not in str(error)
        raise (source_query_failed(url, error) if statement_error else source_unreachable(url, error)) from None


def _cast_adbc(values: pa.Array, column: Column) -> pa.Array:
    import pyarrow as pa

    if isinstance(values.type, pa.ExtensionType):  # numeric arrives as its text (an opaque extension type)
        values = values.storage
    if values.type == pa.float32():
        # read_sql gets float4 as the server's shortest text ("1.1"), not the float32 widened
        # (1.100000023841858): going through Arrow's shortest repr gives the same float64
        values = values.cast(pa.string())
    return values.cast(_arrow_type(column.kind))


class UnsupportedColumns(SourceError):
    """The query has columns COPY cannot map (or repeated names): the caller reads it another way."""


def copy_to_parquet(
    url: str,
    query: str,
    params: dict[str, Any],
    path: str,
    *,
    chunk_rows: int = 100_000,
    connect_timeout: int = 10,
    keep: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
) -> int:
    """Write the query's rows to a Parquet file chunk by chunk; return the row count.

    Memory holds one chunk at a time, so a table larger than memory can be extracted. Each chunk
    is one row group. `keep` may drop rows from each chunk before it is written. Read back with
    pandas, the file gives the frame `read_frame` (and so `read_sql`) gives: an integer column
    with NULLs is float64, a boolean one object; a column that is all NULL (every column of an
    empty result) is stored with Arrow's null type, which pandas reads as object None as read_sql does.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    with connect(url, connect_timeout) as connection:
        sql = literal_sql(connection, query, params)
        columns = describe(connection, sql)
        names = [column.name for column in columns]
        if not supported_types(columns) or len(set(names)) < len(names):
            unsupported = [f"{c.name} ({c.kind})" for c in columns if c.kind.startswith("oid:")]
            raise UnsupportedColumns(
                f"chunked extract cannot read columns {', '.join(unsupported) or 'with repeated names'}",
                hint="cast them to text in the query, or rename repeated columns",
            )
        schema = pa.schema([(column.name, _arrow_type(column.kind)) for column in columns])
        nulls = [0] * len(columns)
        # block size from the row budget: about 100 bytes a row, at least 1 MiB
        block_bytes = max(1 << 20, chunk_rows * 100)
        with pq.ParquetWriter(path, schema) as writer:
            for batch in _batches(url, sql, columns, connect_timeout, connection, block_bytes):
                renamed = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                if keep is not None:
                    renamed = keep(renamed)
                for start in range(0, renamed.num_rows, chunk_rows):
                    writer.write_batch(renamed.slice(start, chunk_rows), row_group_size=chunk_rows)
                rows += renamed.num_rows
                nulls = [count + array.null_count for count, array in zip(nulls, renamed.columns, strict=True)]
    all_null = {name for name, count in zip(names, nulls, strict=True) if count == rows}
    if all_null:
        _store_as_null_type(path, all_null, chunk_rows)
    return rows


def _store_as_null_type(path: str, columns: set[str], chunk_rows: int) -> None:
    """Rewrite the file, chunk by chunk, with `columns` (all NULL) as Arrow's null type."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    schema = pa.schema([pa.field(f.name, pa.null()) if f.name in columns else f for f in source.schema_arrow])
    rewritten = f"{path}.nulls"
    with pq.ParquetWriter(rewritten, schema) as writer:
        for batch in source.iter_batches(batch_size=chunk_rows):
            arrays = [pa.nulls(batch.num_rows) if f.name in columns else batch.column(f.name) for f in schema]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema), row_group_size=chunk_rows)
        if source.metadata.num_rows == 0:
            writer.write_table(schema.empty_table())
    source.close()
    Path(rewritten).replace(path)
