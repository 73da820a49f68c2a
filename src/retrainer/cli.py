"""The `retrainer` command line. Heavy libraries are imported inside commands so `--help` stays fast.

Exit codes: 0 success (promoted, kept champion, unchanged), 1 unexpected error, 2 usage error,
3 spec, 4 source, 5 data validation rejected, 6 evaluation gate rejected, 7 registry, 8 run store,
9 other stage failure, 130 interrupted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from retrainer.executor import RunResult
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.store import RunStore

app = typer.Typer(
    name="retrainer",
    help="Retrain models on fresh data; replace the production model only when the new one is proven better.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
console = Console(stderr=False, highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)
_state: dict[str, Any] = {"debug": False, "quiet": False}

SpecArg = Annotated[Path, typer.Argument(help="Pipeline spec (YAML).", show_default=False)]
EnvOpt = Annotated[str | None, typer.Option("--env", help="Overlay <spec>.<ENV>.yaml on the spec.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
StoreOpt = Annotated[str, typer.Option("--store", help="Run store (directory or fsspec URL).")]
TrackingOpt = Annotated[
    str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: the store's SQLite DB).")
]
LockOpt = Annotated[
    str | None,
    typer.Option(
        "--lock-url",
        envvar="RETRAINER_LOCK_URL",
        help="PostgreSQL URL whose advisory lock guards the move (the pipelines' promotion.lock_url).",
    ),
]


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the outcome line (for cron).")] = False,
) -> None:
    _state.update(debug=debug, quiet=quiet)


def _guarded(action: Callable[[], int | None]) -> None:
    """Run a command body; turn retrainer's errors into one clear line and a distinct exit code."""
    from retrainer.errors import RetrainerError

    try:
        code = action() or 0
    except RetrainerError as error:
        if _state["debug"]:
            errors.print_exception()
        errors.print(f"[bold red]error[/] ({type(error).__name__}): {error.message}")
        if error.hint:
            errors.print(f"[dim]hint: {error.hint}[/]")
        code = error.exit_code
    except KeyboardInterrupt:
        errors.print("[yellow]interrupted[/]: finished stages are cached; run the same command to resume")
        code = 130
    except Exception as error:  # noqa: BLE001 - a bug: one line, the traceback with --debug
        if _state["debug"]:
            errors.print_exception()
        errors.print(f"[bold red]unexpected error[/]: {type(error).__name__}: {error}")
        errors.print("[dim]hint: run again with --debug for the traceback, and please report it[/]")
        code = 1
    raise typer.Exit(code)


# ----------------------------------------------------------------------------------------- run
@app.command()
def run(
    spec_path: SpecArg,
    env: EnvOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Use data known at this date (ISO); bound to :as_of.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Ignore the cache: run every stage.")] = False,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Re-run from this stage on (cache used before it).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Tuning processes sharing one study.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the pipeline: extract, validate, train, evaluate, compare with the champion, register, promote."""

    def body() -> int:
        from retrainer.spec import load_spec

        spec = load_spec(spec_path, env=env)
        if workers is not None:
            spec = spec.model_copy(update={"models": spec.models.model_copy(update={"workers": workers})})
        result = _run_with_progress(
            spec, as_of=as_of, force=force, from_stage=from_stage, show=not (as_json or _state["quiet"])
        )
        return _report(result, as_json)

    _guarded(body)


@app.command()
def stage(
    name: Annotated[str, typer.Argument(help="Stage to run; its upstream stages come from the cache or run first.")],
    spec_path: SpecArg,
    env: EnvOpt = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Continue this run (orchestrators pass one id).")
    ] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Use data known at this date (ISO).")] = None,
    pointer: Annotated[
        Path | None, typer.Option("--pointer", help="Write the stage's key and artifact digests here (a DVC out).")
    ] = None,
    data_out: Annotated[
        Path | None, typer.Option("--data-out", help="extract only: also write the extracted rows here (Parquet).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the pipeline up to one stage: what an Airflow task or a `dvc repro` stage calls."""

    def body() -> int:
        from retrainer.spec import load_spec

        spec = load_spec(spec_path, env=env)
        options = {"until": name, "run_id": run_id, "as_of": as_of}
        result = _run_with_progress(spec, show=not (as_json or _state["quiet"]), **options)
        if pointer is not None and result.ok:
            _write_pointer(pointer, result, name)
        if data_out is not None and result.ok:
            _write_extracted_rows(data_out, result)
        return _report(result, as_json)

    _guarded(body)


def _write_pointer(path: Path, result: RunResult, name: str) -> None:
    """A small, stable JSON naming what the stage produced: it changes only when the outputs do."""
    key, manifest = _cached_manifest(result, name)
    digests = {artifact: ref["digest"] for artifact, ref in sorted(manifest.get("artifacts", {}).items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    pointed: dict[str, Any] = {"stage": name, "key": key, "artifacts": digests}
    if result.outcome != "partial":  # the last stage: say what the run decided
        pointed.update(outcome=result.outcome, version=result.model_version)
    path.write_text(json.dumps(pointed, indent=2) + "\n")


def _write_extracted_rows(path: Path, result: RunResult) -> None:
    """Copy the extract stage's Parquet out of the run store, byte for byte, for DVC to version."""
    from retrainer.store import RunStore

    _, manifest = _cached_manifest(result, "extract")
    path.parent.mkdir(parents=True, exist_ok=True)
    RunStore(result.store).fs.get_file(manifest["artifacts"]["data"]["path"], str(path))  # streamed, not held


def _cached_manifest(result: RunResult, name: str) -> tuple[str, dict[str, Any]]:
    """The cache key of stage `name` in this run, and its cache manifest (empty for uncached stages)."""
    from retrainer.store import RunStore

    key = next(s.key for s in result.stages if s.name == name)
    return key, RunStore(result.store).read_manifest(name, key) or {}


def _report(result: RunResult, as_json: bool) -> int:
    """Print the run's result (JSON for scripts, one outcome line for people); return its exit code."""
    if as_json:
        console.print_json(json.dumps(result.to_dict(), default=str))
    else:
        _print_outcome(result)
    return result.exit_code


def _run_with_progress(spec: Any, *, show: bool, **options: Any) -> RunResult:
    from retrainer.executor import run as run_pipeline

    if not show:
        return run_pipeline(spec, **options)
    from retrainer.console import RichReporter

    with RichReporter(console, title=spec.name) as reporter:
        return run_pipeline(spec, reporter=reporter, **options)


def _print_outcome(result: RunResult) -> None:
    colour = {
        "promoted": "green",
        "kept_champion": "cyan",
        "unchanged": "cyan",
        "registered": "cyan",
        "rejected": "yellow",
    }.get(result.outcome, "red")
    version = f" v{result.model_version}" if result.model_version else ""
    console.print(f"[bold {colour}]{result.outcome.replace('_', ' ')}[/]{version}: {result.reason}")
    if result.error is not None and getattr(result.error, "failures", None) and not _state["quiet"]:
        for failure in result.error.failures:  # type: ignore[attr-defined]
            console.print(f"  [yellow]-[/] {failure}")
    if not _state["quiet"]:
        console.print(f"[dim]run {result.run_id} in {result.seconds:.1f}s; store {result.store}[/]")
        _print_report_path(result)


def _print_report_path(result: RunResult) -> None:
    from retrainer.report import report_path
    from retrainer.store import RunStore

    store = RunStore(result.store)
    path = report_path(store, result.run_id)
    if store.exists(path):
        console.print(f"[dim]report {path}[/]")


# ------------------------------------------------------------------------------------ validate
@app.command()
def validate(spec_path: SpecArg, env: EnvOpt = None) -> None:
    """Check a spec without running anything: every error at once, with its key path."""

    def body() -> int:
        from retrainer.spec import load_spec

        spec = load_spec(spec_path, env=env)
        source = spec.source.path or spec.source.url
        from retrainer.urls import safe_url

        shown = source if spec.source.path else safe_url(str(source))
        console.print(
            f"[green]ok[/]: pipeline [bold]{spec.name}[/] reads {shown}; target {spec.target.column}; "
            f"{'task ' + spec.task + '; ' if spec.task else ''}"
            f"candidates {', '.join(spec.models.candidates) if spec.models.candidates else 'the task defaults'}"
        )
        return 0

    _guarded(body)


# ---------------------------------------------------------------------------------------- runs
@app.command()
def runs(
    store: StoreOpt = ".retrainer",
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Past runs, newest first: id, pipeline, status, duration, outcome."""

    def body() -> int:
        from retrainer.store import RunStore

        records = [r for _, r in zip(range(limit), RunStore(store).iter_runs(), strict=False)]
        if as_json:
            console.print_json(json.dumps(records, default=str))
            return 0
        from rich.table import Table

        table = Table("run", "pipeline", "status", "seconds", "version", "reason", title=f"runs in {store}")
        for record in records:
            seconds = record.get("seconds")
            table.add_row(
                record["run_id"],
                record.get("pipeline", ""),
                record.get("status", ""),
                f"{seconds:.1f}" if isinstance(seconds, int | float) else "",
                str(record.get("model_version") or ""),
                (record.get("reason") or "")[:90],
            )
        console.print(table)
        return 0

    _guarded(body)


# -------------------------------------------------------------------------------------- models
def _registry(store: str, tracking_uri: str | None) -> tuple[Registry, RunStore]:
    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
    from retrainer.store import RunStore

    run_store = RunStore(store)
    return Registry(tracking_uri or default_tracking_uri(run_store)), run_store


@app.command()
def models(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered versions of a model: aliases, outcome and key metrics."""

    def body() -> int:
        registry, _ = _registry(store, tracking_uri)
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
            "version", "aliases", "outcome", "candidate", *shown, "reason", title=f"{name} @ {registry.safe_uri}"
        )
        for info, metrics in zip(versions, scores, strict=True):
            table.add_row(
                str(info.version),
                ", ".join(info.aliases),
                info.tags.get("retrainer.outcome", "-"),
                info.tags.get("retrainer.candidate", ""),
                *(_fmt(metrics.get(metric)) for metric in shown),
                info.tags.get("retrainer.reason", "")[:80],
            )
        console.print(table)
        return 0

    _guarded(body)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version to make champion.")],
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
    lock_url: LockOpt = None,
) -> None:
    """Make a validated version the champion by hand (the old one becomes `previous`)."""

    def body() -> int:
        from retrainer.promotion import promote as promote_version

        registry, run_store = _registry(store, tracking_uri)
        old = promote_version(registry, run_store, name, version, lock_url=lock_url)
        console.print(
            f"[green]champion[/] of {name} is now v{version}"
            + (f" (previous: v{old})" if old and old != version else "")
        )
        return 0

    _guarded(body)


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    to: Annotated[int | None, typer.Option("--to", help="Version to restore (default: the `previous` alias).")] = None,
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
    lock_url: LockOpt = None,
) -> None:
    """Move `champion` back to `previous` (or to --to VERSION)."""

    def body() -> int:
        from retrainer.promotion import rollback as rollback_champion

        registry, run_store = _registry(store, tracking_uri)
        new, old = rollback_champion(registry, run_store, name, to, lock_url=lock_url)
        console.print(f"[green]champion[/] of {name} rolled back to v{new}" + (f" (was v{old})" if old else ""))
        return 0

    _guarded(body)


dvc_app = typer.Typer(help="Export the pipeline as a DVC pipeline (dvc.yaml + params.yaml).", no_args_is_help=True)
app.add_typer(dvc_app, name="dvc")


@dvc_app.command("export")
def dvc_export(
    spec_path: SpecArg,
    out: Annotated[Path, typer.Option("--out", help="Directory for dvc.yaml and params.yaml.")] = Path(),
    env: EnvOpt = None,
) -> None:
    """Write dvc.yaml and params.yaml whose stages call `retrainer stage NAME`, so `dvc repro` runs the pipeline."""

    def body() -> int:
        from retrainer.integrations.dvc import export_dvc

        written = export_dvc(spec_path, out, env=env)
        for path in written:
            console.print(f"wrote {path}")
        return 0

    _guarded(body)


airflow_app = typer.Typer(help="Export pipelines as Apache Airflow 3 DAGs.", no_args_is_help=True)
app.add_typer(airflow_app, name="airflow")


@airflow_app.command("export")
def airflow_export(
    spec_paths: Annotated[
        list[Path], typer.Argument(help="Pipeline specs, or project files listing them.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Airflow's dags folder.")] = Path("dags"),
    env: EnvOpt = None,
) -> None:
    """Write one DAG file per spec; tasks run the same stage functions as `retrainer run`."""

    def body() -> int:
        from retrainer.integrations.airflow import export_dags
        from retrainer.spec import expand_projects

        for path in export_dags(expand_projects(spec_paths), out, env=env):
            console.print(f"wrote {path}")
        return 0

    _guarded(body)


@app.command()
def audit(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    store: StoreOpt = ".retrainer",
    as_json: JsonOpt = False,
) -> None:
    """Every decision on a model's champion, oldest first: who, when, what moved from where to where, why."""

    def body() -> int:
        from retrainer.promotion import read_audit
        from retrainer.store import RunStore

        entries = read_audit(RunStore(store), name)
        if as_json:
            console.print_json(json.dumps(entries))
            return 0
        from rich.table import Table

        table = Table("at", "action", "version", "champion", "actor", "reason", title=f"audit log of {name}")
        for entry in entries:
            before, after = entry.get("champion_before"), entry.get("champion_after")
            table.add_row(
                entry["at"][:19],
                entry["action"],
                f"v{entry['version']}",
                f"v{before or '-'} -> v{after or '-'}",
                entry.get("actor", ""),
                (entry.get("reason") or "")[:80],
            )
        console.print(table)
        return 0

    _guarded(body)


# ------------------------------------------------------------------------------------ backfill
@app.command()
def backfill(
    spec_path: SpecArg,
    start: Annotated[str, typer.Option("--start", help="First as_of date (ISO).", show_default=False)],
    end: Annotated[str, typer.Option("--end", help="Last as_of date (ISO), included.", show_default=False)],
    every: Annotated[str, typer.Option("--every", help="Step between dates: 1mo, 2w, 7d...")] = "1mo",
    env: EnvOpt = None,
    no_plot: Annotated[bool, typer.Option("--no-plot", help="Do not draw the timeline PNG.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay retraining at each date from --start to --end against one registry; print the timeline."""

    def body() -> int:
        from retrainer.backfill import Step, backfill
        from retrainer.spec import load_spec

        spec = load_spec(spec_path, env=env)
        show = not (as_json or _state["quiet"])

        def progress(step: Step) -> None:
            if show:
                console.print(f"[bold]{step.as_of[:10]}[/] {_decision_text(step)}: [dim]{step.reason}[/]")

        timeline = backfill(spec, start, end, every, on_step=progress, plot=not no_plot)
        if as_json:
            console.print_json(json.dumps(timeline.to_dict(), default=str))
        else:
            _print_timeline(timeline)
        return 0 if timeline.ok else 1

    _guarded(body)


@app.command("export-model")
def export_model(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    to: Annotated[Path, typer.Option("--to", help="Root of the file registry.")] = Path("models"),
    version: Annotated[int | None, typer.Option("--version", help="Version (default: the champion).")] = None,
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
) -> None:
    """Export a version to a plain file registry: DIR/NAME/vN/model.pkl + metadata.json + a `latest` pointer."""

    def body() -> int:
        from retrainer.integrations.file_registry import export_version

        registry, _ = _registry(store, tracking_uri)
        console.print(f"exported to {export_version(registry, name, version, str(to))}")
        return 0

    _guarded(body)


def _decision_text(step: Any) -> str:
    colour = {"promoted": "green", "kept_champion": "cyan", "unchanged": "cyan", "rejected": "yellow"}
    return f"[{colour.get(step.outcome, 'red')}]{step.outcome.replace('_', ' ')}[/]"


def _print_timeline(timeline: Any) -> None:
    from rich.table import Table

    def score(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    def version(value: int | None) -> str:
        return "-" if value is None else f"v{value}"

    metric = next((step.metric for step in timeline.steps if step.metric), "score")
    table = Table(title=f"{timeline.pipeline}: backfill every {timeline.every}")
    for column in ("as_of", "champion", f"challenger {metric}", f"champion {metric}", "decision", "now serving"):
        table.add_column(column)
    table.add_column("test rows", justify="right")
    for step in timeline.steps:
        table.add_row(
            step.as_of[:10],
            version(step.champion_before),
            score(step.challenger_score),
            score(step.champion_score),
            _decision_text(step) + (f" {version(step.challenger_version)}" if step.outcome == "promoted" else ""),
            version(step.champion_after),
            "-" if step.test_rows is None else f"{step.test_rows:,}",
        )
    console.print(table)
    if timeline.plot:
        console.print(f"[dim]timeline plot: {timeline.plot}[/]")
    console.print(f"[dim]timeline data: {timeline.report}[/]")


# -------------------------------------------------------------------------------------- report
@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="Run id (see `retrainer runs`).", show_default=False)],
    store: StoreOpt = ".retrainer",
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of runs/<id>/report.html.")] = None,
) -> None:
    """Write a run's HTML report: decision and reason first, then data, drift, tuning, metrics, fairness."""

    def body() -> int:
        from retrainer.report import write_report
        from retrainer.store import RunStore

        written = write_report(RunStore(store), run_id, out=str(out) if out else None)
        console.print(f"wrote {written}")
        return 0

    _guarded(body)


# ------------------------------------------------------------------------------------- serving
ServeTarget = Annotated[str, typer.Argument(help="A pipeline spec (YAML), or a registered model name.")]


def _serving_target(target: str, env: str | None, store: str, tracking_uri: str | None) -> tuple[Any, Any, Any]:
    """(spec or None, registry, run store) for a spec path or a bare registry name."""
    from retrainer.spec import load_spec

    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from retrainer.integrations.mlflow_registry import Registry
        from retrainer.store import RunStore

        spec = load_spec(Path(target), env=env)
        run_store = RunStore(spec.store)
        registry = Registry(tracking_uri) if tracking_uri else Registry.for_spec(spec, run_store)
        return spec, registry, run_store
    registry, run_store = _registry(store, tracking_uri)
    return None, registry, run_store


@app.command()
def serve(
    target: ServeTarget,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8000,
    env: EnvOpt = None,
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
    entity_id: Annotated[
        str | None, typer.Option("--entity-id", help="Request field that routes rows (default: the spec's id_column).")
    ] = None,
    challenger_share: Annotated[
        float | None, typer.Option("--challenger-share", min=0, max=1, help="Share of entities sent to @challenger.")
    ] = None,
) -> None:
    """Serve models:/NAME@champion (and @challenger on a share of entities) over HTTP: POST /predict."""

    def body() -> int:
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
        console.print(f"serving {config.name} ({served.state.watcher.describe()}) on http://{host}:{port}")
        uvicorn.run(served, host=host, port=port, log_level="warning")
        return 0

    _guarded(body)


@app.command("ab-report")
def ab_report(
    target: ServeTarget,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Parquet/CSV with the entity id and the target (default: the spec's source)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report the canary decision; move no alias.")] = False,
    env: EnvOpt = None,
    store: StoreOpt = ".retrainer",
    tracking_uri: TrackingOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare champion and challenger online: logged predictions joined to labels; apply the canary rule."""

    def body() -> int:
        from retrainer.errors import SpecError
        from retrainer.integrations.mlflow_registry import CHALLENGER, CHAMPION
        from retrainer.serving.ab_report import (
            apply_verdict,
            canary_verdict,
            figures_as_dicts,
            online_comparison,
            served_task,
        )
        from retrainer.serving.app import ServingConfig
        from retrainer.serving.source import read_labels, read_source

        spec, registry, run_store = _serving_target(target, env, store, tracking_uri)
        if spec is None:
            raise SpecError("ab-report needs the pipeline spec (labels, target and canary rule come from it)")
        config = ServingConfig.from_spec(spec, run_store)
        if config.prediction_log is None:
            raise SpecError(
                f"{spec.spec_path}: the run store is not local, so there is no default prediction log to read",
                hint="set serving.prediction_log.path or .url in the spec",
            )
        log = config.prediction_log.read()
        label_frame = read_labels(str(labels)) if labels else read_source(spec)
        column, threshold = spec.target.column, config.decision_threshold
        served: dict[int, tuple[Any, float]] = {}  # version -> (task, threshold), read from its tags once

        def task_of(version: int) -> tuple[Any, float]:
            if version not in served:
                served[version] = served_task(
                    registry, config.name, version, label_frame[column], spec.target, threshold
                )
            return served[version]

        figures = online_comparison(log, label_frame, config.entity_id, column, task_of)
        champion, challenger = registry.by_alias(config.name, CHAMPION), registry.by_alias(config.name, CHALLENGER)
        by_version = {f.version: f for f in figures}
        verdict = done = None
        if spec.serving.canary is not None:
            verdict = canary_verdict(
                spec.serving.canary,
                by_version.get(champion.version) if champion else None,
                by_version.get(challenger.version) if challenger else None,
                task_of(champion.version)[0].ranking_metric(spec) if champion else "",
            )
            if not dry_run and challenger is not None:
                done = apply_verdict(registry, run_store, config.name, verdict, challenger.version)
        if as_json:
            report: dict[str, Any] = {
                "name": config.name,
                "log": config.prediction_log.where,
                "versions": figures_as_dicts(figures),
            }
            report["canary"] = verdict.__dict__ if verdict else None
            report["applied"] = done
            console.print_json(json.dumps(report, default=str))
            return 0
        from rich.table import Table

        canary = spec.serving.canary
        # the canary's metric, then the two a summary of the newest version's task shows first
        shown = [canary.metric] if canary else []
        if figures:
            shown += list(task_of(figures[0].version)[0].shown_metrics())
        shown = list(dict.fromkeys(shown))[:2]
        table = Table(
            "version",
            "aliases",
            "predictions",
            "entities",
            "labelled",
            *shown,
            title=f"{config.name}: online comparison from {config.prediction_log.where}",
        )
        for f in figures:
            table.add_row(
                str(f.version),
                ", ".join(f.aliases),
                str(f.predictions),
                str(f.entities),
                str(f.labelled),
                *(_fmt(f.metrics.get(name)) for name in shown),
            )
        console.print(table)
        if verdict is not None:
            console.print(f"canary: [bold]{verdict.decision}[/]: {verdict.reason}" + (f"; {done}" if done else ""))
        return 0

    _guarded(body)


features_app = typer.Typer(help="Online features in Redis.", no_args_is_help=True)
app.add_typer(features_app, name="features")


@features_app.command("materialize")
def features_materialize(spec_path: SpecArg, env: EnvOpt = None) -> None:
    """Write each entity's latest feature values from the spec's source into Redis (serving.redis)."""

    def body() -> int:
        from retrainer.integrations.redis_features import materialize
        from retrainer.spec import load_spec

        done = materialize(load_spec(spec_path, env=env))
        console.print(
            f"[green]materialized[/] {done.entities} entities x {len(done.columns)} features under "
            f"{done.prefix} (version {done.version}, ttl {done.ttl_seconds}s)"
        )
        return 0

    _guarded(body)


def entrypoint() -> None:
    """Console-script entry point."""
    app(prog_name="retrainer")


# ------------------------------------------------------------------ developer experience (issue 10)
@app.command()
def init(
    name: Annotated[str, typer.Argument(help="Pipeline name (letters, digits, - _ .).", show_default=False)],
    source: Annotated[
        str | None, typer.Option("--source", help="CSV/Parquet file or database URL to read columns and types from.")
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="The column to predict.")] = None,
    task: Annotated[
        str | None,
        typer.Option("--task", help="binary, multiclass or regression (default: inferred from the target's values)."),
    ] = None,
    table: Annotated[str | None, typer.Option("--table", help="Database table, when the source has several.")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Folder for pipeline.yaml and README.md (default: ./NAME).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented starter spec (from the source's columns when given) and a README for the pipeline."""

    def body() -> int:
        from retrainer.scaffold import init_pipeline

        folder = directory if directory is not None else Path(name)
        written = init_pipeline(name, folder, source=source, target=target, table=table, force=force, task=task)
        for path in written:
            console.print(f"wrote {path}")
        if not _state["quiet"]:
            console.print(f"next: [bold]retrainer doctor {written[0]}[/] then [bold]retrainer run {written[0]}[/]")
        return 0

    _guarded(body)


@app.command()
def doctor(
    spec_path: Annotated[
        Path | None, typer.Argument(help="Pipeline spec to check its source and services.", show_default=False)
    ] = None,
    env: EnvOpt = None,
    airflow: Annotated[bool, typer.Option("--airflow", help="Airflow is needed (you will export DAGs).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check what a pipeline needs (Python, packages, source, MLflow store, PostgreSQL, Redis, Airflow, disk).

    One line per need, with the fix when it is missing; exits 1 when something needed is missing.
    """

    def body() -> int:
        from retrainer.doctor import Check, as_dicts, diagnose
        from retrainer.errors import SpecError

        spec, spec_problem = None, None
        if spec_path is not None:
            from retrainer.spec import load_spec

            try:
                spec = load_spec(spec_path, env=env)
            except SpecError as error:
                spec_problem = Check("spec", "missing", error.message, error.hint or "fix the spec")
        checks = ([spec_problem] if spec_problem else []) + diagnose(spec, airflow=airflow)
        if spec is not None:
            checks.insert(0, Check("spec", "ok", f"{spec_path}: pipeline {spec.name}"))
        failed = any(check.failed for check in checks)
        if as_json:
            console.print_json(json.dumps({"ok": not failed, "checks": as_dicts(checks)}))
            return 1 if failed else 0
        style = {"ok": "green", "missing": "bold red", "warn": "yellow"}
        for check in checks:
            if _state["quiet"] and check.status == "ok":
                continue
            fix = f"  [dim]fix: {check.fix}[/]" if check.fix and check.status != "ok" else ""
            console.print(f"[{style[check.status]}]{check.status:>7}[/] {check.name:<10} {check.detail}{fix}")
        if failed or not _state["quiet"]:
            console.print("something needed is missing" if failed else "[green]ready[/]")
        return 1 if failed else 0

    _guarded(body)


@app.command("explain-spec")
def explain_spec(spec_path: SpecArg, env: EnvOpt = None) -> None:
    """Print the spec with every default filled in and each key's meaning (from the spec's own models)."""

    def body() -> int:
        from retrainer.spec import load_spec
        from retrainer.spec_reference import annotated_yaml

        # plain print: YAML, not Rich markup (brackets in values are data)
        typer.echo(annotated_yaml(load_spec(spec_path, env=env)), nl=False)
        return 0

    _guarded(body)


# keep last: `python -m retrainer.cli` must see every command defined above
if __name__ == "__main__":  # pragma: no cover
    entrypoint()
