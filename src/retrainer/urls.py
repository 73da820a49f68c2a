"""URLs as retrainer shows and sorts them: one rule each, and no import of retrainer (a leaf module).

Used wherever a URL reaches a message, a log line, a tag or a lineage record (sources, the MLflow
tracking URI, locks, Redis, the prediction log), so a password is masked the same way everywhere.
Standard library only: the cached path of a run must not pay for importing SQLAlchemy.
"""

from __future__ import annotations

import re

# SQLAlchemy's URL grammar for the user info: `scheme://user:password@host...`, the user without ':'
# or '/', the password up to the first '@'. Masking what SQLAlchemy reads as the password hides what
# it would send, whatever the rest of the URL holds.
_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][\w+.-]*://[^:/]*):[^@]*@")
_SQLITE_FILE_PREFIXES = ("sqlite:///", "sqlite+pysqlite:///")


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages and lineage; any other text as it is.

    >>> safe_url("postgresql+psycopg://etl:s3cret@db:5432/prod")
    'postgresql+psycopg://etl:***@db:5432/prod'
    >>> safe_url("redis://:s3cret@cache:6379/0"), safe_url("data/telco.csv")
    ('redis://:***@cache:6379/0', 'data/telco.csv')
    """
    return _PASSWORD.sub(r"\g<head>:***@", url)


def scheme(url: str | None) -> str:
    """The URL's database or protocol name, without the driver: `postgresql+psycopg://` -> postgresql.

    >>> scheme("postgresql+psycopg://u@h/db"), scheme("SQLite:///x.db"), scheme("data.csv")
    ('postgresql', 'sqlite', '')
    """
    if not url or "://" not in url:
        return ""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def is_url(location: str) -> bool:
    """A URL (`scheme://...`) rather than a file path."""
    return bool(scheme(location))


def is_postgres(url: str | None) -> bool:
    """A PostgreSQL URL: `postgresql://`, `postgres://` (libpq's spelling), with or without a driver."""
    return scheme(url) in ("postgresql", "postgres")


def is_sqlite(url: str | None) -> bool:
    return scheme(url) == "sqlite"


def sqlite_file(url: str) -> str | None:
    """The file of a plain `sqlite:///path` URL (no driver options), else None (`:memory:`, `?mode=...`).

    >>> sqlite_file("sqlite:///data/telco.db"), sqlite_file("sqlite://"), sqlite_file("sqlite:///x.db?mode=ro")
    ('data/telco.db', None, None)
    """
    for prefix in _SQLITE_FILE_PREFIXES:
        if url.startswith(prefix) and "?" not in url and url[len(prefix) :] not in ("", ":memory:"):
            return url[len(prefix) :]
    return None
