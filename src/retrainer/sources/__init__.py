"""Where the training data comes from: one `Source` protocol, one module per kind of source.

    base.py      the protocol, the query and its bound parameters, retries
    as_of.py     which rows are after the run's `as_of` (the one rule every kind applies)
    files.py     CSV and Parquet files (Parquet streamed in chunks)
    sql.py       any SQLAlchemy URL, read whole with `pandas.read_sql`
    sqlite.py    SQLite: the cheap aggregate queries through the standard library
    postgres.py  PostgreSQL: COPY or ADBC (`pg_copy.py`), chunked and partitioned reads

`for_spec(spec.source)` picks the kind from the file name or the URL's scheme, as Optuna picks a
storage by URL; the extract stage, `retrainer doctor`, `retrainer init` and the Airflow prerequisites
ask the source and never branch on a path or a URL themselves. A new kind is one module with a
class that satisfies `Source`, its line in `for_spec`, and its parameter in
`tests/test_sources_contract.py`.

>>> from retrainer.spec import SourceSpec
>>> for_spec(SourceSpec(url="postgresql+psycopg://etl:s3cret@db/prod", table="customers")).describe()
'postgresql+psycopg://etl:***@db/prod'
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from retrainer.sources.base import Source
from retrainer.urls import is_postgres, is_sqlite

if TYPE_CHECKING:
    from retrainer.spec import SourceSpec

__all__ = ["Source", "for_spec"]


def for_spec(
    spec: SourceSpec,
    *,
    time_column: str | None = None,
    as_of: datetime | None = None,
    logger: logging.Logger | None = None,
) -> Source:
    """The source a spec's `source:` section names, reading the rows up to `as_of` (by `time_column`).

    A `.parquet`/`.pq` path is a Parquet file, any other path CSV; a `sqlite` URL is SQLite, a
    `postgresql` or `postgres` URL PostgreSQL, any other URL goes to SQLAlchemy as it is.
    """
    kind: type[Source]
    if spec.path:
        from retrainer.sources.files import CsvSource, ParquetSource

        kind = ParquetSource if spec.path.lower().endswith((".parquet", ".pq")) else CsvSource
    elif is_postgres(spec.url):
        from retrainer.sources.postgres import PostgresSource

        kind = PostgresSource
    elif is_sqlite(spec.url):
        from retrainer.sources.sqlite import SqliteSource

        kind = SqliteSource
    else:
        from retrainer.sources.sql import SqlSource

        kind = SqlSource
    return kind(spec, time_column=time_column, as_of=as_of, logger=logger or logging.getLogger("retrainer"))
