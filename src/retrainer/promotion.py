"""Moving the `champion` alias safely: by a pipeline run, by hand (`promote`) or back (`rollback`).

Every decision holds the registry lock (see `integrations/locks.py`), refuses versions that were
never fully validated, keeps the replaced champion under `previous`, tags the versions with who
decided what, when and why, and appends one line to the audit log `<store>/audit/<model>.jsonl`:

    {"at": "...", "model": "churn", "action": "promoted", "version": 4, "champion_before": 3,
     "champion_after": 4, "actor": "retrainer run 20261125-...", "reason": "...", "lock": "file lock"}
"""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrainer.errors import RegistryError
from retrainer.integrations.locks import lock_description, registry_lock
from retrainer.integrations.mlflow_registry import CHALLENGER, CHAMPION, PREVIOUS, VALIDATED_TAG

READINESS_TAG = "retrainer.readiness"  # `passed` or `failed`, written by the readiness stage

if TYPE_CHECKING:
    from retrainer.model_registry import ModelRegistry
    from retrainer.store import RunStore


def move_champion(
    registry: ModelRegistry, name: str, version: int, reason: str, *, actor: str | None = None
) -> int | None:
    """Point `champion` at `version` (the caller holds the lock); return the replaced champion."""
    target = registry.version(name, version)
    if target.tags.get(VALIDATED_TAG) != "true":
        raise RegistryError(f"{name} v{version} was never fully validated by retrainer; refusing to make it champion")
    if target.tags.get(READINESS_TAG) == "failed":  # it did not load, answer or install as it must to serve
        raise RegistryError(
            f"{name} v{version} failed its readiness check; refusing to make it champion: "
            + target.tags.get("retrainer.reason", ""),
            hint="fix what the reason names and run the pipeline again: it checks the version again",
        )
    current = registry.by_alias(name, CHAMPION)
    if current is not None and current.version == version:
        if current.tags.get("retrainer.outcome") == "promoted":
            return current.version
        # a move killed after the alias, before its tags: finish it (`previous` was set before the alias)
        current = registry.by_alias(name, PREVIOUS)
        if current is not None and current.version == version:
            current = None
    now, who = datetime.now(UTC).isoformat(), actor or user()
    if current is not None:
        registry.set_alias(name, PREVIOUS, current.version)
        registry.tag_version(
            name,
            current.version,
            {
                "retrainer.replaced_by": str(version),
                "retrainer.replaced_at": now,
                "retrainer.replaced_reason": reason[:5000],
            },
        )
    registry.set_alias(name, CHAMPION, version)
    challenger = registry.by_alias(name, CHALLENGER)
    if challenger is not None and challenger.version == version:  # it serves now: no longer a challenger
        registry.delete_alias(name, CHALLENGER)
    registry.tag_version(
        name,
        version,
        {
            "retrainer.outcome": "promoted",
            "retrainer.reason": reason[:5000],
            "retrainer.decided_at": now,
            "retrainer.decided_by": who,
            "retrainer.champion_before": str(current.version) if current else "none",
        },
    )
    return current.version if current else None


def promote(
    registry: ModelRegistry,
    store: RunStore,
    name: str,
    version: int,
    reason: str = "promoted by hand",
    *,
    lock_url: str | None = None,
) -> int | None:
    with registry_lock(store, name, tracking_uri=registry.tracking_uri, lock_url=lock_url):
        old = move_champion(registry, name, version, reason)
        record_decision(store, registry, name, "promoted_by_hand", version, old, version, reason, lock_url=lock_url)
        return old


def rollback(
    registry: ModelRegistry, store: RunStore, name: str, to: int | None = None, *, lock_url: str | None = None
) -> tuple[int, int | None]:
    """Move `champion` back to `previous` (or to version `to`); return (new champion, old champion)."""
    with registry_lock(store, name, tracking_uri=registry.tracking_uri, lock_url=lock_url):
        if to is None:
            previous = registry.by_alias(name, PREVIOUS)
            if previous is None:
                raise RegistryError(
                    f"{name} has no 'previous' version to roll back to",
                    hint=f"name one: retrainer rollback {name} --to VERSION",
                )
            to = previous.version
        reason = f"rolled back by {user()}"
        old = move_champion(registry, name, to, reason)
        record_decision(store, registry, name, "rolled_back", to, old, to, reason, lock_url=lock_url)
        return to, old


def record_decision(
    store: RunStore,
    registry: ModelRegistry,
    name: str,
    action: str,
    version: int | None,
    champion_before: int | None,
    champion_after: int | None,
    reason: str,
    *,
    actor: str | None = None,
    run_id: str | None = None,
    lock_url: str | None = None,
) -> dict[str, Any]:
    """Append one decision to the audit log (the caller holds the lock, so lines never interleave)."""
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "model": name,
        "action": action,
        "version": version,
        "champion_before": champion_before,
        "champion_after": champion_after,
        "actor": actor or user(),
        "run_id": run_id,
        "reason": reason,
        "registry": registry.safe_uri,
        "lock": lock_description(store, registry.tracking_uri, lock_url),
    }
    store.append_line(audit_path(store, name), json.dumps(entry, sort_keys=True))
    return entry


def audit_path(store: RunStore, name: str) -> str:
    return store.path("audit", re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".jsonl")


def read_audit(store: RunStore, name: str) -> list[dict[str, Any]]:
    """Every recorded decision on `name`, oldest first."""
    path = audit_path(store, name)
    if not store.exists(path):
        return []
    return [json.loads(line) for line in store.read_bytes(path).decode().splitlines() if line.strip()]


def champion_in_audit(store: RunStore, name: str, *, before_run: str | None = None) -> int | None:
    """The champion after the last recorded decision: what an unchanged re-run reports as the champion
    without importing MLflow (every move, by a run, `promote` or `rollback`, appends under the lock).
    `before_run` leaves out that run's own decisions: the champion it started with (a retried task
    of the run that promoted must see what its first attempt saw)."""
    entries = [e for e in read_audit(store, name) if before_run is None or e.get("run_id") != before_run]
    return entries[-1].get("champion_after") if entries else None


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
