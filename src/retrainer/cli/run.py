"""Running a pipeline: `run`, `stage` (one stage, for Airflow and DVC), `validate`, `explain-spec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from retrainer.cli.shared import (
    EnvOpt,
    JsonOpt,
    SpecArg,
    console,
    errors,
    guarded,
    state,
)

if TYPE_CHECKING:
    from retrainer.executor import RunResult


@guarded
def run(
    spec_path: SpecArg,
    env: EnvOpt = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Use data known at this date (ISO); bound to :as_of.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Run every stage afresh (a new tuning study).")] = False,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Re-run from this stage on (cache used before it).")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Tuning processes sharing one study.")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="If another run of this pipeline is running, exit 10 instead of waiting.")
    ] = False,
    as_json: JsonOpt = False,
) -> int:
    """Run the pipeline: extract, validate, train, evaluate, compare with the champion, register, promote."""
    from retrainer.spec import load_spec

    spec = load_spec(spec_path, env=env)
    if workers is not None:
        spec = spec.model_copy(update={"models": spec.models.model_copy(update={"workers": workers})})
    result = _run_with_progress(
        spec,
        as_of=as_of,
        force=force,
        from_stage=from_stage,
        wait=not no_wait,
        on_wait=_say_waiting,
        show=not (as_json or state["quiet"]),
    )
    return _report(result, as_json)


def _say_waiting(line: str) -> None:
    """'waiting for run X (pid N on host) of pipeline P to finish', on stderr: stdout may be --json."""
    from rich.markup import escape

    errors.print(f"[yellow]{escape(line)}[/]")


@guarded
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
) -> int:
    """Run the pipeline up to one stage: what an Airflow task or a `dvc repro` stage calls."""
    from retrainer.spec import load_spec

    spec = load_spec(spec_path, env=env)
    options = {"until": name, "run_id": run_id, "as_of": as_of, "on_wait": _say_waiting}
    result = _run_with_progress(spec, show=not (as_json or state["quiet"]), **options)
    if pointer is not None and result.ok:
        _write_pointer(pointer, result, name)
    if data_out is not None and result.ok:
        _write_extracted_rows(data_out, result)
    return _report(result, as_json)


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
    from rich.markup import escape

    from retrainer.outcomes import headline

    words = headline(result.outcome, result.model_version, result.champion_version)
    console.print(f"[bold {colour}]{escape(words)}[/]: {escape(result.reason)}")
    if result.error is not None and getattr(result.error, "failures", None) and not state["quiet"]:
        for failure in result.error.failures:  # type: ignore[attr-defined]
            console.print(f"  [yellow]-[/] {escape(failure)}")
    if not state["quiet"]:
        console.print(f"[dim]run {result.run_id} in {result.seconds:.1f}s; store {escape(result.store)}[/]")
        _print_report_path(result)


def _print_report_path(result: RunResult) -> None:
    from retrainer.report import report_path
    from retrainer.store import RunStore

    store = RunStore(result.store)
    path = report_path(store, result.run_id)
    if store.exists(path):
        console.print(f"[dim]report {escape(str(path))}[/]")


@guarded
def validate(spec_path: SpecArg, env: EnvOpt = None) -> int:
    """Check a spec without running anything: every error at once, with its key path."""
    from retrainer.spec import load_spec
    from retrainer.spec.anomaly import UNLABELLED

    spec = load_spec(spec_path, env=env)
    source = spec.source.path or spec.source.url
    target = "none (no known anomalies)" if spec.target.column == UNLABELLED else spec.target.column
    from retrainer.urls import safe_url

    shown = source if spec.source.path else safe_url(str(source))
    console.print(
        f"[green]ok[/]: pipeline [bold]{escape(spec.name)}[/] reads {escape(str(shown))}; "
        f"target {escape(target)}; "
        f"{'task ' + spec.task + '; ' if spec.task else ''}"
        f"candidates {', '.join(spec.models.names) if spec.models.names else 'the task defaults'}"
    )
    return 0


@guarded
def explain_spec(spec_path: SpecArg, env: EnvOpt = None) -> int:
    """Print the spec with every default filled in and each key's meaning (from the spec's own models)."""
    from retrainer.spec import load_spec
    from retrainer.spec_reference import annotated_yaml

    # plain print: YAML, not Rich markup (brackets in values are data)
    typer.echo(annotated_yaml(load_spec(spec_path, env=env)), nl=False)
    return 0
