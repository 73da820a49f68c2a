"""The sections about the models: candidates and tuning, evaluation and fairness, promotion and tracking."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from retrainer.metrics import METRICS, REGISTRY
from retrainer.models import CATALOGUE, CLASSIFIER, DEFAULT_CANDIDATES, Candidate, range_problem
from retrainer.spec.common import _did_you_mean, _Section, parse_duration

CANDIDATES = tuple(CATALOGUE)


class OwnEstimator(_Section):
    """A candidate of your own: any scikit-learn-compatible estimator importable where retrainer runs.

    Checked when the spec loads (imported, built with `params`, its methods and ranges read), then
    tuned, trained, gated, compared, explained, registered and served like a built-in candidate."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_\-]*$", description="Its name in the run (not a built-in's).")
    estimator: str = Field(
        description="'package.module:ClassOrFactory', called with params and each trial's values, e.g. "
        "'sklearn.ensemble:HistGradientBoostingClassifier'."
    )
    search_space: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per param: {low, high, log} or {choices}, as for the built-ins."
    )
    params: dict[str, Any] = Field(default_factory=dict, description="Fixed keyword arguments.")

    @model_validator(mode="after")
    def _usable(self) -> OwnEstimator:
        if self.name in CATALOGUE:
            raise ValueError(f"name {self.name!r} is a built-in candidate; give your estimator another name")
        self.candidate()  # imports and builds it once: every problem is a load-time error
        return self

    def candidate(self) -> Candidate:
        """Its catalogue entry (the import is cached per process)."""
        from retrainer.models.custom import custom_candidate

        return custom_candidate(self.name, self.estimator, self.search_space, self.params)


def _entry_kind(value: Any) -> str:
    return "own-estimator" if isinstance(value, dict | OwnEstimator) else "builtin-candidate"


# a built-in's name or a mapping for your own: told apart first, so an error speaks of the one meant
CandidateEntry = Annotated[
    Annotated[str, Tag("builtin-candidate")] | Annotated[OwnEstimator, Tag("own-estimator")], Discriminator(_entry_kind)
]


class ModelsSpec(_Section):
    """Candidate algorithms and the Optuna search over them."""

    candidates: list[CandidateEntry] | None = Field(
        None,
        description=(
            f"Algorithms to tune: any of {', '.join(CANDIDATES)} (`mlp` is opt-in), or your own estimator as "
            "{name, estimator: 'package.module:Class', search_space, params}. Default: "
            f"{', '.join(DEFAULT_CANDIDATES[CLASSIFIER])} for classifiers; ridge instead of logistic_regression "
            "for regression."
        ),
    )
    n_trials: int | None = Field(
        None,
        ge=1,
        description=(
            "Optuna trials per candidate. 10 when there is no `timeout`; with a `timeout` and no n_trials, "
            "tuning runs trials until the budget is spent; with both, n_trials caps each candidate."
        ),
    )
    timeout: str | None = Field(
        None,
        description=(
            "Wall-clock budget for tuning and the final fit, e.g. '10m', '90s': every candidate's default first, "
            "then more trials go to the candidates likeliest to improve per second spent."
        ),
    )
    tune_rows: int | None = Field(
        250_000,
        ge=100,
        description=(
            "Most rows a tuning trial cross-validates on: a larger training split is sampled down (stratified, "
            "seeded) for tuning only; the final model trains on every row. null: tune on all rows."
        ),
    )
    cv_folds: int = Field(3, ge=2, le=20, description="Cross-validation folds scoring each trial.")
    n_jobs: int = Field(1, ge=1, description="Threads per model fit (keep low on small machines).")
    workers: int = Field(1, ge=1, le=64, description="Tuning processes (or Airflow tasks) sharing one study.")
    study_storage: str | None = Field(
        None, description="Optuna storage URL shared by workers (e.g. PostgreSQL); default a journal file in the store."
    )
    params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Fixed params per candidate.")
    search_space: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Per candidate, per param: {low, high, log} or {choices}; replaces the default range.",
    )
    pruner: Literal["median", "hyperband", "none"] = Field(
        "median", description="Stops a trial whose running CV score after a fold trails earlier trials."
    )
    early_stopping_rounds: int = Field(
        30, ge=0, description="XGBoost/LightGBM stop after this many rounds without gain on a validation split; 0 off."
    )
    warm_start: bool = Field(True, description="Enqueue the production champion's params as a trial of its candidate.")
    calibration: Literal["none", "isotonic", "sigmoid"] = Field(
        "none", description="Calibrate the final model's probabilities (CalibratedClassifierCV over cv_folds)."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_trials(cls, data: Any) -> Any:
        """Ten trials per candidate unless a timeout bounds tuning instead (then trials fill the budget)."""
        if isinstance(data, dict) and data.get("n_trials") is None and data.get("timeout") is None:
            return {**data, "n_trials": 10}
        return data

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[Any] | None) -> list[Any] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one candidate")
        names = [entry if isinstance(entry, str) else entry.name for entry in value]
        for name in (entry for entry in value if isinstance(entry, str)):
            if name not in CANDIDATES:  # a bare name is a built-in; your own estimator is a mapping
                raise ValueError(
                    f"unknown candidate {name!r}{_did_you_mean(name, CANDIDATES)}; choose from {', '.join(CANDIDATES)}"
                )
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"candidate {twice[0]!r} is listed twice")
        return value

    @field_validator("search_space")
    @classmethod
    def _valid_ranges(cls, value: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
        for candidate, space in value.items():
            for param, bounds in space.items():
                problem = range_problem(param, bounds)
                if problem:
                    raise ValueError(f"{candidate}.{problem}")
        return value

    @property
    def names(self) -> list[str] | None:
        """The candidates' names (built-in or your own), or None for the task's defaults."""
        if self.candidates is None:
            return None
        return [entry if isinstance(entry, str) else entry.name for entry in self.candidates]

    @property
    def own_code_versions(self) -> dict[str, str]:
        """Per own estimator, its package's version and module's hash (part of the stages' cache keys)."""
        from retrainer.models.custom import code_version

        return {
            entry.name: code_version(entry.estimator) for entry in self.candidates or () if not isinstance(entry, str)
        }

    @property
    def catalogue(self) -> dict[str, Candidate]:
        """The built-in candidates and this spec's own estimators: what every stage builds models from."""
        own = [entry.candidate() for entry in self.candidates or () if not isinstance(entry, str)]
        return {**CATALOGUE, **{candidate.name: candidate for candidate in own}}

    @field_validator("timeout")
    @classmethod
    def _valid_timeout(cls, value: str | None) -> str | None:
        # a zero budget leaves tuning nothing to run (no trial, no default fit): say so here, not in tune
        if value is not None and parse_duration(value) <= 0:
            raise ValueError("the tuning budget must be more than 0 (e.g. 90s, 10m); leave it out for n_trials alone")
        return value

    @property
    def timeout_seconds(self) -> float | None:
        return parse_duration(self.timeout) if self.timeout else None


class FairnessSpec(_Section):
    """Group fairness of the challenger's decisions on the test set; a failure rejects the run."""

    group_column: str = Field(description="Column whose values (or bins) form the groups, e.g. age.")
    bins: list[float] | None = Field(None, description="Bin edges for a numeric column, e.g. [0, 25, 200].")
    min_group_size: int = Field(5, ge=1, description="Smaller groups are reported but not judged.")
    min_disparate_impact: float | None = Field(
        0.8,
        ge=0,
        le=1,
        description=(
            "Lowest / highest positive-prediction rate across groups (multiclass: each class's selection rate)."
        ),
    )
    max_equalized_odds_difference: float | None = Field(
        None, ge=0, le=1, description="Binary: largest gap in TPR or FPR between groups."
    )
    max_accuracy_gap: float | None = Field(
        None, ge=0, le=1, description="Multiclass: largest gap in accuracy between groups."
    )
    max_mae_ratio: float | None = Field(None, ge=1, description="Regression: highest / lowest group MAE.")
    max_residual_gap: float | None = Field(
        None, ge=0, description="Regression: largest gap between groups' mean residuals (bias), in target units."
    )

    @field_validator("bins")
    @classmethod
    def _increasing(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and (len(value) < 3 or any(b <= a for a, b in itertools.pairwise(value))):
            raise ValueError("bins must be at least 3 increasing edges (2 groups), e.g. [0, 25, 200]")
        return value


class EvaluationSpec(_Section):
    """The metric that ranks models and the thresholds a model must reach to be registered."""

    metric: str | None = Field(
        None,
        description=(
            "The metric that ranks trials and candidates, and that compare uses by default; "
            "default roc_auc (binary), log_loss (multiclass), rmse (regression)."
        ),
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Gates: minimums, or maximums for lower-is-better metrics (log_loss, brier, rmse, mae ...).",
    )
    decision_threshold: float = Field(
        0.5, gt=0, lt=1, description="Binary only: probability above which a row is positive."
    )
    threshold_metric: Literal["f1", "accuracy"] | None = Field(
        None, description="Choose decision_threshold to maximize this metric on out-of-fold training predictions."
    )
    slices: list[str] = Field(default_factory=list, description="Columns whose segments are compared one by one.")
    slice_bins: dict[str, list[float]] = Field(default_factory=dict, description="Bin edges for numeric slice columns.")
    min_slice_size: int = Field(30, ge=1, description="Smaller slices are reported but never block promotion.")
    max_slice_regression: float = Field(
        0.02,
        ge=0,
        description=(
            "Largest allowed drop of the metric on any slice (for an error in the target's units, "
            "such as RMSE, a share of the champion's error on it)."
        ),
    )
    fairness: FairnessSpec | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRICS:
            raise ValueError(f"unknown metric {value!r}{_did_you_mean(value, METRICS)}")
        return value

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for name, bound in value.items():
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}{_did_you_mean(name, METRICS)}")
            if REGISTRY[name].bounded and not 0 <= bound <= 1:
                raise ValueError(f"threshold for {name} must be between 0 and 1, got {bound}")
        return value


class Improvement(_Section):
    """How much better a challenger must be than the champion, on `metric`."""

    metric: str | None = Field(None, description="Defaults to evaluation.metric.")
    absolute: float | None = Field(None, ge=0, description="E.g. 0.002 = at least 0.002 better on the metric.")
    relative: float | None = Field(None, ge=0, description="E.g. 0.01 = 1 % better than the champion.")

    @model_validator(mode="after")
    def _one_rule(self) -> Improvement:
        if self.absolute is not None and self.relative is not None:
            raise ValueError("give 'absolute' or 'relative', not both")
        if self.metric is not None and self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}{_did_you_mean(self.metric, METRICS)}")
        return self


class PromotionSpec(_Section):
    """Registry name and the rule a challenger must pass to replace the champion."""

    registry_name: str | None = Field(None, description="Registered model name; defaults to the pipeline name.")
    min_improvement: Improvement = Field(default_factory=Improvement)
    auto_promote: bool = Field(True, description="Move the champion alias when the challenger wins.")
    confidence: float | None = Field(
        None, gt=0, lt=1, description="When set, the paired-bootstrap CI of the gain must also exclude zero."
    )
    n_bootstrap: int = Field(1000, ge=100, le=100_000, description="Resamples of the test set for the CI.")
    bootstrap_rows: int | None = Field(
        100_000,
        ge=1000,
        description=(
            "Above this many test rows, each resample draws this many rows (the m-out-of-n bootstrap) and "
            "the CIs are rescaled to the whole test set: the cost stops growing with it. null: all rows."
        ),
    )

    lock_url: str | None = Field(
        None,
        description=(
            "PostgreSQL URL whose advisory lock guards promotions (default: the tracking URI when it is "
            "PostgreSQL, else a file lock in a local store)."
        ),
    )
    export_dir: str | None = Field(
        None, description="Also export each new champion to this plain file registry (<dir>/<model>/vN/model.pkl)."
    )

    @field_validator("lock_url")
    @classmethod
    def _postgres_lock(cls, value: str | None) -> str | None:
        if value is not None and value.split("://", 1)[0].split("+", 1)[0] not in ("postgresql", "postgres"):
            raise ValueError("must be a PostgreSQL URL, e.g. postgresql+psycopg://user@host/db (its advisory lock)")
        return value


class TrackingSpec(_Section):
    """Where MLflow keeps runs and the model registry."""

    uri: str | None = Field(None, description="MLflow tracking URI; default sqlite:///<store>/mlflow.db.")
    experiment: str | None = Field(None, description="Defaults to the pipeline name.")
