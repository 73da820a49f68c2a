"""Running a worker's trials: every candidate's study, its known-good defaults first.

Trials cross-validate on at most `models.tune_rows` rows (a stratified sample); train refits on all
of them. XGBoost/LightGBM stop early inside each fold (`models.early_stopping_rounds`); the trial
records the mean best iteration, and train refits with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError
from retrainer.fitting import cross_validate
from retrainer.models import default_params, search_space, suggest
from retrainer.tasks import Task, from_info
from retrainer.tuning.budget import (
    budget_deadline,
    candidate_records,
    model_width,
    spend_budget,
    spent_on_trials,
    trial_work,
    uses_holdout,
)
from retrainer.tuning.claims import claim_lock, claim_trial, run_claimed_trial, share_of
from retrainer.tuning.studies import done_trials, open_study, study_group
from retrainer.tuning.warm_start import champion_params, params_in_space

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from retrainer.pipeline import RunContext
    from retrainer.spec import Spec


def tuning_rows(
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: Spec,
    task: Task | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """At most `models.tune_rows` rows for the trials: a stratified, seeded sample of a larger split.

    Ranking configurations needs far fewer rows than the final fit: on ten million rows every trial
    would cost minutes, so trials see a sample and train refits the winner on every row.
    """
    cap = spec.models.tune_rows
    if cap is None or len(y) <= cap:
        return X, y
    import numpy as np

    rows, _ = (task or from_info(None)).holdout(y, len(y) - cap, spec.seed)
    rows = np.sort(rows)
    return X.iloc[rows], y[rows]


def run_trials(
    ctx: RunContext,
    inputs: Mapping[str, Any],
    worker: int = 0,
    workers: int = 1,
    seed_offset: int | None = None,
    deadline: float | None = None,
) -> None:
    """Run the trials each candidate still owes: all of them when alone, else this worker's part.

    Several workers take trials one at a time under a lock until each study holds its
    `models.n_trials` (`claim_lock`); where no lock fits the storage, each runs a share fixed before
    the first trial (computed later, it would see the trials other workers had finished meanwhile,
    and the shares would no longer add up to what was owed).
    With `models.timeout`, trials instead go where the budget buys most (`spend_budget`) until
    `deadline` (time.monotonic(); by default the timeout from now).
    """
    import numpy as np
    import optuna

    spec = ctx.spec
    task = from_info(inputs["target_info"])
    metric = task.ranking_metric(spec)
    train = inputs["train"]
    preprocessor = inputs["preprocessor"]
    columns = list(inputs["feature_schema"]["inputs"])
    X, y = train[columns], train[spec.target.column].to_numpy()  # noqa: N806
    strata = task.strata(y)
    counts = np.bincount(strata) if strata is not None else np.asarray([len(y)])
    rarer = int(counts[counts > 0].min())  # a class of the label set absent from this split is not a fold's worry
    if rarer < spec.models.cv_folds:
        # a property of the data, not a crash: reject the run, so nothing is registered and it is not retried
        raise DataValidationError(
            f"the rarer class has {rarer} rows in the training split; {spec.models.cv_folds}-fold cross-validation "
            f"needs at least {spec.models.cv_folds}",
            failures=[f"tune: {rarer} rows of the rarer class for {spec.models.cv_folds} folds"],
            hint="lower models.cv_folds or collect more rows of the rarer class",
        )
    all_rows = len(y)
    X, y = tuning_rows(X, y, spec, task)  # noqa: N806
    if len(y) < all_rows and worker == 0:
        ctx.logger.info("tuning on a stratified sample of %d of %d rows (models.tune_rows)", len(y), all_rows)
    candidates = task.candidates(spec)
    offset = worker if seed_offset is None else seed_offset
    studies = {candidate: open_study(ctx, candidate, metric, offset) for candidate in candidates}
    if deadline is None and spec.models.timeout_seconds:
        deadline = budget_deadline(spec, spent_on_trials(studies.values()))
    champion = champion_params(ctx) if worker == 0 and any(not s.trials for s in studies.values()) else None
    cap = spec.models.n_trials
    kind = task.estimator_type
    catalogue = spec.models.catalogue
    spaces = {
        c: search_space(c, spec.models.search_space.get(c), spec.models.params.get(c), kind, catalogue)
        for c in candidates
    }
    for candidate, study in studies.items():
        if not study.trials and worker == 0:  # known-good defaults first, enqueued once
            space = spaces[candidate]
            defaults = {k: v for k, v in default_params(candidate, kind, catalogue).items() if k in space}
            study.enqueue_trial(defaults, user_attrs={"proposal": "defaults"})
            if champion and champion[0] == candidate:
                warm = params_in_space(champion[1], space)
                ctx.logger.info("%s: warm start from the champion's params %s", candidate, warm)
                study.enqueue_trial(warm, user_attrs={"proposal": "champion"}, skip_if_exists=True)

    holdout = deadline is not None and uses_holdout(len(y), len(columns), spec)
    if holdout and worker == 0:
        ctx.logger.info(
            "%d rows x %d columns in a %s budget: each trial scores one fold", len(y), len(columns), spec.models.timeout
        )

    width = model_width(preprocessor, X, y, spec) if deadline is not None else 0

    def objective_for(candidate: str, stop_at: float | None = None) -> Callable[[optuna.Trial], float]:
        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial, spaces[candidate])
            if deadline is not None:
                work = trial_work(candidate, {**params, **spec.models.params.get(candidate, {})}, width)
                trial.set_user_attr("work", work)
                rate = candidate_records({candidate: trial.study})[candidate].seconds_per_work
                if stop_at is not None and rate and work * rate > stop_at - time.monotonic():
                    # FLAML's search is cost-frugal: a sample that cannot finish in time is not started
                    trial.set_user_attr("stopped", "too costly for the time left")
                    raise optuna.TrialPruned()
            return cross_validate(
                trial, candidate, params, preprocessor, X, y, spec, stop_at=stop_at, holdout=holdout, task=task
            )

        return objective

    def report_for(candidate: str) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
        def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            best = _best_value(study)
            if trial.state == optuna.trial.TrialState.PRUNED and not trial.intermediate_values:
                state = f"not started: {trial.user_attrs.get('stopped', 'pruned')}"
            elif trial.state == optuna.trial.TrialState.PRUNED:
                last = max(trial.intermediate_values, default=-1)
                state = f"pruned after fold {last + 1} (running {trial.intermediate_values.get(last, math.nan):.4f})"
            else:
                state = trial.state.name.lower() if trial.value is None else f"{trial.value:.4f}"
            near = " (near the best)" if trial.user_attrs.get("proposal") == "local" else ""
            ctx.logger.info("%s trial %d%s: %s (best %s)", candidate, trial.number, near, state, best)
            ctx.progress(candidate, len(done_trials(study)), cap, f"best {metric} {best}")

        return report

    if deadline is not None:
        fits_per_trial = 1 if holdout else spec.models.cv_folds
        spend_budget(
            ctx,
            studies,
            objective_for,
            report_for,
            deadline,
            spaces=spaces,
            fit_scale=all_rows / len(y) * spec.models.cv_folds / (spec.models.cv_folds - 1) / fits_per_trial,
            seed=offset,
        )
        return
    assert cap is not None  # the spec sets 10 when there is no timeout
    group = study_group(ctx)  # the studies of this run
    claim = claim_lock(spec.models.study_storage, ctx.work_dir(), group) if workers > 1 else None
    owed_now = {candidate: cap - len(done_trials(study)) for candidate, study in studies.items()}
    for candidate in candidates:
        study = studies[candidate]
        finished = done_trials(study)
        if claim is not None:
            if owed_now[candidate] > 0:
                ctx.logger.info(
                    "%s: taking trials until %d are taken by %d workers (%d already finished)",
                    candidate,
                    cap,
                    workers,
                    len(finished),
                )
                ctx.progress(candidate, len(finished), cap)
            objective, report = objective_for(candidate), report_for(candidate)
            while (trial := claim_trial(study, cap, claim)) is not None:
                run_claimed_trial(study, trial, objective, report)
            continue
        owed = share_of(owed_now[candidate], worker, workers)
        if owed > 0:
            ctx.logger.info("%s: %d trials to run (%d already finished)", candidate, owed, len(finished))
            ctx.progress(candidate, len(finished), cap)
            study.optimize(objective_for(candidate), n_trials=owed, callbacks=[report_for(candidate)], catch=())


def _best_value(study: optuna.Study) -> str:
    try:
        value = study.best_value
    except ValueError:
        return "-"
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"
