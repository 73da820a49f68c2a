"""Locks around registry decisions, so two runs racing cannot both move the champion.

Which lock guards a registered model, in order:

- a PostgreSQL advisory lock on `promotion.lock_url` (or `--lock-url`), or on the MLflow tracking
  URI itself when that is a PostgreSQL database: it works across machines, and PostgreSQL drops it
  when the holder's connection dies, so a killed run never leaves a stale lock;
- a file lock in the run store when the store is a local directory (the local default);
- none, with a warning, for a remote store with neither (set `promotion.lock_url`).

Every process that may move the alias must resolve to the same lock: a pipeline and `retrainer
promote` on the same registry need the same lock URL (or the same local store).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from retrainer.errors import RegistryError
from retrainer.urls import is_postgres as is_postgres  # tune.py imports it from here

if TYPE_CHECKING:
    from retrainer.store import RunStore

logger = logging.getLogger("retrainer")


def lock_description(store: RunStore, tracking_uri: str | None = None, lock_url: str | None = None) -> str:
    """Which lock `registry_lock` takes, in words (for logs and the audit log)."""
    url = lock_url or (tracking_uri if is_postgres(tracking_uri) else None)
    if is_postgres(url):
        return "postgresql advisory lock"
    return "file lock" if store.is_local else "none"


@contextlib.contextmanager
def registry_lock(
    store: RunStore,
    registry_name: str,
    timeout: float = 300,
    *,
    tracking_uri: str | None = None,
    lock_url: str | None = None,
) -> Iterator[None]:
    """Hold the lock for `registry_name` (see the module docstring for which one)."""
    url = lock_url or (tracking_uri if is_postgres(tracking_uri) else None)
    if url and not is_postgres(url):
        raise RegistryError(
            f"promotion.lock_url must be a PostgreSQL URL, got scheme {url.split('://', 1)[0]!r}",
            hint="e.g. postgresql+psycopg://user@host/db, or leave it out to lock in a local run store",
        )
    if url:
        with advisory_lock(url, registry_name, timeout):
            yield
        return
    if not store.is_local:
        logger.warning("no lock guards %s: the store is remote and no promotion.lock_url is set", registry_name)
        yield
        return
    from filelock import FileLock, Timeout

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", registry_name)
    path = store.local_path("locks", f"{safe}.lock")
    try:
        with FileLock(str(path), timeout=timeout):
            yield
    except Timeout:
        raise RegistryError(f"waited {timeout:.0f} s for the registry lock {path}", hint="is a run stuck?") from None


def advisory_key(registry_name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock, from the model name."""
    digest = hashlib.sha256(f"retrainer:{registry_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(
    url: str,
    registry_name: str,
    timeout: float = 300,
    *,
    what: str = "registry lock",
    hint: str = "check promotion.lock_url (or tracking.uri)",
) -> Iterator[None]:
    """A session-level PostgreSQL advisory lock, polled with pg_try_advisory_lock until `timeout`.

    `what` and `hint` word its errors for the caller (the registry's lock, or tuning's trial claims).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from retrainer.urls import safe_url

    if url.startswith(("postgresql://", "postgres://")):  # MLflow's spelling; we ship psycopg 3
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    key = advisory_key(registry_name)
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        connection = engine.connect()
    except SQLAlchemyError as error:
        raise RegistryError(
            f"cannot reach the lock database {safe_url(url)}: {type(getattr(error, 'orig', None) or error).__name__}",
            hint=hint,
        ) from None
    try:
        deadline = time.monotonic() + timeout
        while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            connection.commit()  # no transaction held open while waiting
            if time.monotonic() > deadline:
                raise RegistryError(f"waited {timeout:.0f} s for the {what} of {registry_name} at {safe_url(url)}")
            time.sleep(0.2)
        connection.commit()
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()
    finally:
        connection.close()
        engine.dispose()
