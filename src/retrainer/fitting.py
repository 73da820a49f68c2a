"""Assembling and fitting a candidate's pipeline: the model, cross-validation, early stopping for the
boosters, out-of-fold scores, the threshold.

Early stopping holds out a stratified share of the rows it is given (a CV training fold), fits the
preprocessing on the rest and lets XGBoost/LightGBM stop when the held-out loss (log loss, or the
squared error of a regressor) stops falling. A regressor on a transformed target (`target.transform`)
fits without it: its booster sits inside the transform, and tuning searches `n_estimators` anyway.
The best iteration is returned so tuning can record it and the final model can be refit on all the
training rows with exactly that many trees (no rows held back, no early stopping at refit).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from retrainer.models import EARLY_STOPPING, build_estimator, fit_params

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import optuna
    import pandas as pd

    from retrainer.spec import Spec
    from retrainer.tasks import Task

VALIDATION_SHARE = 0.15  # of each training fold, held out to decide when a booster stops


def make_model(
    preprocessor: Any,
    candidate: str,
    params: dict[str, Any],
    spec: Spec,
    calibrate: bool = False,
    task: Task | None = None,
) -> Any:
    """The full model: a fresh copy of the preprocessing followed by the task's estimator (as the task
    wraps it: calibrated if asked, or on a transformed target)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    from retrainer.tasks import from_info

    task = task or from_info(None)
    fixed = spec.models.params.get(candidate, {})
    estimator = build_estimator(
        candidate, {**params, **fixed}, spec.seed, spec.models.n_jobs, task.estimator_type, spec.models.catalogue
    )
    return Pipeline([("preprocess", clone(preprocessor)), ("model", task.wrap(estimator, spec, calibrate))])


def cross_validate(
    trial: optuna.Trial | None,
    candidate: str,
    params: dict[str, Any],
    preprocessor: Any,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: Spec,
    stop_at: float | None = None,
    holdout: bool = False,
    task: Task | None = None,
) -> float:
    """Mean CV score; reports each fold's running mean to Optuna so the pruner can stop early.

    A booster's best iteration per fold (early stopping) is kept on the trial as `best_iteration`.
    With `stop_at` (time.monotonic()), a trial whose next fold would end past it is pruned: a slow
    trial started late must not overrun the budget. With `holdout`, only the first fold is fitted and
    scored (one fit a trial instead of k: what a tight budget on big data affords).
    """
    import numpy as np
    import optuna

    from retrainer.metrics import score
    from retrainer.tasks import from_info

    task = task or from_info(None)
    metric = task.ranking_metric(spec)
    fixed = {**params, **spec.models.params.get(candidate, {})}
    scores: list[float] = []
    iterations: list[int] = []
    started = time.monotonic()
    for fold, (fit_rows, score_rows) in enumerate(task.folds(y, spec.models.cv_folds, spec.seed)):
        model = make_model(preprocessor, candidate, params, spec, task=task)
        best = fit_model(
            model,
            candidate,
            fixed,
            X.iloc[fit_rows],
            y[fit_rows],
            early_stopping_rounds=spec.models.early_stopping_rounds,
            seed=spec.seed,
            task=task,
        )
        if best is not None:
            iterations.append(best)
        output = task.predict(model, X.iloc[score_rows])
        scores.append(score(metric, y[score_rows], output, spec.evaluation.decision_threshold))
        if holdout and trial is None:
            break
        if trial is not None:
            if iterations:
                trial.set_user_attr("best_iteration", round(float(np.mean(iterations))))
            trial.report(float(np.mean(scores)), fold)
            if holdout:
                break
            if trial.should_prune():
                raise optuna.TrialPruned()
            per_fold = (time.monotonic() - started) / (fold + 1)
            if stop_at is not None and fold + 1 < spec.models.cv_folds and time.monotonic() + per_fold > stop_at:
                trial.set_user_attr("stopped", "timeout")
                raise optuna.TrialPruned()
    return float(np.mean(scores))


def fit_model(
    model: Any,
    candidate: str,
    params: dict[str, Any],
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    *,
    early_stopping_rounds: int = 0,
    seed: int = 0,
    task: Task | None = None,
) -> int | None:
    """Fit `model` (preprocess + estimator); the best iteration when a booster stopped early, else None."""
    extra = fit_params(candidate, params, y)
    preprocess, estimator = model[:-1], model[-1]
    wrapped = estimator.__class__.__name__ == "TransformedTargetRegressor"
    # a forecaster's booster is fitted by mlforecast on its lags, with no rows to hold out
    stops = getattr(estimator, "early_stops", True)
    if not early_stopping_rounds or candidate not in EARLY_STOPPING or wrapped or not stops:
        model.fit(X, y, **extra)
        return None
    from retrainer.tasks import from_info

    fit_rows, val_rows = (task or from_info(None)).holdout(y, VALIDATION_SHARE, seed)
    fit_x = preprocess.fit_transform(X.iloc[fit_rows], y[fit_rows])
    val_x, val_y = preprocess.transform(X.iloc[val_rows]), y[val_rows]
    weights = extra.get("model__sample_weight")
    if candidate == "xgboost":
        estimator.set_params(early_stopping_rounds=early_stopping_rounds)
        fold_weights = None if weights is None else weights[fit_rows]
        estimator.fit(fit_x, y[fit_rows], sample_weight=fold_weights, eval_set=[(val_x, val_y)], verbose=False)
        return int(estimator.best_iteration) + 1
    import lightgbm

    estimator.fit(
        fit_x,
        y[fit_rows],
        eval_X=(val_x,),
        eval_y=(val_y,),
        callbacks=[lightgbm.early_stopping(early_stopping_rounds, verbose=False)],
    )
    return int(estimator.best_iteration_ or estimator.n_estimators)


def out_of_fold_proba(
    model_factory: Callable[[], Any],
    candidate: str,
    params: dict[str, Any],
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    folds: int,
    seed: int,
    task: Task | None = None,
) -> np.ndarray:
    """Each training row's output (a binary model's positive-class probability) from a model that never saw it."""
    import numpy as np

    from retrainer.tasks import from_info

    task = task or from_info(None)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for fit_rows, score_rows in task.folds(y, folds, seed):
        model = model_factory()
        fit_model(model, candidate, params, X.iloc[fit_rows], y[fit_rows], task=task)
        parts.append((score_rows, task.predict(model, X.iloc[score_rows])))
    output = np.zeros((len(y), *parts[0][1].shape[1:]), dtype=float)
    for score_rows, scored in parts:
        output[score_rows] = scored
    return output


def check_saveable(model: Any, candidate: str, spec: Spec) -> None:
    """Raise SpecError when the fitted `model` cannot go through skops (what MLflow saves it with):
    said after the final fit, before anything is registered, naming the candidate at fault."""
    import skops.io

    try:
        data = skops.io.dumps(model)
        skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    except Exception as error:  # noqa: BLE001  (skops raises many kinds; each means the same here)
        from retrainer.errors import SpecError

        own = spec.models.catalogue[candidate].estimator
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
        raise SpecError(
            f"models.candidates: {candidate}{f' ({own})' if own else ''}: its fitted model cannot be saved ({reason})",
            hint="keep fitted attributes to arrays, numbers, strings and scikit-learn objects (no lambdas or "
            "local classes): see docs/recipes/bring-your-own-model.md",
        ) from None


def best_threshold(metric: str, y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """The probability cut (0.05..0.95, step 0.01) that maximizes `metric`; ties go to the one nearest 0.5."""
    import numpy as np

    from retrainer.metrics import score

    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scored = [(score(metric, y, proba, float(cut)), -abs(float(cut) - 0.5), float(cut)) for cut in grid]
    value, _, cut = max(scored)
    return cut, value
