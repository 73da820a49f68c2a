"""Project tooling: `init`, `doctor`, and the `airflow export` and `dvc export` exporters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from retrainer.cli.shared import (
    EnvOpt,
    JsonOpt,
    SpecArg,
    console,
    guarded,
    state,
)


@guarded
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
) -> int:
    """Write a commented starter spec (from the source's columns when given) and a README for the pipeline."""
    from retrainer.scaffold import init_pipeline

    folder = directory if directory is not None else Path(name)
    written = init_pipeline(name, folder, source=source, target=target, table=table, force=force, task=task)
    for path in written:
        console.print(f"wrote {path}")
    if not state["quiet"]:
        console.print(f"next: [bold]retrainer doctor {written[0]}[/] then [bold]retrainer run {written[0]}[/]")
    return 0


@guarded
def doctor(
    spec_path: Annotated[
        Path | None, typer.Argument(help="Pipeline spec to check its source and services.", show_default=False)
    ] = None,
    env: EnvOpt = None,
    airflow: Annotated[bool, typer.Option("--airflow", help="Airflow is needed (you will export DAGs).")] = False,
    as_json: JsonOpt = False,
) -> int:
    """Check what a pipeline needs (Python, packages, source, MLflow store, PostgreSQL, Redis, Airflow, disk).

    One line per need, with the fix when it is missing; exits 1 when something needed is missing.
    """
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
        if state["quiet"] and check.status == "ok":
            continue
        fix = f"  [dim]fix: {check.fix}[/]" if check.fix and check.status != "ok" else ""
        console.print(f"[{style[check.status]}]{check.status:>7}[/] {check.name:<10} {check.detail}{fix}")
    if failed or not state["quiet"]:
        console.print("something needed is missing" if failed else "[green]ready[/]")
    return 1 if failed else 0


@guarded
def dvc_export(
    spec_path: SpecArg,
    out: Annotated[Path, typer.Option("--out", help="Directory for dvc.yaml and params.yaml.")] = Path(),
    env: EnvOpt = None,
) -> int:
    """Write dvc.yaml and params.yaml whose stages call `retrainer stage NAME`, so `dvc repro` runs the pipeline."""
    from retrainer.exporters.dvc import export_dvc

    written = export_dvc(spec_path, out, env=env)
    for path in written:
        console.print(f"wrote {path}")
    return 0


@guarded
def airflow_export(
    spec_paths: Annotated[
        list[Path], typer.Argument(help="Pipeline specs, or project files listing them.", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", help="Airflow's dags folder.")] = Path("dags"),
    env: EnvOpt = None,
) -> int:
    """Write one DAG file per spec; tasks run the same stage functions as `retrainer run`."""
    from retrainer.exporters.airflow import export_dags
    from retrainer.spec import expand_projects

    for path in export_dags(expand_projects(spec_paths), out, env=env):
        console.print(f"wrote {path}")
    return 0
