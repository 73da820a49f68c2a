"""The local executor: runs the pipeline's stages in order in one process, with caching and resume.

A stage whose key (`stage_cache.cache_key`: its name, code, spec sections, inputs' digests and the
source's fingerprint) has a complete entry in the store is not run;
its outputs are loaded only if a later stage that does run needs them, so an unchanged pipeline
finishes in about a second. A crashed or interrupted run leaves its finished stages cached: the same
command resumes where it stopped (tuning resumes trial by trial). A stage that declares a fan-out
(`Stage.fan_out`: tuning) first shares its work among local worker processes.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import posixpath
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from retrainer.errors import RejectedError, RetrainerError, SpecError, StageError, StoreError
from retrainer.faults import kill_point
from retrainer.integrations.mlflow_registry import Registry
from retrainer.pipeline import FanOut, Pipeline, Reporter, RunContext, SilentReporter, Stage
from retrainer.run_lock import pipeline_lock, process_identity
from retrainer.spec import Spec
from retrainer.stage_cache import cache_key as cache_key
from retrainer.stage_cache import manifest_refs, read_manifest, save_outputs
from retrainer.store import ArtifactRef, RunStore

logger = logging.getLogger("retrainer")

SUCCESSFUL = ("promoted", "kept_champion", "unchanged", "registered", "partial")


@dataclass
class StageRecord:
    name: str
    status: str  # ran | cached | failed | rejected | interrupted
    seconds: float
    key: str = ""
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a run did: its outcome in one word and one sentence, and the evidence behind it."""

    run_id: str
    pipeline: str
    outcome: str  # promoted | kept_champion | unchanged | registered | partial | rejected | failed | interrupted
    reason: str
    model_version: int | None = None
    champion_version: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    stages: list[StageRecord] = field(default_factory=list)
    seconds: float = 0.0
    store: str = ""
    error: RetrainerError | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in SUCCESSFUL

    @property
    def exit_code(self) -> int:
        if self.ok:
            return 0
        if self.outcome == "interrupted":
            return 130
        return self.error.exit_code if self.error else 1

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["stages"] = [asdict(stage) for stage in self.stages]
        data["error"] = (
            None
            if self.error is None
            else {"type": type(self.error).__name__, "message": self.error.message, "hint": self.error.hint}
        )
        return data


class _LazyInputs(Mapping[str, Any]):
    """Artifacts by name, read from the store only when a stage asks for one."""

    def __init__(
        self, store: RunStore, refs: dict[str, ArtifactRef], loaded: dict[str, Any], names: tuple[str, ...]
    ) -> None:
        self._store, self._refs, self._loaded, self._names = store, refs, loaded, names

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(f"stage did not declare {name!r} in its needs")
        if name not in self._loaded:
            self._loaded[name] = self._store.load_artifact(self._refs[name])
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def run(
    spec: Spec,
    *,
    as_of: str | datetime | None = None,
    force: bool = False,
    from_stage: str | None = None,
    reporter: Reporter | None = None,
    pipeline: Pipeline | None = None,
    until: str | None = None,
    run_id: str | None = None,
    notify_failure: bool = True,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the pipeline for `spec` end to end; return its result (a rejection is a result, not an error).

    `notify_failure=False` keeps a failure quiet: an orchestrator passes it while the task has
    retries left, so people hear of the failure once, when no retry is left, not of every attempt.

    `until` stops after that stage (orchestrators run one stage per task). `run_id` continues an
    existing run: stages that ran in it, the registry stages included, are not run twice, so a
    retried task is idempotent. Errors that are not rejections (unreachable source, registry down,
    a bug) are recorded in the run store and raised, after the summary was written.

    One run of a pipeline at a time per store (`run_lock`): a second waits, `on_wait` told once whom
    it waits for (default: a log line), or with `wait=False` raises `PipelineBusy`.
    """
    from retrainer.stages import default_pipeline

    pipeline = pipeline or default_pipeline()
    for option, name in (("--from", from_stage), ("--until", until)):
        if name and name not in pipeline.names:
            raise SpecError(f"{option} {name}: no such stage", hint=_stage_hint(name, pipeline.names))
    store = RunStore(spec.store)
    resume, run_id = run_id is not None, run_id or new_run_id()
    with pipeline_lock(store, spec.name, run_id, wait=wait, on_wait=on_wait or logger.warning):
        return _run_locked(
            spec,
            pipeline,
            store,
            run_id,
            resume=resume,
            as_of=as_of,
            force=force,
            from_stage=from_stage,
            reporter=reporter,
            until=until,
            notify_failure=notify_failure,
        )


def _stage_hint(name: str, names: tuple[str, ...] | list[str]) -> str:
    """'did you mean tune?' before the list of stages, when the name is a near miss."""
    import difflib

    close = difflib.get_close_matches(name, list(names), n=1)
    listed = f"stages: {', '.join(names)}"
    return f"did you mean {close[0]}? {listed}" if close else listed


def _run_locked(
    spec: Spec,
    pipeline: Pipeline,
    store: RunStore,
    run_id: str,
    *,
    resume: bool,
    as_of: str | datetime | None,
    force: bool,
    from_stage: str | None,
    reporter: Reporter | None,
    until: str | None,
    notify_failure: bool,
) -> RunResult:
    """`run` once it holds the pipeline's lock."""
    started = time.perf_counter()
    ctx = RunContext(
        spec=spec,
        store=store,
        run_id=run_id,
        as_of=parse_as_of(as_of),
        reporter=reporter or SilentReporter(),
        open_registry=Registry.for_spec,
    )
    result = RunResult(run_id=ctx.run_id, pipeline=spec.name, outcome="failed", reason="", store=store.url)
    refs: dict[str, ArtifactRef] = {}
    loaded: dict[str, Any] = {}
    record = _start_record(store, ctx, spec, resume=resume)
    forcing = force
    raised: BaseException | None = None
    try:
        if spec.tracking.uri or store.is_local:  # a damaged registry stops the run before any training
            ctx.registry.check()
        names = [stage.name for stage in pipeline.stages]
        last = names.index(until) if until in names else len(names) - 1
        for position, stage in enumerate(pipeline.stages):
            forcing = forcing or stage.name == from_stage
            _run_stage(
                stage,
                ctx,
                refs,
                loaded,
                result.stages,
                use_cache=not forcing,
                before_running=functools.partial(_start_warm_ups, pipeline.stages[: last + 1], position, ctx),
            )
            _forget_unneeded(pipeline, stage, loaded)
            result.metrics.update(result.stages[-1].metrics)
            record["stages"] = _merge_stages(record["stages"], result.stages)
            store.write_run(ctx.run_id, record)
            if stage.name == until:
                break
        if "promotion" in refs:
            promotion = loaded.get("promotion") or store.load_artifact(refs["promotion"])
            result.outcome, result.reason = promotion["outcome"], promotion["reason"]
            result.model_version, result.champion_version = promotion["version"], promotion["champion_before"]
        else:
            result.outcome, result.reason = "partial", f"ran up to '{until}'"
    except RejectedError as error:
        result.outcome, result.reason, result.error = "rejected", error.message, error
    except RetrainerError as error:
        result.outcome, result.reason, result.error, raised = "failed", error.message, error, error
    except KeyboardInterrupt as error:
        result.outcome, result.reason, raised = "interrupted", "interrupted by the user", error
    except Exception as error:  # noqa: BLE001 - recorded, then re-raised below
        result.outcome, result.reason, raised = "failed", f"{type(error).__name__}: {error}", error
    finally:
        _close_warm_ups(ctx)
        result.seconds = round(time.perf_counter() - started, 3)
        if result.outcome in ("failed", "interrupted", "rejected"):
            result.reason += _resume_hint(result)
        record.update(
            status=result.outcome,
            reason=result.reason,
            finished_at=datetime.now(UTC),
            seconds=result.seconds,
            model_version=result.model_version,
            champion_version=result.champion_version,
            stages=_merge_stages(record["stages"], result.stages),
        )
        store.write_run(ctx.run_id, record)
        quiet = result.outcome == "partial" or (result.outcome == "failed" and not notify_failure)
        if pipeline.final is not None and not quiet:
            _notify(pipeline.final, ctx, result, refs, loaded)
        if spec.report.auto and result.outcome not in ("partial", "interrupted"):
            _write_report(ctx)
    if raised is not None:
        raise raised
    return result


def _start_warm_ups(stages: Sequence[Stage], position: int, ctx: RunContext) -> None:
    """Start the warm-ups due as the stage at `position` is about to run (a cached one takes no time to
    overlap): those of the stages `warm_up_lead` places after it (among `stages`, the ones this run reaches)."""
    for at, stage in enumerate(stages):
        if stage.warm_up is not None and at - stage.warm_up_lead == position:
            started = stage.warm_up(ctx)
            if started is not None:
                ctx.scratch[f"warm-up:{stage.name}"] = started


def _close_warm_ups(ctx: RunContext) -> None:
    """Close what a warm-up started and its stage never took (the run failed or stopped before it)."""
    for key in [key for key in ctx.scratch if key.startswith("warm-up:")]:
        with contextlib.suppress(Exception):
            ctx.scratch.pop(key).close()


def _forget_unneeded(pipeline: Pipeline, done: Stage, loaded: dict[str, Any]) -> None:
    """Drop loaded artifacts no later stage needs: the whole table must not stay in memory till the end."""
    later = pipeline.stages[pipeline.stages.index(done) + 1 :]
    needed = {name for stage in later for name in stage.needs} | {"promotion", "drift"}
    for name in list(loaded):
        if name not in needed:
            del loaded[name]


def stage_inputs(
    spec: Spec, stage_name: str, *, run_id: str, as_of: str | datetime | None = None
) -> tuple[RunContext, Mapping[str, Any]]:
    """The context and inputs of one stage, its upstream stages read from the cache (they must have run).

    Used by processes that work *inside* a stage, such as tuning workers.
    """
    from retrainer.stages import default_pipeline

    store = RunStore(spec.store)
    ctx = RunContext(spec=spec, store=store, run_id=run_id, as_of=parse_as_of(as_of), open_registry=Registry.for_spec)
    refs: dict[str, ArtifactRef] = {}
    for stage in default_pipeline().stages:
        key = _enter_stage(stage, ctx, refs)
        if stage.name == stage_name:
            return ctx, _LazyInputs(store, refs, {}, stage.needs)
        manifest = read_manifest(stage, ctx, key)
        if manifest is None:
            raise StageError(
                f"stage {stage.name} has not run for these inputs",
                hint=f"run up to it first: retrainer stage {stage.name}",
            )
        refs.update(manifest_refs(manifest))
    raise StageError(f"no stage named {stage_name!r}")


def stage_worker(
    spec_data: dict[str, Any], run_id: str, as_of: str | datetime | None, stage_name: str, workers: int, worker: int
) -> None:
    """One worker of a stage's fan-out (`Stage.fan_out`): its part of the work, then exit.

    The target of the local worker processes and of the Airflow tasks `<stage>_worker`.
    """
    from retrainer.stages import default_pipeline

    fan_out = default_pipeline().get(stage_name).fan_out
    if fan_out is None:
        raise StageError(f"stage {stage_name} does not fan out")
    logging.basicConfig(level=logging.INFO, format=f"{stage_name} worker {worker}: %(message)s")
    ctx, inputs = stage_inputs(Spec.model_validate(spec_data), stage_name, run_id=run_id, as_of=as_of)
    fan_out.work(ctx, inputs, worker, workers)


def _fan_out(stage: Stage, fan_out: FanOut, ctx: RunContext, inputs: Mapping[str, Any]) -> None:
    """`fan_out.workers` workers on one machine: this process is worker 0, the others are spawned beside it."""
    import multiprocessing

    workers = fan_out.workers(ctx.spec)
    if workers <= 1 or (fan_out.prepare is not None and not fan_out.prepare(ctx, inputs)):
        return  # under Airflow, the mapped worker tasks have already done the work
    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no forked OpenMP or SQLite state
    args = (ctx.spec.model_dump(mode="json"), ctx.run_id, ctx.as_of, stage.name, workers)
    processes = [spawn.Process(target=stage_worker, args=(*args, worker), daemon=True) for worker in range(1, workers)]
    for process in processes:
        process.start()
    try:
        fan_out.work(ctx, inputs, 0, workers)
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        ctx.logger.warning("%d of %d %s workers failed (exit codes %s)", len(failed), workers, stage.name, failed)


def _start_record(store: RunStore, ctx: RunContext, spec: Spec, *, resume: bool) -> dict[str, Any]:
    if resume:
        with contextlib.suppress(StoreError):
            record = store.read_run(ctx.run_id)
            record.update(status="running", **process_identity())
            return record
    record = {
        "run_id": ctx.run_id,
        "pipeline": spec.name,
        "spec_path": spec.spec_path,
        "spec_digest": spec.digest(),
        "as_of": ctx.as_of,
        "started_at": datetime.now(UTC),
        "status": "running",
        "stages": [],
        **process_identity(),
    }
    store.write_run(ctx.run_id, record)
    return record


def _merge_stages(earlier: list[dict[str, Any]], now: list[StageRecord]) -> list[dict[str, Any]]:
    """Stage records of a run made by several processes: the latest of each stage, but a stage that
    ran in this run stays "ran" when a later process of the same run found it in the cache."""
    merged = {entry["name"]: entry for entry in earlier}
    for stage in now:
        before = merged.get(stage.name)
        ran_earlier_in_this_run = before and before["key"] == stage.key and before["status"] == "ran"
        if not (ran_earlier_in_this_run and stage.status == "cached"):
            merged[stage.name] = asdict(stage)
    return list(merged.values())


def _enter_stage(stage: Stage, ctx: RunContext, refs: dict[str, ArtifactRef]) -> str:
    """Point the context at `stage` and return its cache key (also recorded for later stages' lineage)."""
    ctx.stage = stage.name
    ctx.cache_key = cache_key(stage, ctx, refs)
    ctx.artifact_digests = {name: ref.digest for name, ref in refs.items()}
    ctx.upstream[stage.name] = ctx.cache_key
    return ctx.cache_key


def _run_stage(
    stage: Stage,
    ctx: RunContext,
    refs: dict[str, ArtifactRef],
    loaded: dict[str, Any],
    records: list[StageRecord],
    *,
    use_cache: bool,
    before_running: Callable[[], None] | None = None,
) -> None:
    """Run (or take from the cache) one stage; append its record, also when it fails. `before_running`
    is called when the stage runs (not from the cache): the warm-ups due then start."""
    store = ctx.store
    kill_point(f"before:{stage.name}")
    ctx.stage = stage.name
    ctx.reporter.stage_started(stage.name)
    started = time.perf_counter()
    with _stage_log(ctx):
        try:
            key = _enter_stage(stage, ctx, refs)
            manifest = read_manifest(stage, ctx, key) if use_cache else None
            if not use_cache and store.discard_work_dir(stage.name, key):
                logger.info("forced: the work a crashed run left for this stage is discarded, not resumed")
            if manifest is not None:
                cached = manifest_refs(manifest)
                refs.update(cached)
                for name in cached:
                    loaded.pop(name, None)
                status, summary, metrics = "cached", manifest.get("summary", ""), manifest.get("metrics", {})
                logger.info("cache hit %s (run %s)", key, manifest.get("run_id"))
            else:
                if before_running is not None:
                    before_running()
                inputs = _LazyInputs(store, refs, loaded, stage.needs)
                if stage.fan_out is not None:
                    _fan_out(stage, stage.fan_out, ctx, inputs)
                output = stage.func(ctx, inputs)
                save_outputs(stage, ctx, key, output, refs, loaded)
                status, summary, metrics = "ran", output.summary, output.metrics
        except BaseException as error:
            status = (
                "rejected"
                if isinstance(error, RejectedError)
                else "interrupted"
                if isinstance(error, KeyboardInterrupt)
                else "failed"
            )
            records.append(_finish(ctx, stage, status, started, ctx.cache_key, str(error)[:200], {}))
            raise
    records.append(_finish(ctx, stage, status, started, key, summary, metrics))


def _finish(
    ctx: RunContext, stage: Stage, status: str, started: float, key: str, summary: str, metrics: dict[str, float]
) -> StageRecord:
    seconds = round(time.perf_counter() - started, 3)
    ctx.reporter.stage_finished(stage.name, status, seconds, summary)
    return StageRecord(stage.name, status, seconds, key, summary, dict(metrics))


@contextlib.contextmanager
def _stage_log(ctx: RunContext) -> Iterator[None]:
    """Capture the stage's log lines and write them to runs/<id>/logs/<stage>.log afterwards."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    if old_level == logging.NOTSET or old_level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        path = posixpath.join(ctx.store.run_dir(ctx.run_id), "logs", f"{ctx.stage}.log")
        with contextlib.suppress(RetrainerError):  # a failing store is reported by the stage itself
            ctx.store.write_bytes(path, buffer.getvalue().encode())


def _notify(
    stage: Stage,
    ctx: RunContext,
    result: RunResult,
    refs: dict[str, ArtifactRef] | None = None,
    loaded: dict[str, Any] | None = None,
) -> None:
    kill_point(f"before:{stage.name}")
    summary = {k: v for k, v in result.to_dict().items() if k not in ("stages",)}
    summary["finished_at"] = datetime.now(UTC).isoformat()
    summary["as_of"] = ctx.as_of.isoformat() if ctx.as_of else None
    summary["drifted_features"] = _drifted_features(ctx, result, refs or {}, loaded or {})
    try:
        ctx.stage = stage.name
        stage.func(ctx, {"summary": summary})
    except Exception as error:  # noqa: BLE001 - notification must never change the run's outcome
        logger.warning("notification failed: %s", error)


def _drifted_features(
    ctx: RunContext, result: RunResult, refs: dict[str, ArtifactRef], loaded: dict[str, Any]
) -> list[str]:
    """The features the drift stage flagged in this run: from its artifact, or from the blocking error."""
    blocked = getattr(result.error, "drifted_features", None)
    if blocked is not None:
        return list(blocked)
    if "drift" not in refs:
        return []
    try:
        report = loaded.get("drift") or ctx.store.load_artifact(refs["drift"])
    except (RetrainerError, OSError, ValueError):
        return []
    return list(report.get("drifted_features", []))


def _write_report(ctx: RunContext) -> None:
    """The run's HTML report (runs/<id>/report.html); like notification, it never changes the outcome."""
    try:
        from retrainer.report import write_report

        write_report(ctx.store, ctx.run_id, ctx.spec)
    except Exception as error:  # noqa: BLE001 - a report that cannot be drawn must not fail the run
        logger.warning("could not write the run report: %s", error)


def _resume_hint(result: RunResult) -> str:
    done = [s.name for s in result.stages if s.status in ("ran", "cached")]
    if result.outcome == "rejected" or not done:
        return ""
    return f" (finished stages are cached: run again to resume after '{done[-1]}')"


def parse_as_of(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise SpecError(
            f"--as-of {value!r} is not a date", hint="use ISO format, e.g. 2026-11-01 or 2026-11-01T06:00"
        ) from None
