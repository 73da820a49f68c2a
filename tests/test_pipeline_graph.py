"""The pipeline graph is checked when built, like Kedro's: every problem named at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from retrainer.errors import PipelineError, RetrainerError, StageError
from retrainer.pipeline import Pipeline, RunContext, Stage, StageOutput, graph_problems, warmed
from retrainer.stages import default_pipeline


def nothing(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    return StageOutput()


def stage(name: str, needs: tuple[str, ...] = (), makes: tuple[str, ...] = ()) -> Stage:
    return Stage(name=name, func=nothing, needs=needs, makes=makes)


def test_the_default_pipeline_is_a_valid_graph() -> None:
    pipeline = default_pipeline()
    assert graph_problems(pipeline.stages, pipeline.final) == []
    assert pipeline.names[0] == "extract" and pipeline.final is not None


def test_a_stage_name_used_twice_is_refused() -> None:
    with pytest.raises(PipelineError, match="two stages are named 'train'"):
        Pipeline(stages=(stage("train", makes=("model",)), stage("train", makes=("other",))))


def test_the_final_stage_may_not_reuse_a_stage_name() -> None:
    with pytest.raises(PipelineError, match="two stages are named 'extract'"):
        Pipeline(stages=(stage("extract", makes=("data",)),), final=stage("extract"))


def test_an_artifact_made_by_two_stages_is_refused() -> None:
    with pytest.raises(PipelineError, match="artifact 'model' is made by both 'train' and 'retrain'"):
        Pipeline(stages=(stage("train", makes=("model",)), stage("retrain", makes=("model",))))


def test_a_need_no_earlier_stage_makes_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"stage 'evaluate' needs \['model'\], which no earlier stage makes"):
        Pipeline(stages=(stage("extract", makes=("data",)), stage("evaluate", needs=("data", "model"))))


def test_a_need_made_only_later_is_refused() -> None:
    with pytest.raises(PipelineError, match=r"stage 'evaluate' needs \['model'\]"):
        Pipeline(stages=(stage("evaluate", needs=("model",)), stage("train", makes=("model",))))


def test_the_final_stage_reads_only_the_run_summary() -> None:
    Pipeline(stages=(stage("train", makes=("model",)),), final=stage("notify", needs=("summary",)))
    with pytest.raises(PipelineError, match=r"final stage 'notify' needs \['model'\]"):
        Pipeline(stages=(stage("train", makes=("model",)),), final=stage("notify", needs=("summary", "model")))


def test_every_problem_is_reported_at_once_as_a_retrainer_error_and_a_value_error() -> None:
    stages = (stage("a", makes=("x",)), stage("a", needs=("y",), makes=("x",)))
    with pytest.raises(PipelineError) as raised:
        Pipeline(stages=stages)
    assert graph_problems(stages) == [
        "two stages are named 'a'",
        "stage 'a' needs ['y'], which no earlier stage makes",
        "artifact 'x' is made by both 'a' and 'a'",
    ]
    assert isinstance(raised.value, RetrainerError) and isinstance(raised.value, ValueError)
    assert raised.value.message.startswith("the pipeline's graph is invalid: two stages are named 'a'; ")


class _Started:
    """What a warm-up starts, recording when it starts and closes."""

    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events
        events.append(f"warm {name}")

    def close(self) -> None:
        self.events.append(f"close {self.name}")


def _warming_pipeline(events: list[str], failing: str = "", leads: Mapping[str, int] | None = None) -> Pipeline:
    def step(name: str) -> Stage:
        def func(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
            taken = warmed(ctx, name)
            events.append(f"run {name}" + (f" with {taken.name}" if taken is not None else ""))
            if name == failing:
                raise StageError(f"{name} failed")
            return StageOutput(artifacts={name: 1})

        def warm_up(ctx: RunContext) -> _Started:
            return _Started(name, events)

        lead = (leads or {}).get(name, 1)
        return Stage(
            name=name,
            func=func,
            makes=(name,),
            cacheable=False,
            warm_up=None if name == "a" else warm_up,
            warm_up_lead=lead,
        )

    return Pipeline(stages=(step("a"), step("b"), step("c")))


def test_a_warm_up_starts_its_lead_of_stages_ahead_and_is_closed_when_its_stage_never_takes_it(
    write_spec: Callable[..., Path],
) -> None:
    from retrainer import load_spec
    from retrainer.executor import run

    spec = load_spec(write_spec())
    events: list[str] = []
    run(spec, pipeline=_warming_pipeline(events))
    assert events == ["warm b", "run a", "warm c", "run b with b", "run c with c"]

    events.clear()  # the run stops after b: c's warm-up is never started
    run(spec, pipeline=_warming_pipeline(events), until="b")
    assert events == ["warm b", "run a", "run b with b"]

    events.clear()  # b fails: c was started for nothing, and is closed
    with pytest.raises(StageError):
        run(spec, pipeline=_warming_pipeline(events, failing="b"))
    assert events == ["warm b", "run a", "warm c", "run b with b", "close c"]

    events.clear()  # c's warm-up two stages ahead: it starts as a starts
    run(spec, pipeline=_warming_pipeline(events, leads={"c": 2}))
    assert events == ["warm b", "warm c", "run a", "run b with b", "run c with c"]
    events.clear()  # ...but not in a run that stops before c
    run(spec, pipeline=_warming_pipeline(events, leads={"c": 2}), until="b")
    assert events == ["warm b", "run a", "run b with b"]
