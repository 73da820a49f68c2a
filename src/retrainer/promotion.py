"""Moving the `champion` alias safely: by a pipeline run, by hand (`promote`) or back (`rollback`).

Every move holds the registry lock, refuses versions that were never fully validated, keeps the
replaced champion under `previous`, and tags the versions with who moved what, when and why.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from retrainer.errors import RegistryError
from retrainer.integrations.locks import registry_lock
from retrainer.integrations.mlflow_registry import CHAMPION, PREVIOUS, VALIDATED_TAG

if TYPE_CHECKING:
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.store import RunStore


def move_champion(registry: Registry, name: str, version: int, reason: str, *, actor: str | None = None) -> int | None:
    """Point `champion` at `version` (the caller holds the lock); return the replaced champion."""
    target = registry.version(name, version)
    if target.tags.get(VALIDATED_TAG) != "true":
        raise RegistryError(f"{name} v{version} was never fully validated by retrainer; refusing to make it champion")
    current = registry.by_alias(name, CHAMPION)
    if current is not None and current.version == version:
        return current.version
    if current is not None:
        registry.set_alias(name, PREVIOUS, current.version)
    registry.set_alias(name, CHAMPION, version)
    registry.tag_version(
        name,
        version,
        {
            "retrainer.outcome": "promoted",
            "retrainer.reason": reason[:5000],
            "retrainer.decided_at": datetime.now(UTC).isoformat(),
            "retrainer.decided_by": actor or _user(),
        },
    )
    return current.version if current else None


def promote(
    registry: Registry, store: RunStore, name: str, version: int, reason: str = "promoted by hand"
) -> int | None:
    with registry_lock(store, name):
        return move_champion(registry, name, version, reason)


def rollback(registry: Registry, store: RunStore, name: str, to: int | None = None) -> tuple[int, int | None]:
    """Move `champion` back to `previous` (or to version `to`); return (new champion, old champion)."""
    with registry_lock(store, name):
        if to is None:
            previous = registry.by_alias(name, PREVIOUS)
            if previous is None:
                raise RegistryError(
                    f"{name} has no 'previous' version to roll back to",
                    hint=f"name one: retrainer rollback {name} --to VERSION",
                )
            to = previous.version
        old = move_champion(registry, name, to, f"rolled back by {_user()}")
        return to, old


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
