"""The model registry: `models`, `promote`, `rollback`, `audit`, `export-model`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from retrainer.cli.shared import (
    JsonOpt,
    LockOpt,
    StoreOpt,
    TrackingOpt,
    console,
    find_store,
    fmt,
    guarded,
    open_registry,
)


@guarded
def models(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """Registered versions of a model: aliases, outcome and key metrics."""
    registry, _ = open_registry(store, tracking_uri)
    versions = registry.versions(name)
    if as_json:
        console.print_json(json.dumps([v.__dict__ for v in versions], default=str))
        return 0
    if not versions:
        console.print(f"no versions of {name!r} in {registry.safe_uri}")
        return 0
    from rich.table import Table

    from retrainer.tasks import shown_metrics

    scores = [json.loads(info.metrics_text or "{}") for info in versions]
    shown = shown_metrics(scores[0], limit=2)  # the newest version's task decides the columns
    table = Table(
        "version", "aliases", "outcome", "candidate", *shown, "size MB", "p95 ms", title=f"{name} @ {registry.safe_uri}"
    )
    table.add_column("reason", overflow="fold")
    for info, metrics in zip(versions, scores, strict=True):
        ready = json.loads(info.tags.get("retrainer.readiness_figures") or "{}")  # measured by the readiness stage
        not_ready = info.tags.get("retrainer.readiness") == "failed"
        table.add_row(
            str(info.version),
            ", ".join(info.aliases),
            info.tags.get("retrainer.outcome") or ("not ready" if not_ready else "-"),
            info.tags.get("retrainer.candidate", ""),
            *(fmt(metrics.get(metric)) for metric in shown),
            *(f"{ready[key]:.2f}" if key in ready else "" for key in ("model_mb", "p95_ms")),
            escape(info.tags.get("retrainer.reason", "")),  # whole: the column wraps
        )
    console.print(table)
    return 0


@guarded
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    lock_url: LockOpt = None,
) -> int:
    """Make a validated version the champion by hand (the old one becomes `previous`)."""
    from retrainer.promotion import promote as promote_version

    registry, run_store = open_registry(store, tracking_uri)
    old = promote_version(registry, run_store, name, version, lock_url=lock_url)
    console.print(
        f"[green]champion[/] of {name} is now v{version}" + (f" (previous: v{old})" if old and old != version else "")
    )
    return 0


@guarded
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    to: Annotated[int | None, typer.Option("--to", help="Version to restore (default: the `previous` alias).")] = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    lock_url: LockOpt = None,
) -> int:
    """Move `champion` back to `previous` (or to --to VERSION)."""
    from retrainer.promotion import rollback as rollback_champion

    registry, run_store = open_registry(store, tracking_uri)
    new, old = rollback_champion(registry, run_store, name, to, lock_url=lock_url)
    console.print(f"[green]champion[/] of {name} rolled back to v{new}" + (f" (was v{old})" if old else ""))
    return 0


@guarded
def audit(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """Every decision on a model's champion, oldest first: who, when, what moved from where to where, why."""
    from retrainer.promotion import read_audit

    entries = read_audit(find_store(store), name)
    if as_json:
        console.print_json(json.dumps(entries))
        return 0
    from rich.table import Table

    table = Table("at", "action", "version", "champion", "actor", title=f"audit log of {name}")
    table.add_column("reason", overflow="fold")
    for entry in entries:
        before, after = entry.get("champion_before"), entry.get("champion_after")
        table.add_row(
            entry["at"][:19],
            entry["action"],
            f"v{entry['version']}",
            f"v{before or '-'} -> v{after or '-'}",
            entry.get("actor", ""),
            escape(entry.get("reason") or ""),
        )
    console.print(table)
    return 0


@guarded
def export_model(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    to: Annotated[Path, typer.Option("--to", help="Root of the file registry.")] = Path("models"),
    version: Annotated[int | None, typer.Option("--version", help="Version (default: the champion).")] = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
) -> int:
    """Export a version to a plain file registry: DIR/NAME/vN/model.pkl + metadata.json + a `latest` pointer."""
    from retrainer.integrations.file_registry import export_version

    registry, _ = open_registry(store, tracking_uri)
    console.print(f"exported to {export_version(registry, name, version, str(to))}")
    return 0
