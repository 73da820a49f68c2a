"""The candidate algorithms: how to build each one, for which tasks, and where Optuna searches.

A search space is a dict of parameter -> range. A range is `{low, high}` (int when both are ints),
optionally `log: true`, or `{choices: [...]}`; the spec's `models.search_space` replaces a default
range per parameter and `models.params` fixes a parameter. `defaults` are known-good settings that
are enqueued as each candidate's first trial, so even a one-trial budget gets a sound model.

A candidate builds a classifier or a regressor (`kinds`; the task says which it needs): one name
per algorithm, so `xgboost` is XGBClassifier for binary and multiclass targets and XGBRegressor for
regression. `class_weight: balanced` weighs rarer classes up (classifiers only: it is dropped from
a regressor's space): natively for logistic regression, random forest, LightGBM and the MLP (a
weighted loss); XGBoost has no such parameter, so `fit_params` passes balanced sample weights
instead. `mlp` is opt-in (not in the default candidates): it needs torch; so is `one_class_svm` (anomaly),
whose fit grows with the square of the training rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import random

    import optuna

CLASSIFIER, REGRESSOR, FORECASTER = "classifier", "regressor", "forecaster"
ANOMALY_DETECTOR = "anomaly_detector"
CLASS_WEIGHT = "class_weight"  # a classifier-only parameter
FORECAST_ONLY = frozenset({"lags", "rolling_window", "difference"})  # mlforecast's features (forecasters only)


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[dict[str, Any], int, int, str], Any]  # (params, seed, n_jobs, kind) -> estimator
    space: dict[str, dict[str, Any]]
    defaults: dict[str, Any] = field(default_factory=dict)
    kinds: frozenset[str] = frozenset({CLASSIFIER, REGRESSOR})
    early_stopping: bool = False  # a booster that stops on an inner validation split
    requirements: tuple[str, ...] = ()  # pip packages its saved model needs beyond scikit-learn
    estimator: str | None = None  # a user's own estimator (`package.module:factory`, models/custom.py)


def _for_kind(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    dropped = (set() if kind == CLASSIFIER else {CLASS_WEIGHT}) | (set() if kind == FORECASTER else FORECAST_ONLY)
    return {k: v for k, v in params.items() if k not in dropped}


def _forecaster(method: str) -> Callable[[dict[str, Any], int, int, str], Any]:
    """A statsforecast model (no parameters: AutoETS, AutoARIMA and AutoTheta choose their own form)."""

    def build(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
        from retrainer.models.forecaster import Forecaster

        return Forecaster(method=method, params=dict(params), seed=seed)

    return build


def _detector(method: str) -> Callable[[dict[str, Any], int, int, str], Any]:
    """A scikit-learn anomaly detector with its cut-off (`models/anomaly.py`; the task sets the alert rate)."""

    def build(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
        from retrainer.models.anomaly import AnomalyDetector

        return AnomalyDetector(method=method, params=dict(params), seed=seed)

    return build


def _logistic_regression(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000, random_state=seed, **params)


def _ridge(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(random_state=seed, **params)


def _random_forest(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    forest = RandomForestClassifier if kind == CLASSIFIER else RandomForestRegressor
    return forest(random_state=seed, n_jobs=n_jobs, **_for_kind(kind, params))


def _xgboost(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from xgboost import XGBClassifier, XGBRegressor

    params = {k: v for k, v in params.items() if k != CLASS_WEIGHT}  # applied as sample weights at fit
    booster = XGBClassifier if kind == CLASSIFIER else XGBRegressor
    # no eval_metric: XGBoost's default follows the objective (logloss, mlogloss, rmse)
    return booster(random_state=seed, n_jobs=n_jobs, tree_method="hist", verbosity=0, **params)


def _lightgbm(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from lightgbm import LGBMClassifier, LGBMRegressor

    if kind == FORECASTER:  # LightGBM on lags, a rolling mean and calendar features, through mlforecast
        from retrainer.models.forecaster import Forecaster

        return Forecaster(method="lightgbm", params={"subsample_freq": 1, **_for_kind(kind, params)}, seed=seed)
    booster = LGBMClassifier if kind == CLASSIFIER else LGBMRegressor
    return booster(random_state=seed, n_jobs=n_jobs, verbose=-1, subsample_freq=1, **_for_kind(kind, params))


def _mlp(params: dict[str, Any], seed: int, n_jobs: int, kind: str) -> Any:
    from retrainer.models import mlp

    if kind == CLASSIFIER:
        return mlp.TorchMLPClassifier(random_state=seed, n_jobs=n_jobs, **params)
    return mlp.TorchMLPRegressor(random_state=seed, n_jobs=n_jobs, **_for_kind(kind, params))


CATALOGUE: dict[str, Candidate] = {
    candidate.name: candidate
    for candidate in (
        Candidate(
            "logistic_regression",
            _logistic_regression,
            space={"C": {"low": 1e-3, "high": 100.0, "log": True}, "class_weight": {"choices": [None, "balanced"]}},
            defaults={"C": 1.0, "class_weight": None},
            kinds=frozenset({CLASSIFIER}),
        ),
        Candidate(
            "ridge",
            _ridge,
            space={"alpha": {"low": 1e-3, "high": 100.0, "log": True}},
            defaults={"alpha": 1.0},
            kinds=frozenset({REGRESSOR}),
        ),
        Candidate(
            "random_forest",
            _random_forest,
            space={
                "n_estimators": {"low": 100, "high": 400},
                "max_depth": {"low": 3, "high": 16},
                "min_samples_leaf": {"low": 1, "high": 30, "log": True},
                "max_features": {"choices": ["sqrt", "log2", 0.5]},
                "class_weight": {"choices": [None, "balanced"]},
            },
            defaults={
                "n_estimators": 200,
                "max_depth": 10,
                "min_samples_leaf": 5,
                "max_features": "sqrt",
                "class_weight": None,
            },
        ),
        Candidate(
            "xgboost",
            _xgboost,
            space={
                "n_estimators": {"low": 50, "high": 500},
                "max_depth": {"low": 2, "high": 8},
                "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                "subsample": {"low": 0.6, "high": 1.0},
                "colsample_bytree": {"low": 0.5, "high": 1.0},
                "min_child_weight": {"low": 1.0, "high": 20.0, "log": True},
                "reg_lambda": {"low": 1e-3, "high": 10.0, "log": True},
                "class_weight": {"choices": [None, "balanced"]},
            },
            defaults={
                "n_estimators": 200,
                "max_depth": 3,
                "learning_rate": 0.05,
                "subsample": 0.9,
                "colsample_bytree": 0.8,
                "min_child_weight": 1.0,
                "reg_lambda": 1.0,
                "class_weight": None,
            },
            early_stopping=True,
            requirements=("xgboost",),
        ),
        Candidate(
            "lightgbm",
            _lightgbm,
            space={
                "n_estimators": {"low": 50, "high": 500},
                "num_leaves": {"low": 4, "high": 64, "log": True},
                "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                "min_child_samples": {"low": 5, "high": 100, "log": True},
                "subsample": {"low": 0.6, "high": 1.0},
                "colsample_bytree": {"low": 0.5, "high": 1.0},
                "reg_lambda": {"low": 1e-3, "high": 10.0, "log": True},
                "class_weight": {"choices": [None, "balanced"]},
                # forecasters only: the largest lag (1, 2, 3 and this one), the rolling mean's window, and
                # whether the trees learn period-on-period changes (a trend they cannot extrapolate)
                "lags": {"low": 3, "high": 24},
                "rolling_window": {"low": 2, "high": 12},
                "difference": {"choices": [True, False]},
            },
            defaults={
                "n_estimators": 200,
                "num_leaves": 8,
                "learning_rate": 0.05,
                "min_child_samples": 20,
                "subsample": 0.9,
                "colsample_bytree": 0.8,
                "reg_lambda": 1.0,
                "class_weight": None,
                "lags": 12,
                "rolling_window": 6,
                "difference": True,
            },
            kinds=frozenset({CLASSIFIER, REGRESSOR, FORECASTER}),
            early_stopping=True,
            requirements=("lightgbm", "mlforecast"),
        ),
        Candidate(
            "mlp",
            _mlp,
            space={
                "hidden_size": {"low": 16, "high": 256, "log": True},
                "n_layers": {"low": 1, "high": 3},
                "dropout": {"low": 0.0, "high": 0.5},
                "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
                "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
                "batch_size": {"choices": [64, 128, 256]},
                "class_weight": {"choices": [None, "balanced"]},
            },
            defaults={
                "hidden_size": 64,
                "n_layers": 2,
                "dropout": 0.1,
                "learning_rate": 1e-3,
                "weight_decay": 1e-5,
                "batch_size": 128,
                "class_weight": None,
            },
            requirements=("torch",),
        ),
        *(
            Candidate(
                name,
                _forecaster(name),
                space={},
                kinds=frozenset({FORECASTER}),
                requirements=("statsforecast",),
            )
            for name in ("seasonal_naive", "auto_ets", "auto_theta", "auto_arima")
        ),
        Candidate(
            "prophet",
            _forecaster("prophet"),
            # how far the trend may bend, and how strongly the seasons are held (Prophet's documented knobs)
            space={
                "changepoint_prior_scale": {"low": 0.001, "high": 0.5, "log": True},
                "seasonality_prior_scale": {"low": 0.01, "high": 10.0, "log": True},
                "seasonality_mode": {"choices": ["additive", "multiplicative"]},
            },
            defaults={
                "changepoint_prior_scale": 0.05,
                "seasonality_prior_scale": 10.0,
                "seasonality_mode": "additive",
            },
            kinds=frozenset({FORECASTER}),
            requirements=("prophet",),
        ),
        # anomaly detectors: fitted without labels (`task: anomaly`)
        Candidate(
            "isolation_forest",
            _detector("isolation_forest"),
            space={
                "n_estimators": {"low": 50, "high": 300},
                "max_samples": {"choices": [64, 128, 256, 512]},
                "max_features": {"low": 0.5, "high": 1.0},
            },
            defaults={"n_estimators": 100, "max_samples": 256, "max_features": 1.0},
            kinds=frozenset({ANOMALY_DETECTOR}),
        ),
        Candidate(
            "local_outlier_factor",
            _detector("local_outlier_factor"),
            space={"n_neighbors": {"low": 5, "high": 100, "log": True}},
            defaults={"n_neighbors": 20},
            kinds=frozenset({ANOMALY_DETECTOR}),
        ),
        Candidate(
            "elliptic_envelope",
            _detector("elliptic_envelope"),
            # the share of rows the robust covariance is estimated from
            space={"support_fraction": {"low": 0.6, "high": 0.99}},
            defaults={"support_fraction": 0.9},
            kinds=frozenset({ANOMALY_DETECTOR}),
        ),
        Candidate(
            "one_class_svm",
            _detector("one_class_svm"),
            # nu bounds the share of training rows outside the boundary; gamma the RBF kernel's width
            # on the standardised features (scikit-learn's gamma="scale" is 1 / n_features there)
            space={"nu": {"low": 0.01, "high": 0.5, "log": True}, "gamma": {"low": 0.001, "high": 10.0, "log": True}},
            defaults={"nu": 0.05, "gamma": 0.1},
            kinds=frozenset({ANOMALY_DETECTOR}),
        ),
    )
}
# what a spec without `models.candidates` tunes, by the kind of estimator its task needs
DEFAULT_CANDIDATES: dict[str, tuple[str, ...]] = {
    CLASSIFIER: ("logistic_regression", "random_forest", "xgboost", "lightgbm"),
    REGRESSOR: ("ridge", "random_forest", "xgboost", "lightgbm"),
    # seasonal_naive is the baseline every forecast run includes (`ForecastTask.candidates`)
    FORECASTER: ("seasonal_naive", "auto_ets", "auto_theta", "auto_arima", "lightgbm", "prophet"),
    # one_class_svm is opt-in: libsvm's fit grows with the square of the training rows
    ANOMALY_DETECTOR: ("isolation_forest", "local_outlier_factor", "elliptic_envelope"),
}
# left out of the defaults of a spec with `features.text`: slow on thousands of sparse TF-IDF columns
SLOW_ON_TEXT = frozenset({"random_forest"})
EARLY_STOPPING = frozenset(name for name, candidate in CATALOGUE.items() if candidate.early_stopping)


def search_space(
    name: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    fixed: dict[str, Any] | None = None,
    kind: str = CLASSIFIER,
    catalogue: Mapping[str, Candidate] = CATALOGUE,
) -> dict[str, dict[str, Any]]:
    """The candidate's default space for `kind`, the spec's ranges applied and fixed params removed.

    `catalogue` is the run's (`spec.models.catalogue`: the built-ins and the spec's own estimators)."""
    space = _for_kind(kind, {**catalogue[name].space, **(overrides or {})})
    return {param: bounds for param, bounds in space.items() if param not in (fixed or {})}


def default_params(name: str, kind: str = CLASSIFIER, catalogue: Mapping[str, Candidate] = CATALOGUE) -> dict[str, Any]:
    """The candidate's known-good first trial for `kind`."""
    return _for_kind(kind, catalogue[name].defaults)


def range_problem(param: str, bounds: Any) -> str | None:
    """What is wrong with one search-space range (`{low, high[, log]}` or `{choices}`), in words, or None."""
    if not isinstance(bounds, dict):
        return f"{param}: expected {{low, high}} or {{choices: [...]}}, got {bounds!r}"
    if "choices" in bounds:
        choices = bounds["choices"]
        if not isinstance(choices, list) or not choices or set(bounds) - {"choices"}:
            return f"{param}: choices must be a non-empty list, alone"
        return None
    if set(bounds) - {"low", "high", "log"} or not {"low", "high"} <= set(bounds):
        return f"{param}: expected {{low, high}} (and optionally log: true), got keys {', '.join(sorted(bounds))}"
    low, high = bounds["low"], bounds["high"]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    if not numbers:
        return f"{param}: low and high must be numbers, got {low!r} and {high!r}"
    if low > high:
        return f"{param}: low {low} is above high {high}"
    if bounds.get("log") and low <= 0:
        return f"{param}: a log range needs low > 0, got {low}"
    return None


def is_int_range(bounds: dict[str, Any]) -> bool:
    """A `{low, high}` range of integers (both ends ints, not bools): Optuna suggests ints from it."""
    low, high = bounds["low"], bounds["high"]
    return isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool)


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ask Optuna for one value per parameter of `space`."""
    params: dict[str, Any] = {}
    for param, bounds in space.items():
        if "choices" in bounds:
            params[param] = trial.suggest_categorical(param, bounds["choices"])
        elif is_int_range(bounds):
            params[param] = trial.suggest_int(param, bounds["low"], bounds["high"], log=bool(bounds.get("log")))
        else:
            params[param] = trial.suggest_float(
                param, float(bounds["low"]), float(bounds["high"]), log=bool(bounds.get("log"))
            )
    return params


def neighbour(
    params: dict[str, Any], space: dict[str, dict[str, Any]], step: float, draw: random.Random
) -> dict[str, Any]:
    """A point of `space` near `params`, for a local search around the incumbent (FLAML's CFO).

    Each range is seen as [0, 1] (its logarithm for a `log` range): a numeric parameter moves by a
    Gaussian of `step` and is clipped to its range (ints rounded); a categorical one takes another
    choice with probability `step`. A parameter missing from `params` (a range the spec widened
    since) starts from its range's middle.
    """
    point: dict[str, Any] = {}
    for param, bounds in space.items():
        value = params.get(param)
        if "choices" in bounds:
            choices = list(bounds["choices"])
            if value in choices and (len(choices) == 1 or draw.random() >= step):
                point[param] = value
            else:
                point[param] = draw.choice([choice for choice in choices if choice != value] or choices)
            continue
        low, high = bounds["low"], bounds["high"]
        to_unit = math.log if bounds.get("log") else float
        start, end = to_unit(low), to_unit(high)
        here = to_unit(value) if isinstance(value, int | float) and low <= value <= high else (start + end) / 2
        moved = min(end, max(start, here + draw.gauss(0.0, step) * (end - start)))
        number = math.exp(moved) if bounds.get("log") else moved
        if is_int_range(bounds):
            point[param] = min(high, max(low, round(number)))
        else:
            point[param] = min(float(high), max(float(low), number))
    return point


def build_estimator(
    name: str,
    params: dict[str, Any],
    seed: int,
    n_jobs: int = 1,
    kind: str = CLASSIFIER,
    catalogue: Mapping[str, Candidate] = CATALOGUE,
) -> Any:
    return catalogue[name].build(params, seed, n_jobs, kind)


def fit_params(name: str, params: dict[str, Any], y: Any) -> dict[str, Any]:
    """Extra `Pipeline.fit` arguments: XGBoost's balanced class weights arrive as sample weights."""
    if name == "xgboost" and params.get("class_weight") == "balanced":
        from sklearn.utils.class_weight import compute_sample_weight

        return {"model__sample_weight": compute_sample_weight("balanced", y)}
    return {}
