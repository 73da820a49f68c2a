"""The pipeline as data: stages with named inputs and outputs, and the context they run in.

A stage is a plain function `(ctx, inputs) -> StageOutput`. It knows nothing of who runs it: the
local executor (`retrainer.run`), an Airflow task or `dvc repro` call the same function.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from retrainer._version import __version__
from retrainer.errors import PipelineError

if TYPE_CHECKING:
    from retrainer.model_registry import ModelRegistry
    from retrainer.sources import Source
    from retrainer.spec import Spec
    from retrainer.store import RunStore


class Reporter(Protocol):
    """Receives progress events; the CLI shows them as Rich progress bars, tests may record them."""

    def stage_started(self, stage: str) -> None: ...
    def stage_finished(self, stage: str, status: str, seconds: float, summary: str) -> None: ...
    def progress(self, stage: str, label: str, done: int, total: int | None, detail: str = "") -> None: ...


class SilentReporter:
    """A reporter that only logs: the default for the Python API and orchestrators."""

    def stage_started(self, stage: str) -> None:
        logging.getLogger("retrainer").info("stage %s started", stage)

    def stage_finished(self, stage: str, status: str, seconds: float, summary: str) -> None:
        logging.getLogger("retrainer").info("stage %s %s in %.1fs %s", stage, status, seconds, summary)

    def progress(self, stage: str, label: str, done: int, total: int | None, detail: str = "") -> None:
        logging.getLogger("retrainer").debug("%s %s %s/%s %s", stage, label, done, total, detail)


@dataclass
class RunContext:
    """What a stage may use besides its inputs: the spec, the store, the run's identity and clock."""

    spec: Spec
    store: RunStore
    run_id: str
    as_of: datetime | None = None
    reporter: Reporter = field(default_factory=SilentReporter)
    stage: str = ""
    cache_key: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("retrainer"))
    upstream: dict[str, str] = field(default_factory=dict)  # stage name -> its cache key, for lineage
    scratch: dict[str, Any] = field(default_factory=dict)  # in-process hand-offs between hooks of one run
    artifact_digests: dict[str, str] = field(default_factory=dict)  # name -> digest of what the stage can read
    # How to open the model registry (the MLflow integration's `Registry.for_spec`): whoever builds the
    # context says, so this contract module imports no integration. Called on first use of `registry`.
    open_registry: Callable[[Spec, RunStore], ModelRegistry] | None = None

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry, opened on first use: a fully cached re-run never imports MLflow."""
        if self.open_registry is None:  # a wiring bug, not an unreachable registry: not a RegistryError
            raise RuntimeError(
                "this RunContext was built without open_registry= "
                "(retrainer.integrations.mlflow_registry.Registry.for_spec opens the MLflow registry)"
            )
        return self.open_registry(self.spec, self.store)

    @cached_property
    def source(self) -> Source:
        """The spec's source, read up to this run's `as_of`: one object per run, so what one hook
        learns about it (its state, a content fingerprint's rows) the next one reuses."""
        from retrainer.sources import for_spec

        return for_spec(self.spec.source, time_column=self.spec.time_column, as_of=self.as_of, logger=self.logger)

    def work_dir(self) -> str:
        """Scratch space tied to this stage's cache key: it survives a crash, so work can resume."""
        return self.store.work_dir(self.stage, self.cache_key)

    def progress(self, label: str, done: int, total: int | None, detail: str = "") -> None:
        self.reporter.progress(self.stage, label, done, total, detail)


@dataclass
class StageOutput:
    """What a stage returns: artifacts for later stages, metrics to record and a one-line summary."""

    artifacts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    summary: str = ""


StageFn = Callable[[RunContext, Mapping[str, Any]], StageOutput]


WorkFn = Callable[[RunContext, Mapping[str, Any], int, int], None]


@dataclass(frozen=True)
class FanOut:
    """Work a stage shares out among several workers before it runs (tuning's trials).

    `workers(spec)` says how many (1: no fan-out); `work(ctx, inputs, worker, workers)` does one
    worker's part. The local executor runs worker 0 in its own process beside spawned ones, the Airflow
    DAG runs them as the mapped task `<stage>_worker` ahead of the stage's task; each worker rebuilds
    the stage's context and inputs from the cache. The work must be shared through the store and
    resumable: the stage itself runs next and finishes whatever a worker left (one crashed, or started
    late). `prepare(ctx, inputs)`, run by the local executor before any worker starts, says whether
    anything is left to share out.
    """

    workers: Callable[[Spec], int]
    work: WorkFn
    prepare: Callable[[RunContext, Mapping[str, Any]], bool] | None = None


class WarmUp(Protocol):
    """What a stage's `warm_up` started (a process importing its libraries): closed if never used."""

    def close(self) -> None: ...


def warmed(ctx: RunContext, stage: str) -> Any:
    """What `stage`'s `warm_up` started for this run (the stage now owns it), or None: not started
    (an Airflow task, the stage run alone, the executor went no further) or already taken."""
    return ctx.scratch.pop(f"warm-up:{stage}", None)


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    `spec_sections` and `code` feed the cache key: change the spec section or the code and the stage
    runs again. `fingerprint` lets a stage add the state of the outside world (a source table) to its key.
    A stage that is not `cacheable` talks to the registry and runs every time. `fan_out` shares part of
    its work among workers first (`FanOut`). `warm_up(ctx)` starts what the stage will need before its
    inputs exist (a fresh process importing MLflow): the local executor calls it as the stage
    `warm_up_lead` places before it starts (the one before, by default), so the start-up overlaps
    their work; the stage takes it with `warmed(ctx, name)` and must work without it, and the executor
    closes one left unused.
    """

    name: str
    func: StageFn
    needs: tuple[str, ...] = ()
    makes: tuple[str, ...] = ()
    spec_sections: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    cacheable: bool = True
    fingerprint: Callable[[RunContext], str] | None = None
    fan_out: FanOut | None = None
    warm_up: Callable[[RunContext], WarmUp | None] | None = None
    warm_up_lead: int = 1

    def code_version(self) -> str:
        """Hash of the source of the stage's module and of the modules it declares in `code`."""
        return _code_digest((self.func.__module__, *self.code))


def _code_digest(modules: tuple[str, ...]) -> str:
    """Reads the modules' source files without importing them (imports would cost the cached path).

    A package stands for every module in it (`retrainer.tasks`: its `__init__.py`, `base.py`,
    `binary.py`...), so a stage names the packages it depends on, not their files one by one.
    """
    hasher = hashlib.sha256(__version__.encode())
    for name in modules:
        found = importlib.util.find_spec(name)
        if found is None or found.origin is None:
            raise ValueError(f"no source for module {name}")
        folders = [Path(folder) for folder in found.submodule_search_locations or ()]
        files = sorted(f for folder in folders for f in folder.rglob("*.py")) if folders else [Path(found.origin)]
        for file in files:
            hasher.update(file.name.encode())
            hasher.update(file.read_bytes())
    return hasher.hexdigest()[:16]


FINAL_INPUTS = ("summary",)  # what the executor hands the final stage: the run's summary, nothing else


@dataclass(frozen=True)
class Pipeline:
    """An ordered list of stages; each stage's needs are made by a stage before it.

    Checked when built, like Kedro's pipelines: stage names are unique, each artifact has one maker,
    and every need is made by an earlier stage (the final stage reads only `FINAL_INPUTS`).
    """

    stages: tuple[Stage, ...]
    final: Stage | None = None  # runs after success *and* after a rejection (notify)

    def __post_init__(self) -> None:
        problems = graph_problems(self.stages, self.final)
        if problems:
            raise PipelineError(
                "the pipeline's graph is invalid: " + "; ".join(problems),
                hint="each stage needs a unique name, each artifact one maker before the stages that need it",
            )

    @property
    def names(self) -> list[str]:
        return [stage.name for stage in self.stages]

    def get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        if self.final and self.final.name == name:
            return self.final
        raise KeyError(name)


def graph_problems(stages: tuple[Stage, ...], final: Stage | None = None) -> list[str]:
    """Every problem with the graph at once: duplicate names, artifacts made twice, needs not made before."""
    problems: list[str] = []
    named: set[str] = set()
    maker: dict[str, str] = {}  # artifact -> the stage that makes it
    for stage in (*stages, *([final] if final else [])):
        if stage.name in named:
            problems.append(f"two stages are named {stage.name!r}")
        named.add(stage.name)
        if stage is final:
            missing = sorted(set(stage.needs) - set(FINAL_INPUTS))
            if missing:
                problems.append(
                    f"final stage {stage.name!r} needs {missing}, but a final stage is given only {list(FINAL_INPUTS)}"
                )
        else:
            missing = sorted(set(stage.needs) - set(maker))
            if missing:
                problems.append(f"stage {stage.name!r} needs {missing}, which no earlier stage makes")
        for artifact in stage.makes:
            if artifact in maker:
                problems.append(f"artifact {artifact!r} is made by both {maker[artifact]!r} and {stage.name!r}")
            else:
                maker[artifact] = stage.name
    return problems
