"""The `Source` protocol, and what every database source shares: the query, its parameters, retries."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from retrainer.errors import SourceError, SourceUnavailable

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import SourceSpec

T = TypeVar("T")
_BIND_NAME = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class Source(Protocol):
    """A place training data comes from, bound to one run's `as_of` (see `retrainer.sources.for_spec`).

    Every method raises `SourceError` (with the password masked) when the source cannot be read;
    `SourceUnavailable` when the connection failed or was lost, which `source.retries` repeats.
    """

    def describe(self) -> str:
        """The path, or the URL with its password masked: safe for messages and logs."""
        ...

    def lineage(self) -> dict[str, Any]:
        """Where the rows came from, for the lineage record (`kind`, and `path` or `url` and `query`)."""
        ...

    def check(self) -> str:
        """That the source answers, in words (`retrainer doctor`); raises SourceError if not."""
        ...

    def count(self) -> int:
        """How many rows the source holds now (counted by the database, without reading them)."""
        ...

    def state(self) -> str:
        """What data the source holds for this run: equal states, equal data (cheap; computed once).

        Unlike `fingerprint` it leaves out the bound parameters, so two `as_of` dates that see the same
        rows have the same state: that is how an orchestrator knows there is nothing new to learn from.
        """
        ...

    def fingerprint(self) -> str:
        """The state and the bound parameters: the extract stage's part of its cache key."""
        ...

    def read(self) -> pd.DataFrame:
        """Every row up to `as_of`, as one DataFrame."""
        ...

    def stream(self, destination: Callable[[], str]) -> str | None:
        """Write the rows up to `as_of` to a Parquet file `source.chunk_rows` at a time and return its
        path (`destination()`, asked only when this source can stream); None: `read` it whole instead."""
        ...


def base_query(source: SourceSpec) -> str:
    """The spec's query without its final `;`, or `SELECT * FROM <table>`."""
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


def summary_sql(query: str, time_column: str | None, more: str = "") -> str:
    """The cheap aggregate a database source's state is made of: its row count and latest time."""
    latest = f", MAX({time_column}) AS latest" if time_column else ""
    return f"SELECT COUNT(*) AS n{latest}{more} FROM ({query}) AS source_rows"


def with_retries(source: SourceSpec, logger: logging.Logger, read: Callable[[], T]) -> T:
    """Run `read`, again after a lost or refused connection, `source.retries` times with doubling delays.

    A failed query (a syntax error, a missing table) is not retried: it would fail the same way.
    """
    for attempt in range(source.retries + 1):
        try:
            return read()
        except SourceUnavailable as error:
            if attempt == source.retries:
                raise
            delay = source.retry_delay * 2**attempt
            logger.warning("%s; retrying in %.1fs (%d of %d)", error.message, delay, attempt + 1, source.retries)
            time.sleep(delay)
    raise AssertionError("unreachable")
