"""Locks around registry moves, so two runs racing cannot both move the champion."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainer.store import RunStore


@contextlib.contextmanager
def registry_lock(store: RunStore, registry_name: str, timeout: float = 300) -> Iterator[None]:
    """A file lock in the run store (local stores); remote stores rely on the registry's own checks."""
    if not store.is_local:
        yield
        return
    from filelock import FileLock

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", registry_name)
    with FileLock(str(store.local_path("locks", f"{safe}.lock")), timeout=timeout):
        yield
