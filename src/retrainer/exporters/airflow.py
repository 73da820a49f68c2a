"""Apache Airflow 3: a spec becomes a DAG file whose tasks call the same stage functions.

`export_dags` writes one short DAG file per spec (TaskFlow API, `airflow.sdk`). At parse time the file
imports only pendulum and the Task SDK, so the DAG processor stays fast; each task imports retrainer
when it runs and calls `run_task`, which runs the pipeline up to that task's stage under the DAG
run's id. Tasks pass only a small reference (run id, stage, cache key) through XCom: the data stays
in the run store. A rejection (data or evaluation gate) fails the task *without* retries and leaves
the champion untouched; a crash is retried per the spec.

This module never imports Airflow at module level: the CLI imports it to export DAGs without it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retrainer.errors import SpecError
from retrainer.spec import Spec, load_spec, parse_duration
from retrainer.stages import default_pipeline

_TEMPLATE = '''"""Retraining DAG for pipeline {name!r}: made by `retrainer airflow export`; re-generate, don't edit.

Trigger with conf to override: {{"as_of": "2026-11-01", "force": true}}.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

SPEC = {spec_path!r}
ENV = {env!r}
STORE = {store!r}  # the run store at export (absolute): used when the deployment names none
STORE_VARIABLES = ({store_variable!r}, "retrainer_store")  # Airflow Variables naming the store


def _store() -> str:
    """The run store the deployment gives: the Airflow Variable `<dag_id>_store`, else
    `retrainer_store` (or AIRFLOW_VAR_... in the environment), else the path at export. Read when a
    task runs, never when the file is parsed."""
    from airflow.sdk import Variable

    for key in STORE_VARIABLES:
        value = Variable.get(key, default=None)
        if value:
            return str(value)
    return STORE
FAN_OUT = {fan_out!r}  # stage -> how many mapped `<stage>_worker` tasks share its work first


def _stage(name: str):
    @task(task_id=name{task_options})
    def run_stage(**context) -> dict:
        from retrainer.exporters.airflow import run_task

        return run_task(SPEC, ENV, _store(), name, context)

    return run_stage


def _workers(name: str):
    @task(task_id=f"{{name}}_worker"{task_options})
    def run_worker(worker: int, **context) -> dict:
        from retrainer.exporters.airflow import run_worker_task

        return run_worker_task(SPEC, ENV, _store(), name, worker, FAN_OUT[name], context)

    return run_worker


@dag(
    dag_id={dag_id!r},
    description={description!r},
    schedule={schedule!r},
    start_date=pendulum.parse({start_date!r}),
    catchup={catchup!r},
    max_active_runs={max_active_runs!r},
    tags={tags!r},
    default_args={{
        "owner": {owner!r},
        "retries": {retries!r},
        "retry_delay": timedelta(seconds={retry_delay!r}),
        "execution_timeout": timedelta(seconds={execution_timeout!r}),
    }},
)
def {function}():
    @task.short_circuit(task_id="prerequisites")
    def prerequisites(**context) -> bool:
        from retrainer.exporters.airflow import check_prerequisites

        return check_prerequisites(SPEC, ENV, _store(), context)

    previous = prerequisites()
    for name in {stages!r}:
        if FAN_OUT.get(name, 1) > 1:  # fan out: mapped tasks do their part of the stage's work first
            workers = _workers(name).expand(worker=list(range(FAN_OUT[name])))
            previous >> workers
            previous = workers
        current = _stage(name)()
        previous >> current
        previous = current


{function}()
'''


_MASTER_TEMPLATE = '''"""Master DAG over {count} retraining pipelines: made by `retrainer airflow export`; don't edit.

It triggers every pipeline's DAG in parallel, waits for each (deferred: a triggerer must run, as in
`airflow standalone`), then logs one summary: which models were promoted, kept the champion, were
rejected or failed, and why; it also goes to the pipelines' notify channels (event `summary`).
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

PIPELINES = {pipelines!r}  # dag_id -> spec path, env and run store


@dag(
    dag_id="retrainer_master",
    schedule={schedule!r},
    start_date=pendulum.parse({start_date!r}),
    catchup=False,
    max_active_runs=1,
    tags=["retrainer", "master"],
)
def retrainer_master():
    triggers = [
        TriggerDagRunOperator(
            task_id=f"trigger_{{dag_id}}",
            trigger_dag_id=dag_id,
            trigger_run_id="{{{{ run_id }}}}__" + dag_id,
            conf="{{{{ dag_run.conf | tojson }}}}",
            wait_for_completion=True,
            deferrable=True,  # waiting in the triggerer frees the worker slot the pipeline's tasks need
            poke_interval=5,
            allowed_states=["success"],
            failed_states=["failed"],
        )
        for dag_id in PIPELINES
    ]

    @task(trigger_rule="all_done")
    def summary(**context) -> dict:
        from retrainer.exporters.airflow import summarize_pipelines

        return summarize_pipelines(PIPELINES, context)

    triggers >> summary()


retrainer_master()
'''


def dag_id_for(spec: Spec) -> str:
    return "retrainer_" + re.sub(r"\W", "_", spec.name)


def render_dag(spec: Spec, env: str | None = None, *, scheduled: bool = True) -> str:
    """The Python source of the DAG for one loaded (so validated: a bad spec never ships) spec.

    Under a master DAG (`scheduled=False`) the pipeline DAG has no schedule of its own: the master's
    schedule triggers it, so it never runs twice for one interval.
    """
    rules = spec.orchestration
    task_options = "".join(
        f", {key}={value!r}" for key, value in (("pool", rules.pool), ("queue", rules.queue)) if value
    )
    dag_id = dag_id_for(spec)
    pipeline = default_pipeline()
    return _TEMPLATE.format(
        name=spec.name,
        spec_path=spec.spec_path,
        env=env,
        store=_absolute_store(spec),
        store_variable=f"{dag_id}_store",
        dag_id=dag_id,
        function=dag_id,
        description=spec.description or f"retrain {spec.name}",
        schedule=spec.schedule if scheduled else None,
        start_date=rules.start_date,
        catchup=rules.catchup,
        max_active_runs=rules.max_active_runs,
        tags=["retrainer", spec.name, *rules.tags],
        owner=rules.owner,
        retries=rules.retries,
        retry_delay=int(parse_duration(rules.retry_delay)),
        execution_timeout=int(parse_duration(rules.execution_timeout)),
        task_options=task_options,
        stages=pipeline.names,
        fan_out={stage.name: stage.fan_out.workers(spec) for stage in pipeline.stages if stage.fan_out is not None},
    )


def export_dags(spec_paths: list[Path], out_dir: Path, env: str | None = None) -> list[Path]:
    """Write one DAG file per spec into `out_dir` (Airflow's dags folder), and a master DAG over
    them when there are several; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    specs = [load_spec(path, env=env) for path in spec_paths]
    dag_ids = [dag_id_for(spec) for spec in specs]
    if len(set(dag_ids)) != len(dag_ids):
        raise SpecError("two specs have the same pipeline name; DAG ids must be unique", hint="rename one pipeline")
    master = len(specs) > 1
    written = []
    for spec, dag_id in zip(specs, dag_ids, strict=True):
        path = out_dir / f"{dag_id}.py"
        path.write_text(render_dag(spec, env, scheduled=not master))
        written.append(path)
    if master:
        path = out_dir / "retrainer_master.py"
        path.write_text(render_master(specs, env))
        written.append(path)
    return written


def render_master(specs: list[Spec], env: str | None = None) -> str:
    """The master DAG: the shared schedule of its pipelines (none if they differ) triggers them all."""
    schedules = {spec.schedule for spec in specs}
    pipelines = {
        dag_id_for(spec): {"spec": spec.spec_path, "env": env, "store": _absolute_store(spec)} for spec in specs
    }
    return _MASTER_TEMPLATE.format(
        count=len(specs),
        pipelines=pipelines,
        schedule=schedules.pop() if len(schedules) == 1 else None,
        start_date=min(spec.orchestration.start_date for spec in specs),
    )


def _absolute_store(spec: Spec) -> str:
    return spec.store if "://" in spec.store else str(Path(spec.store).resolve())


# ------------------------------------------------------------------------------ task runtime
def run_id_for(context: dict[str, Any]) -> str:
    """The Airflow run id made safe as a directory name in any store."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", str(context["run_id"]))


def _options(context: dict[str, Any]) -> dict[str, Any]:
    dag_run = context.get("dag_run")
    conf = dict(getattr(dag_run, "conf", None) or {})
    logical = context.get("logical_date")
    as_of = conf.get("as_of") or (logical.isoformat() if logical is not None else None)
    return {"as_of": as_of, "force": bool(conf.get("force", False))}


def _load(spec_path: str, env: str | None, store: str) -> Spec:
    return load_spec(spec_path, env=env).model_copy(update={"store": store})


def run_task(spec_path: str, env: str | None, store: str, stage: str, context: dict[str, Any]) -> dict[str, Any]:
    """Run the pipeline up to `stage` in this DAG run; a rejection fails the task without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from retrainer.executor import run

    options = _options(context)
    spec = _load(spec_path, env, store)
    # `force` re-runs stages only in the first task; later tasks reuse what it just produced
    force = options["force"] and stage == default_pipeline().names[0]
    result = run(
        spec,
        until=stage,
        run_id=run_id_for(context),
        as_of=options["as_of"],
        force=force,
        notify_failure=_last_attempt(context),
    )
    if result.outcome == "rejected":
        raise AirflowFailException(f"{spec.name} rejected at {stage}: {result.reason}")
    record = next(s for s in result.stages if s.name == stage)
    return {
        "run_id": result.run_id,
        "stage": stage,
        "status": record.status,
        "key": record.key,
        "outcome": result.outcome,
    }


def _last_attempt(context: dict[str, Any]) -> bool:
    """Whether Airflow will not retry this task if it fails now (try_number counts from 1)."""
    ti = context.get("ti")
    if ti is None:
        return True
    return int(getattr(ti, "try_number", 1)) > int(getattr(ti, "max_tries", 0))


def run_worker_task(
    spec_path: str, env: str | None, store: str, stage: str, worker: int, workers: int, context: dict[str, Any]
) -> dict[str, Any]:
    """One mapped `<stage>_worker` task: its part of the stage's fan-out (tuning: trials against the shared study)."""
    from retrainer.executor import stage_worker

    spec = _load(spec_path, env, store)
    stage_worker(spec.model_dump(mode="json"), run_id_for(context), _options(context)["as_of"], stage, workers, worker)
    return {"run_id": run_id_for(context), "worker": worker, "workers": workers}


def run_tune_worker(
    spec_path: str, env: str | None, store: str, worker: int, workers: int, context: dict[str, Any]
) -> dict[str, Any]:
    """What DAG files exported before fan-out was a stage hook call: keeps already deployed DAGs running."""
    return run_worker_task(spec_path, env, store, "tune", worker, workers, context)


def summarize_pipelines(pipelines: dict[str, dict[str, Any]], context: dict[str, Any]) -> dict[str, Any]:
    """What each pipeline of a master run did, read from its run store (the same record `retrainer runs` shows)."""
    from retrainer.errors import StoreError
    from retrainer.store import RunStore

    outcomes: dict[str, Any] = {}
    for dag_id, pipeline in pipelines.items():
        run_id = run_id_for({"run_id": f"{context['run_id']}__{dag_id}"})
        try:
            record = RunStore(pipeline["store"]).read_run(run_id)
        except StoreError:
            outcomes[dag_id] = {"outcome": "not run", "reason": "skipped by its prerequisites or failed before extract"}
            continue
        outcomes[dag_id] = {k: record.get(k) for k in ("status", "reason", "model_version", "champion_version")}
        outcomes[dag_id]["outcome"] = outcomes[dag_id].pop("status")
    for dag_id, result in outcomes.items():
        version = f" v{result['model_version']}" if result.get("model_version") else ""
        print(f"{dag_id}: {result['outcome']}{version}: {result['reason']}")
    notify_summary(pipelines, outcomes, str(context["run_id"]))
    return outcomes


def notify_summary(pipelines: dict[str, dict[str, Any]], outcomes: dict[str, Any], run_id: str) -> None:
    """Send the summary form to each distinct channel the pipelines' specs configure (once each)."""
    from retrainer.integrations.notifiers import deliver
    from retrainer.stages.notify import summary_message

    message = summary_message(outcomes, run_id)
    seen: set[str] = set()
    for dag_id, pipeline in pipelines.items():
        try:
            notify = _load(pipeline["spec"], pipeline["env"], pipeline["store"]).notify
        except Exception as error:  # noqa: BLE001 - a broken spec must not hide the others' summary
            print(f"{dag_id}: cannot read its notify section: {type(error).__name__}")
            continue
        channels = notify.model_copy(update={"slack": None, "email": None})
        for kind in ("slack", "email"):
            channel = getattr(notify, kind)
            identity = kind + repr(_revealed(channel))
            if channel is None or identity in seen:
                continue
            seen.add(identity)
            for name, status in deliver(channels.model_copy(update={kind: channel}), message).items():
                print(f"summary to {name}: {status}")


def _revealed(channel: Any) -> Any:
    """A channel's settings with secrets in clear, to tell two channels apart (never printed)."""
    if channel is None:
        return None
    return {k: v.get_secret_value() if hasattr(v, "get_secret_value") else v for k, v in dict(channel).items()}


def check_prerequisites(spec_path: str, env: str | None, store: str, context: dict[str, Any]) -> bool:
    """Before extract: the spec is valid, the source answers, it has enough rows, and something new.

    Returns False (the run is marked skipped, not failed) when the source has fewer than `min_rows`
    rows for this logical date, or holds exactly the data the champion was trained on (unless the
    run was triggered with `{"force": true}`, or `drift.policy` is `retrain` and the current batch
    drifted from the champion's training data). An unreachable source raises SourceError, so the task
    fails and is retried per the spec.
    """
    from retrainer.executor import parse_as_of
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.pipeline import RunContext
    from retrainer.store import RunStore

    spec = _load(spec_path, env, store)
    options = _options(context)
    ctx = RunContext(spec=spec, store=RunStore(spec.store), run_id=run_id_for(context), open_registry=Registry.for_spec)
    ctx.as_of = parse_as_of(options["as_of"])
    rows = ctx.source.count()
    minimum = int(spec.validation.limit("min_rows"))
    print(f"{spec.name}: the source has {rows:,} rows (minimum {minimum:,})")
    if rows < minimum:
        return False
    champion = ctx.registry.by_alias(spec.registry_name, "champion")
    state = ctx.source.state()  # the extract drift runs below reuses it (and a content state's rows)
    if champion is not None and champion.tags.get("retrainer.source_state") == state and not options["force"]:
        if spec.drift.policy == "retrain":
            from retrainer.stages.drift import drifted_now

            drifted = drifted_now(ctx)
            if drifted:
                print(
                    f"{spec.name}: no new rows, but {', '.join(drifted)} drifted since champion "
                    f"v{champion.version}; drift.policy is 'retrain': running"
                )
                return True
        print(f"{spec.name}: no new data since champion v{champion.version} was trained ({state}); skipping")
        return False
    return True
