"""SQLite: read through SQLAlchemy like any database, its aggregate queries through the standard library.

Importing SQLAlchemy takes about 0.3 s, most of an unchanged re-run, whose only database work is the
fingerprint's one aggregate query: `sqlite3` runs it the way SQLAlchemy's pysqlite dialect would
(`text()` hands the parameters over as they are). A plain file URL only (`sqlite:///path`, no
driver options); anything else goes through SQLAlchemy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrainer.errors import SourceError, source_query_failed, source_unreachable
from retrainer.sources.sql import SqlSource
from retrainer.urls import sqlite_file


class SqliteSource(SqlSource):
    """A query (or table) in a SQLite database."""

    def check(self) -> str:
        db_file = sqlite_file(self.url)
        if db_file is not None and not Path(db_file).is_file():
            # connecting through SQLAlchemy would create an empty database: say what is wrong instead
            raise SourceError(f"{db_file} does not exist", hint="create it, or fix source.url")
        return super().check()

    def connect_args(self) -> dict[str, Any]:
        return {"timeout": self.spec.connect_timeout}

    def scalar_row(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
        import sqlite3

        path = sqlite_file(self.url)
        if path is None:
            return super().scalar_row(sql, params)
        if not Path(path).is_file():  # mode=ro refuses to create it; say what is wrong in words
            raise SourceError(
                f"SQLite database file {path} not found", hint="check source.url (sqlite:///path/to/file.db)"
            )
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=self.spec.connect_timeout)
        except sqlite3.Error as error:
            raise source_unreachable(self.url, error) from None
        try:
            row = connection.execute(sql, params).fetchone()
        except sqlite3.OperationalError as error:  # as through SQLAlchemy: a syntax error or missing table
            raise source_unreachable(self.url, error, SourceError) from None
        except sqlite3.Error as error:
            raise source_query_failed(self.url, error) from None
        finally:
            connection.close()
        return tuple(row)
