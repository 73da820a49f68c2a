"""Serving: `serve`, `ab-report` (the online comparison and canary) and `features materialize`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from retrainer.cli.shared import (
    EnvOpt,
    JsonOpt,
    SpecArg,
    StoreOpt,
    TrackingOpt,
    console,
    fmt,
    guarded,
    open_registry,
)

ServeTarget = Annotated[str, typer.Argument(help="A pipeline spec (YAML), or a registered model name.")]


def _serving_target(target: str, env: str | None, store: str | None, tracking_uri: str | None) -> tuple[Any, Any, Any]:
    """(spec or None, registry, run store) for a spec path or a bare registry name."""
    from retrainer.spec import load_spec

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from retrainer.integrations.mlflow_registry import Registry
        from retrainer.store import RunStore

        spec = load_spec(Path(target), env=env)
        run_store = RunStore(spec.store)
        registry = Registry(tracking_uri) if tracking_uri else Registry.for_spec(spec, run_store)
        return spec, registry, run_store
    registry, run_store = open_registry(store, tracking_uri)
    return None, registry, run_store


@guarded
def serve(
    target: ServeTarget,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8000,
    env: EnvOpt = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    entity_id: Annotated[
        str | None, typer.Option("--entity-id", help="Request field that routes rows (default: the spec's id_column).")
    ] = None,
    challenger_share: Annotated[
        float | None, typer.Option("--challenger-share", min=0, max=1, help="Share of entities sent to @challenger.")
    ] = None,
) -> int:
    """Serve models:/NAME@champion (and @challenger on a share of entities) over HTTP: POST /predict."""
    import dataclasses

    import uvicorn

    from retrainer.serving.app import ServingConfig, create_app

    spec, registry, run_store = _serving_target(target, env, store, tracking_uri)
    if spec is not None:
        config = ServingConfig.from_spec(spec, run_store)
    else:
        from retrainer.serving.prediction_log import PredictionLog

        log = PredictionLog(path=str(run_store.local_path("predictions", target))) if run_store.is_local else None
        config = ServingConfig(name=target, entity_id=entity_id or "id", prediction_log=log)
    overrides: dict[str, Any] = {"entity_id": entity_id, "challenger_share": challenger_share}
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    served = create_app(config, registry)
    listening = _bind(host, port)  # before saying "serving": a port in use is one line, not a lie and a trace
    console.print(f"serving {config.name} ({served.state.watcher.describe()}) on http://{host}:{port}")
    server = uvicorn.Server(uvicorn.Config(served, log_level="warning"))
    server.run(sockets=[listening])
    return 0


def _bind(host: str, port: int) -> Any:
    """A listening socket on host:port, or `PortUnavailable` naming the address and the reason."""
    import socket

    from retrainer.errors import PortUnavailable

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as error:
        raise PortUnavailable(
            f"cannot serve on {host}:{port}: {error.strerror or error}", hint="pick another --port"
        ) from None
    return listening


@guarded
def ab_report(
    target: ServeTarget,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Parquet/CSV with the entity id and the target (default: the spec's source)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the canary decision; move no alias.")] = False,
    env: EnvOpt = None,
    store: StoreOpt = None,
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> int:
    """Compare champion and challenger online: logged predictions joined to labels; apply the canary rule."""
    from retrainer.errors import SpecError
    from retrainer.serving.ab_report import online_report

    spec, registry, run_store = _serving_target(target, env, store, tracking_uri)
    if spec is None:
        raise SpecError("ab-report needs the pipeline spec (labels, target and canary rule come from it)")
    report = online_report(spec, registry, run_store, labels=str(labels) if labels else None, apply=not dry_run)
    if as_json:
        console.print_json(json.dumps(report.to_dict(), default=str))
        return 0
    from rich.table import Table

    shown = report.shown_metrics()
    table = Table(
        "version",
        "aliases",
        "predictions",
        "entities",
        "labelled",
        *shown,
        title=f"{report.name}: online comparison from {report.log}",
    )
    for f in report.figures:
        table.add_row(
            str(f.version),
            ", ".join(f.aliases),
            str(f.predictions),
            str(f.entities),
            str(f.labelled),
            *(fmt(f.metrics.get(name)) for name in shown),
        )
    console.print(table)
    if report.verdict is not None:
        done = f"; {report.applied}" if report.applied else ""
        console.print(f"canary: [bold]{report.verdict.decision}[/]: {report.verdict.reason}{done}")
    return 0


@guarded
def features_materialize(spec_path: SpecArg, env: EnvOpt = None) -> int:
    """Write each entity's latest feature values from the spec's source into Redis (serving.redis)."""
    from retrainer.serving.online_features import materialize
    from retrainer.spec import load_spec

    done = materialize(load_spec(spec_path, env=env))
    console.print(
        f"[green]materialized[/] {done.entities} entities x {len(done.columns)} features under "
        f"{done.prefix} (version {done.version}, ttl {done.ttl_seconds}s)"
    )
    return 0
