"""Tune: Optuna (TPE, seeded) with stratified k-fold CV, one study per candidate.

Studies live in an Optuna journal file (`optuna.journal`, append-only, under a file lock, so worker
processes share it) in the stage's work directory, which is keyed by the stage's cache key: a run
killed mid-tune resumes with the trials it had finished, and only runs the ones still owed.
Each candidate's first trial is its known-good default configuration; with `models.warm_start`,
the production champion's parameters follow as a trial of the champion's candidate. The pruner
(`models.pruner`: median or hyperband, the folds being its steps) stops a trial whose running CV
score after a fold trails the earlier trials. XGBoost/LightGBM stop early inside each fold
(`models.early_stopping_rounds`); the trial records the mean best iteration, and train refits with it.
`models.timeout` is one wall-clock budget for all candidates: each gets an equal share of what is
left when its turn comes, so time a candidate did not use goes to the ones after it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError, StageError
from retrainer.metrics import LOWER_IS_BETTER, score
from retrainer.models import CATALOGUE, build_estimator, search_space, suggest
from retrainer.models.fitting import fit_model
from retrainer.pipeline import RunContext, Stage, StageOutput

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from retrainer.spec import Spec


def make_model(preprocessor: Any, candidate: str, params: dict[str, Any], spec: Spec, calibrate: bool = False) -> Any:
    """The full model: a fresh copy of the preprocessing followed by the estimator (calibrated if asked)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    fixed = spec.models.params.get(candidate, {})
    estimator = build_estimator(candidate, {**params, **fixed}, spec.seed, spec.models.n_jobs)
    if calibrate and spec.models.calibration != "none":
        from sklearn.calibration import CalibratedClassifierCV

        estimator = CalibratedClassifierCV(estimator, method=spec.models.calibration, cv=spec.models.cv_folds)
    return Pipeline([("preprocess", clone(preprocessor)), ("model", estimator)])


def cross_validate(
    trial: optuna.Trial | None,
    candidate: str,
    params: dict[str, Any],
    preprocessor: Any,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: Spec,
) -> float:
    """Mean CV score; reports each fold's running mean to Optuna so the pruner can stop early.

    A booster's best iteration per fold (early stopping) is kept on the trial as `best_iteration`.
    """
    import numpy as np
    import optuna
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=spec.models.cv_folds, shuffle=True, random_state=spec.seed)
    fixed = {**params, **spec.models.params.get(candidate, {})}
    scores: list[float] = []
    iterations: list[int] = []
    for fold, (fit_rows, score_rows) in enumerate(folds.split(X, y)):
        model = make_model(preprocessor, candidate, params, spec)
        best = fit_model(
            model,
            candidate,
            fixed,
            X.iloc[fit_rows],
            y[fit_rows],
            early_stopping_rounds=spec.models.early_stopping_rounds,
            seed=spec.seed,
        )
        if best is not None:
            iterations.append(best)
        proba = model.predict_proba(X.iloc[score_rows])[:, 1]
        scores.append(score(spec.evaluation.metric, y[score_rows], proba, spec.evaluation.decision_threshold))
        if trial is not None:
            if iterations:
                trial.set_user_attr("best_iteration", round(float(np.mean(iterations))))
            trial.report(float(np.mean(scores)), fold)
            if trial.should_prune():
                raise optuna.TrialPruned()
    return float(np.mean(scores))


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


def open_study(ctx: RunContext, candidate: str, seed_offset: int = 0) -> optuna.Study:
    """This run's study for one candidate; the name holds the stage key, so shared storage never mixes runs."""
    import optuna

    spec = ctx.spec
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=f"{spec.name}.{ctx.cache_key}.{candidate}",
        storage=study_storage(ctx),
        load_if_exists=True,
        direction="minimize" if spec.evaluation.metric in LOWER_IS_BETTER else "maximize",
        # each worker its own seed: the same seed would make parallel workers sample the same points
        sampler=optuna.samplers.TPESampler(seed=spec.seed + seed_offset, n_startup_trials=min(5, spec.models.n_trials)),
        pruner=_pruner(spec),
    )


def _pruner(spec: Spec) -> optuna.pruners.BasePruner:
    """Folds are the steps: a trial can be stopped after any fold but the last."""
    import optuna

    if spec.models.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.models.cv_folds, reduction_factor=3)
    if spec.models.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def share_of(owed: int, worker: int, workers: int) -> int:
    """Worker `worker`'s share of `owed` trials: the shares add up to exactly `owed`."""
    return owed // workers + (1 if worker < owed % workers else 0)


def run_trials(
    ctx: RunContext, inputs: Mapping[str, Any], worker: int = 0, workers: int = 1, seed_offset: int | None = None
) -> None:
    """Run this worker's share of the trials each candidate still owes (all of them when alone).

    Every candidate's share is fixed before the first trial: computed later, it would see the trials
    other workers had finished meanwhile, and the shares would no longer add up to what was owed.
    """
    import optuna

    spec = ctx.spec
    train = inputs["train"]
    preprocessor = inputs["preprocessor"]
    columns = list(inputs["feature_schema"]["inputs"])
    X, y = train[columns], train[spec.target.column].to_numpy()  # noqa: N806
    rarer = min(int(y.sum()), int(len(y) - y.sum()))
    if rarer < spec.models.cv_folds:
        # a property of the data, not a crash: reject the run, so nothing is registered and it is not retried
        raise DataValidationError(
            f"the rarer class has {rarer} rows in the training split; {spec.models.cv_folds}-fold cross-validation "
            f"needs at least {spec.models.cv_folds}",
            failures=[f"tune: {rarer} rows of the rarer class for {spec.models.cv_folds} folds"],
            hint="lower models.cv_folds or collect more rows of the rarer class",
        )
    deadline = time.monotonic() + spec.models.timeout_seconds if spec.models.timeout_seconds else None
    candidates = spec.models.candidates
    offset = worker if seed_offset is None else seed_offset
    studies = {candidate: open_study(ctx, candidate, offset) for candidate in candidates}
    champion = _champion_params(ctx) if worker == 0 and any(not s.trials for s in studies.values()) else None
    owed_now = {candidate: spec.models.n_trials - len(_done_trials(study)) for candidate, study in studies.items()}
    for index, candidate in enumerate(candidates):
        study = studies[candidate]
        space = search_space(candidate, spec.models.search_space.get(candidate), spec.models.params.get(candidate))
        finished = _done_trials(study)
        if not study.trials and worker == 0:  # known-good defaults first, enqueued once
            study.enqueue_trial({k: v for k, v in CATALOGUE[candidate].defaults.items() if k in space})
            if champion and champion[0] == candidate:
                warm = _in_space(champion[1], space)
                ctx.logger.info("%s: warm start from the champion's params %s", candidate, warm)
                study.enqueue_trial(warm, skip_if_exists=True)
        owed = share_of(owed_now[candidate], worker, workers)
        budget = None
        if deadline is not None:
            budget = max(1.0, (deadline - time.monotonic()) / (len(candidates) - index))

        def objective(trial: optuna.Trial, candidate: str = candidate, space: dict[str, Any] = space) -> float:
            return cross_validate(trial, candidate, suggest(trial, space), preprocessor, X, y, spec)

        def report(study: optuna.Study, trial: optuna.trial.FrozenTrial, candidate: str = candidate) -> None:
            best = _best_value(study)
            if trial.state == optuna.trial.TrialState.PRUNED:
                last = max(trial.intermediate_values, default=-1)
                state = f"pruned after fold {last + 1} (running {trial.intermediate_values.get(last, math.nan):.4f})"
            else:
                state = trial.state.name.lower() if trial.value is None else f"{trial.value:.4f}"
            ctx.logger.info("%s trial %d: %s (best %s)", candidate, trial.number, state, best)
            ctx.progress(
                candidate, len(_done_trials(study)), spec.models.n_trials, f"best {spec.evaluation.metric} {best}"
            )

        if owed > 0:
            ctx.logger.info("%s: %d trials to run (%d already finished)", candidate, owed, len(finished))
            ctx.progress(candidate, len(finished), spec.models.n_trials)
            study.optimize(objective, n_trials=owed, timeout=budget, callbacks=[report], catch=())


def tune(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    import optuna

    spec = ctx.spec
    workers = spec.models.workers
    studies = {candidate: open_study(ctx, candidate) for candidate in spec.models.candidates}
    for study in studies.values():  # the only process now: no trial can still be running
        _fail_abandoned_trials(study, ctx)
    owed = sum(spec.models.n_trials - len(_done_trials(study)) for study in studies.values())
    if workers > 1 and owed > 0:  # under Airflow, mapped worker tasks have already run the trials
        _run_with_worker_processes(ctx, inputs, workers)
    # alone, or whatever the workers left owing (one crashed, or started late): a seed no worker used,
    # so the leftover trials do not replay a worker's first samples
    run_trials(ctx, inputs, seed_offset=workers if workers > 1 else 0)
    results: dict[str, dict[str, Any]] = {}
    for candidate, study in studies.items():  # study.trials reads the storage: the workers' trials too
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise StageError(f"tuning {candidate}: no trial completed", hint="raise models.n_trials or models.timeout")
        results[candidate] = {
            "best_value": study.best_value,
            "best_params": study.best_params,
            "best_iteration": study.best_trial.user_attrs.get("best_iteration"),
            "n_trials": len(_done_trials(study)),
            "n_complete": len(complete),
            "n_pruned": len([t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]),
            "history": [
                {
                    "number": t.number,
                    "value": t.value,
                    "state": t.state.name,
                    "params": t.params,
                    "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
                }
                for t in study.trials
            ],
        }
    direction = next(iter(studies.values())).direction
    pick = min if direction == optuna.study.StudyDirection.MINIMIZE else max
    best = pick(results, key=lambda name: results[name]["best_value"])
    summary = ", ".join(f"{name} {r['best_value']:.4f}" for name, r in results.items())
    return StageOutput(
        artifacts={
            "tuning": {
                "metric": spec.evaluation.metric,
                "direction": direction.name.lower(),
                "best_candidate": best,
                "candidates": results,
            }
        },
        metrics={f"cv_{spec.evaluation.metric}_{name}": r["best_value"] for name, r in results.items()},
        summary=f"best {best} ({summary})",
    )


def _run_with_worker_processes(ctx: RunContext, inputs: Mapping[str, Any], workers: int) -> None:
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
        run_trials(ctx, inputs, 0, workers)
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        ctx.logger.warning("%d of %d tuning workers failed (exit codes %s)", len(failed), workers, failed)


def _champion_params(ctx: RunContext) -> tuple[str, dict[str, str]] | None:
    """The production champion's candidate and logged params, or None (no champion, registry unreachable)."""
    if not ctx.spec.models.warm_start:
        return None
    try:
        registry = ctx.registry
        if registry.tracking_uri.startswith("sqlite:///") and not Path(registry.tracking_uri[10:]).exists():
            return None  # no MLflow store yet, so no champion: don't create one (migrations cost seconds)
        champion = registry.by_alias(ctx.spec.registry_name, "champion")
        if champion is None or not champion.run_id:
            return None
        params = dict(registry.client.get_run(champion.run_id).data.params)
    except Exception as error:  # noqa: BLE001 - a warm start is a bonus: tuning goes on without it
        ctx.logger.warning("no warm start from the champion: %s", error)
        return None
    return params.pop("candidate", ""), params


def _in_space(logged: dict[str, str], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """MLflow params are strings: turn those inside the search space back into values Optuna accepts."""
    values: dict[str, Any] = {}
    for param, bounds in space.items():
        text = logged.get(param)
        if text is None:
            continue
        if "choices" in bounds:
            matches = [choice for choice in bounds["choices"] if str(choice) == text]
            if matches:
                values[param] = matches[0]
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        if isinstance(bounds["low"], int) and isinstance(bounds["high"], int):
            number = round(number)
        if bounds["low"] <= number <= bounds["high"]:
            values[param] = number
    return values


def _done_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget: completed or pruned (a failed trial is owed again)."""
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def _fail_abandoned_trials(study: optuna.Study, ctx: RunContext) -> None:
    """Trials left RUNNING by a killed process would never finish: mark them failed before resuming."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        ctx.logger.warning(
            "trial %d of %s was left running by an interrupted run; marking it failed", trial.number, study.study_name
        )
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _best_value(study: optuna.Study) -> str:
    try:
        value = study.best_value
    except ValueError:
        return "-"
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


STAGE = Stage(
    name="tune",
    func=tune,
    needs=("train", "preprocessor", "feature_schema"),
    makes=("tuning",),
    spec_sections=("models", "evaluation", "target", "seed"),
    code=("retrainer.models", "retrainer.models.fitting", "retrainer.models.mlp", "retrainer.metrics"),
)
