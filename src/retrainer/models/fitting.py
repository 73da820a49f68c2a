"""Fitting a candidate's pipeline: early stopping for the boosters, out-of-fold scores, the threshold.

Early stopping holds out a stratified share of the rows it is given (a CV training fold), fits the
preprocessing on the rest and lets XGBoost/LightGBM stop when the held-out log loss stops falling.
The best iteration is returned so tuning can record it and the final model can be refit on all the
training rows with exactly that many trees (no rows held back, no early stopping at refit).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.models import EARLY_STOPPING, fit_params

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

VALIDATION_SHARE = 0.15  # of each training fold, held out to decide when a booster stops


def fit_model(
    model: Any,
    candidate: str,
    params: dict[str, Any],
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    *,
    early_stopping_rounds: int = 0,
    seed: int = 0,
) -> int | None:
    """Fit `model` (preprocess + estimator); the best iteration when a booster stopped early, else None."""
    extra = fit_params(candidate, params, y)
    if not early_stopping_rounds or candidate not in EARLY_STOPPING:
        model.fit(X, y, **extra)
        return None
    import numpy as np
    from sklearn.model_selection import train_test_split

    fit_rows, val_rows = train_test_split(np.arange(len(y)), test_size=VALIDATION_SHARE, stratify=y, random_state=seed)
    preprocess, estimator = model[:-1], model[-1]
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
) -> np.ndarray:
    """Each training row's positive-class probability from a model that never saw it."""
    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    proba = np.zeros(len(y), dtype=float)
    for fit_rows, score_rows in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(X, y):
        model = model_factory()
        fit_model(model, candidate, params, X.iloc[fit_rows], y[fit_rows])
        proba[score_rows] = model.predict_proba(X.iloc[score_rows])[:, 1]
    return proba


def best_threshold(metric: str, y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """The probability cut (0.05..0.95, step 0.01) that maximizes `metric`; ties go to the one nearest 0.5."""
    import numpy as np

    from retrainer.metrics import score

    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    scored = [(score(metric, y, proba, float(cut)), -abs(float(cut) - 0.5), float(cut)) for cut in grid]
    value, _, cut = max(scored)
    return cut, value
