"""Tune: Optuna (TPE, seeded) with stratified k-fold CV, one study per candidate (`retrainer.tuning`).

A run killed mid-tune resumes with the trials it had finished, and only runs the ones still owed.
Each candidate's first trial is its known-good default configuration; with `models.warm_start`,
the production champion's parameters follow as a trial of the champion's candidate. `models.timeout`
is one wall-clock budget for tuning and the final fit (`retrainer.tuning.budget`). With
`models.workers`, the stage fans out (`FanOut`): workers run trials against the same studies first,
then the stage runs whatever they left owing and summarises the studies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrainer.errors import StageError
from retrainer.pipeline import FanOut, RunContext, Stage, StageOutput
from retrainer.tasks import from_info
from retrainer.tuning import (
    budget_deadline,
    done_trials,
    fail_abandoned_trials,
    open_study,
    run_trials,
    spent_on_trials,
    study_result,
)

if TYPE_CHECKING:
    import optuna

_DEADLINE = "tune.deadline"  # in ctx.scratch: one budget for the workers and the leftovers


def tune(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    import optuna

    spec = ctx.spec
    metric = from_info(inputs["target_info"]).ranking_metric(spec)
    workers = spec.models.workers
    studies = _open_studies(ctx, inputs)
    for study in studies.values():  # alone, or the workers have exited: a trial still running was a crashed one's
        fail_abandoned_trials(study, ctx)
    deadline = ctx.scratch.pop(_DEADLINE) if _DEADLINE in ctx.scratch else _deadline(ctx, studies)
    # alone, or whatever the workers left owing (one crashed, or started late): a seed no worker used,
    # so the leftover trials do not replay a worker's first samples
    run_trials(ctx, inputs, seed_offset=workers if workers > 1 else 0, deadline=deadline)
    results: dict[str, dict[str, Any]] = {}
    for candidate, study in studies.items():  # study.trials reads the storage: the workers' trials too
        result = study_result(study)
        if result is None and deadline is not None:  # the budget ran out before its defaults: others compete
            ctx.logger.warning("%s: no trial finished within models.timeout; left out", candidate)
            continue
        if result is None:
            raise StageError(f"tuning {candidate}: no trial completed", hint="raise models.n_trials or models.timeout")
        results[candidate] = result
    if not results:
        raise StageError("tuning: no trial completed within models.timeout", hint="raise models.timeout")
    direction = next(iter(studies.values())).direction
    pick = min if direction == optuna.study.StudyDirection.MINIMIZE else max
    best = pick(results, key=lambda name: results[name]["best_value"])
    summary = ", ".join(f"{name} {r['best_value']:.4f}" for name, r in results.items())
    return StageOutput(
        artifacts={
            "tuning": {
                "metric": metric,
                "direction": direction.name.lower(),
                "best_candidate": best,
                "candidates": results,
            }
        },
        metrics={f"cv_{metric}_{name}": r["best_value"] for name, r in results.items()},
        summary=f"best {best} ({summary})",
    )


def _open_studies(ctx: RunContext, inputs: Mapping[str, Any]) -> dict[str, optuna.Study]:
    task = from_info(inputs["target_info"])
    metric = task.ranking_metric(ctx.spec)
    return {candidate: open_study(ctx, candidate, metric) for candidate in task.candidates(ctx.spec)}


def _deadline(ctx: RunContext, studies: Mapping[str, optuna.Study]) -> float | None:
    """`models.timeout` from now, less what earlier trials of this tuning spent (a resumed run)."""
    spent = spent_on_trials(studies.values()) if ctx.spec.models.timeout_seconds else 0.0
    if spent:
        ctx.logger.info("earlier trials of this tuning spent %.0f s of models.timeout", spent)
    return budget_deadline(ctx.spec, spent)


def _trials_owed(ctx: RunContext, inputs: Mapping[str, Any]) -> bool:
    """Before the workers start (this is the only process): whether any trial is owed; sets the budget."""
    spec = ctx.spec
    studies = _open_studies(ctx, inputs)
    for study in studies.values():  # the only process now: no trial can still be running
        fail_abandoned_trials(study, ctx)
    ctx.scratch[_DEADLINE] = _deadline(ctx, studies)
    cap = spec.models.n_trials
    owed = sum(cap - len(done_trials(study)) for study in studies.values()) if cap is not None else 1
    if owed > 0:
        ctx.logger.info("tuning with %d worker processes", spec.models.workers)
    return owed > 0


def _worker_trials(ctx: RunContext, inputs: Mapping[str, Any], worker: int, workers: int) -> None:
    """One worker's trials; a spawned worker or a mapped task has no deadline handed over and computes it."""
    run_trials(ctx, inputs, worker, workers, deadline=ctx.scratch.get(_DEADLINE))


STAGE = Stage(
    name="tune",
    func=tune,
    needs=("train", "preprocessor", "feature_schema", "target_info"),
    makes=("tuning",),
    fan_out=FanOut(workers=lambda spec: spec.models.workers, work=_worker_trials, prepare=_trials_owed),
    # only what scores a trial: a new promotion gate or fairness rule must not re-tune
    spec_sections=(
        "models",
        "evaluation.metric",
        "evaluation.decision_threshold",
        "evaluation.threshold_metric",
        "target",
        "task",
        "seed",
        "forecast",
        "anomaly",
    ),
    code=(
        "retrainer.tuning",
        "retrainer.models",
        "retrainer.fitting",
        "retrainer.metrics",
        "retrainer.tasks",
    ),
)
