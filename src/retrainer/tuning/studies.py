"""Studies and their storage: one Optuna study per candidate, named by the tune stage's cache key.

Studies live in an Optuna journal file (`optuna.journal`, append-only, under a file lock, so worker
processes share it) in the stage's work directory, or in `models.study_storage` (PostgreSQL for
workers on many machines). The pruner (`models.pruner`: median or hyperband, the folds being its
steps) stops a trial whose running CV score after a fold trails the earlier trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.metrics import LOWER_IS_BETTER

if TYPE_CHECKING:
    import optuna

    from retrainer.pipeline import RunContext
    from retrainer.spec import Spec


def study_storage(ctx: RunContext) -> Any:
    """The spec's shared storage (PostgreSQL for workers on many machines), else a journal in the work dir.

    The journal costs about a tenth of SQLite's CPU per trial (measured: 40 trials with 3 pruning
    reports each, 0.2 s of CPU against 3.1 s through SQLAlchemy) and a run killed mid-write
    leaves a torn last line that Optuna ignores, so resuming still works.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    url = ctx.spec.models.study_storage
    if url is None:
        return optuna.storages.JournalStorage(JournalFileBackend(str(Path(ctx.work_dir()) / "optuna.journal")))
    if url.startswith("sqlite"):  # several worker processes share one SQLite file: wait, don't fail
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return url


def study_group(ctx: RunContext) -> str:
    """What the names of this tune stage's studies start with: the pipeline, the stage's cache key
    (shared storage never mixes runs of other inputs) and the generation of the stage's work
    directory. A crashed run resumes its studies; `--force` discards the work directory
    (`RunStore.discard_work_dir`), so it starts fresh studies, also in a shared PostgreSQL storage."""
    from retrainer.store import work_generation

    return f"{ctx.spec.name}.{ctx.cache_key}.{work_generation(ctx.work_dir())}"


def open_study(ctx: RunContext, candidate: str, metric: str, seed_offset: int = 0) -> optuna.Study:
    """This run's study for one candidate (`study_group`)."""
    import optuna

    spec = ctx.spec
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=f"{study_group(ctx)}.{candidate}",
        storage=study_storage(ctx),
        load_if_exists=True,
        direction="minimize" if metric in LOWER_IS_BETTER else "maximize",
        # each worker its own seed: the same seed would make parallel workers sample the same points
        sampler=optuna.samplers.TPESampler(
            seed=spec.seed + seed_offset, n_startup_trials=min(5, spec.models.n_trials or 5)
        ),
        pruner=pruner_for(spec),
    )


def pruner_for(spec: Spec) -> optuna.pruners.BasePruner:
    """Folds are the steps: a trial can be stopped after any fold but the last."""
    import optuna

    if spec.models.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.models.cv_folds, reduction_factor=3)
    if spec.models.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def done_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget: completed or pruned (a failed trial is owed again)."""
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def priced_out(trial: optuna.trial.FrozenTrial) -> bool:
    """A sample the budget refused before fitting anything (not a trial that ran and was pruned)."""
    return "stopped" in trial.user_attrs and not trial.intermediate_values


def fail_abandoned_trials(study: optuna.Study, ctx: RunContext) -> None:
    """Trials left RUNNING by a killed process would never finish: mark them failed before resuming."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        ctx.logger.warning(
            "trial %d of %s was left running by an interrupted run; marking it failed", trial.number, study.study_name
        )
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)


def study_result(study: optuna.Study) -> dict[str, Any] | None:
    """What the `tuning` artifact records of one candidate's study (its best trial, counts, history),
    or None when no trial of it completed."""
    import optuna

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    not_started = [t for t in done_trials(study) if priced_out(t)]
    return {
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
