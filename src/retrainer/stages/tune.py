"""Tune: Optuna (TPE, seeded) with stratified k-fold CV, one study per candidate (`retrainer.tuning`).

A run killed mid-tune resumes with the trials it had finished, and only runs the ones still owed.
Each candidate's first trial is its known-good default configuration; with `models.warm_start`,
the production champion's parameters follow as a trial of the champion's candidate. `models.timeout`
is one wall-clock budget for tuning and the final fit (`retrainer.tuning.budget`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrainer.errors import StageError
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import from_info
from retrainer.tuning import (
    budget_deadline,
    done_trials,
    fail_abandoned_trials,
    open_study,
    priced_out,
    run_trials,
    spent_on_trials,
)


def tune(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    import optuna

    spec = ctx.spec
    task = from_info(inputs["target_info"])
    metric = task.ranking_metric(spec)
    workers = spec.models.workers
    studies = {candidate: open_study(ctx, candidate, metric) for candidate in task.candidates(spec)}
    for study in studies.values():  # the only process now: no trial can still be running
        fail_abandoned_trials(study, ctx)
    spent = spent_on_trials(studies.values()) if spec.models.timeout_seconds else 0.0
    deadline = budget_deadline(spec, spent)  # one budget for the workers and the leftovers
    if spent:
        ctx.logger.info("earlier trials of this tuning spent %.0f s of models.timeout", spent)
    cap = spec.models.n_trials
    owed = sum(cap - len(done_trials(study)) for study in studies.values()) if cap is not None else 1
    if workers > 1 and owed > 0:  # under Airflow, mapped worker tasks have already run the trials
        _run_with_worker_processes(ctx, inputs, workers, deadline)
        for study in studies.values():  # the workers have exited: a trial still running was a crashed one's
            fail_abandoned_trials(study, ctx)
    # alone, or whatever the workers left owing (one crashed, or started late): a seed no worker used,
    # so the leftover trials do not replay a worker's first samples
    run_trials(ctx, inputs, seed_offset=workers if workers > 1 else 0, deadline=deadline)
    results: dict[str, dict[str, Any]] = {}
    for candidate, study in studies.items():  # study.trials reads the storage: the workers' trials too
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete and deadline is not None:  # the budget ran out before its defaults: others compete
            ctx.logger.warning("%s: no trial finished within models.timeout; left out", candidate)
            continue
        if not complete:
            raise StageError(f"tuning {candidate}: no trial completed", hint="raise models.n_trials or models.timeout")
        not_started = [t for t in done_trials(study) if priced_out(t)]
        results[candidate] = {
            "best_value": study.best_value,
            "best_params": study.best_params,
            "best_iteration": study.best_trial.user_attrs.get("best_iteration"),
            "n_trials": len(done_trials(study)) - len(not_started),  # trials that fitted a model
            "n_complete": len(complete),
            "n_pruned": len([t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]) - len(not_started),
            "n_not_started": len(not_started),  # sampled, then priced too costly for the time left
            "history": [
                {
                    "number": t.number,
                    "value": t.value,
                    "state": t.state.name,
                    "proposal": t.user_attrs.get("proposal", "sampler"),
                    "params": t.params,
                    "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
                }
                for t in study.trials
            ],
        }
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


def _run_with_worker_processes(
    ctx: RunContext, inputs: Mapping[str, Any], workers: int, deadline: float | None = None
) -> None:
    """`--workers N` on one machine: this process is worker 0, N-1 more run beside it on the same studies."""
    import multiprocessing

    from retrainer.executor import tune_worker

    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no forked OpenMP or SQLite state
    args = (ctx.spec.model_dump(mode="json"), ctx.run_id, ctx.as_of, workers)
    processes = [spawn.Process(target=tune_worker, args=(*args, worker), daemon=True) for worker in range(1, workers)]
    ctx.logger.info("tuning with %d worker processes", workers)
    for process in processes:
        process.start()
    try:
        run_trials(ctx, inputs, 0, workers, deadline=deadline)
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        ctx.logger.warning("%d of %d tuning workers failed (exit codes %s)", len(failed), workers, failed)


STAGE = Stage(
    name="tune",
    func=tune,
    needs=("train", "preprocessor", "feature_schema", "target_info"),
    makes=("tuning",),
    # only what scores a trial: a new promotion gate or fairness rule must not re-tune
    spec_sections=(
        "models",
        "evaluation.metric",
        "evaluation.decision_threshold",
        "evaluation.threshold_metric",
        "target",
        "task",
        "seed",
    ),
    code=(
        "retrainer.tuning",
        "retrainer.tuning.budget",
        "retrainer.tuning.claims",
        "retrainer.tuning.local_search",
        "retrainer.tuning.studies",
        "retrainer.tuning.trials",
        "retrainer.tuning.warm_start",
        "retrainer.models",
        "retrainer.models.fitting",
        "retrainer.models.mlp",
        "retrainer.metrics",
        "retrainer.models.scoring",
    ),
)
