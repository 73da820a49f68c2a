"""Any database SQLAlchemy can reach: the query read whole with `pandas.read_sql`.

How a database source is fingerprinted (`source.fingerprint`):

- `summary` (default): the query text and its bound parameters, plus one aggregate query over it:
  `SELECT COUNT(*), MAX(<time_column>) FROM (<query>)`. New or deleted rows, or newer timestamps,
  change it; an in-place update that keeps the count and the latest time does not (use `content`).
- `content`: the SHA-256 of every row (the query runs in full, and extract reuses those rows).

A query that forgets `:as_of` does not leak later rows into a replayed run: they are dropped, loudly
(a row without a time is kept: the database said it belongs).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from retrainer.errors import SourceError, SourceUnavailable, source_query_failed, source_unreachable
from retrainer.sources import as_of as cut
from retrainer.sources.base import base_query, bind_params, summary_sql, with_retries
from retrainer.urls import safe_url

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

    from retrainer.spec import SourceSpec


class SqlSource:
    """A query (or table) behind a SQLAlchemy URL."""

    def __init__(
        self, spec: SourceSpec, *, time_column: str | None, as_of: datetime | None, logger: logging.Logger
    ) -> None:
        assert spec.url is not None
        self.spec, self.url, self.time_column, self.as_of, self.logger = spec, spec.url, time_column, as_of, logger
        self.query = base_query(spec)
        self._state: str | None = None
        self._rows: pd.DataFrame | None = None  # read for a content state; extract reads them once more

    def params(self) -> dict[str, Any]:
        return bind_params(self.query, self.spec, self.as_of)

    def describe(self) -> str:
        return safe_url(self.url)

    def lineage(self) -> dict[str, Any]:
        return {"kind": "sql", "url": safe_url(self.url), "query": self.query}

    def check(self) -> str:
        return f"{self.describe()}: {self.count():,} rows"

    def count(self) -> int:
        return int(self.scalar_row(f"SELECT COUNT(*) FROM ({self.query}) AS source_rows", self.params())[0])

    def state(self) -> str:
        if self._state is None:
            if self.spec.fingerprint == "content":
                from retrainer.store import frame_digest

                self._rows = self.read_query()
                self._state = f"content:{frame_digest(self._rows)}"
            else:
                summary = [str(value) for value in self.summary()]
                self._state = "summary:" + hashlib.sha256("\x1f".join([self.query, *summary]).encode()).hexdigest()[:16]
        return self._state

    def fingerprint(self) -> str:
        shown = {k: (str(v) if k != "as_of" or self.as_of else "now") for k, v in sorted(self.params().items())}
        return f"{self.state()}:{shown!r}"

    def read(self) -> pd.DataFrame:
        frame, self._rows = self._rows, None
        if frame is None:
            frame = with_retries(self.spec, self.logger, self.read_query)
        frame, dropped = cut.drop_after(frame, self.time_column, self.as_of, untimed_after=False)
        self.warn_dropped(dropped)
        return frame

    def stream(self, destination: Callable[[], str]) -> str | None:
        return None

    # ------------------------------------------------------------------ what a kind of database may change

    def summary(self) -> tuple[Any, ...]:
        """The aggregate row the summary state is made of."""
        return self.scalar_row(summary_sql(self.query, self.time_column), self.params())

    def read_query(self) -> pd.DataFrame:
        """Every row the query returns (no `as_of` cut, no retries)."""
        import pandas as pd
        from sqlalchemy import text

        with self.connection() as connection:
            try:
                return pd.read_sql_query(text(self.query), connection, params=self.params())
            except pd.errors.DatabaseError as error:
                # pandas wraps the driver's error in its own: unwrap it, so `connection` names it a SourceError
                if isinstance(error.__cause__, Exception):
                    raise error.__cause__ from None
                raise

    def scalar_row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
        """One row of a small aggregate query, without pandas (the cached path stays light)."""
        from sqlalchemy import text

        with self.connection() as connection:
            return tuple(connection.execute(text(sql), params).one())

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": self.spec.connect_timeout}

    # ------------------------------------------------------------------------------------ helpers

    def engine(self) -> Engine:
        from sqlalchemy import create_engine
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            return create_engine(self.url, connect_args=self.connect_args(), pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise SourceError(
                f"invalid database URL {safe_url(self.url)}: {exc}",
                hint="use e.g. postgresql+psycopg://user@host:5432/db or sqlite:///file.db",
            ) from None

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection whose errors become SourceError with the password masked."""
        from sqlalchemy import exc

        engine = self.engine()
        try:
            with engine.connect() as connection:
                yield connection
        except exc.OperationalError as error:
            # worth another try only when the connection failed or was lost: SQLite reports a syntax
            # error or a missing table as an OperationalError too, and those would fail the same way again
            lost = error.connection_invalidated or error.statement is None or "connect" in str(error.orig).lower()
            kind = SourceUnavailable if lost else SourceError
            raise source_unreachable(self.url, error.orig or error, kind) from None
        except exc.DBAPIError as error:
            raise source_query_failed(self.url, error.orig or error) from None
        finally:
            engine.dispose()

    def warn_dropped(self, count: int) -> None:
        if count and self.as_of is not None:
            self.logger.warning(
                "dropped %d rows with %s after as_of %s: filter them in the query with :as_of",
                count,
                self.time_column,
                self.as_of.isoformat(),
            )
