"""The pipeline spec: one YAML file, validated by pydantic, with defaults that run locally.

Loading does three things before validation: `${VAR}` / `${VAR:-default}` are replaced from the
environment (so secrets never sit in the file), `--env NAME` overlays `<spec>.NAME.yaml` on the
base file, and relative paths are resolved against the spec's own directory (so a spec runs the
same from any working directory).

    >>> spec = load_spec("examples/telco_churn/pipeline.yaml")
    >>> spec.target.column, spec.task   # the task is inferred from the target's values when omitted
    ('churn', None)
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from retrainer.errors import SpecError
from retrainer.metrics import METRICS, REGISTRY
from retrainer.models import CATALOGUE, CLASSIFIER, DEFAULT_CANDIDATES
from retrainer.spec_checks import SPEC_CHECKS

CANDIDATES = tuple(CATALOGUE)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Section):
    """Where the training data comes from: a SQLAlchemy URL with a query or table, or a file."""

    url: str | None = Field(
        None, description="SQLAlchemy URL, e.g. sqlite:///data.db or postgresql+psycopg://u@host/db."
    )
    query: str | None = Field(None, description="SQL query; may use :as_of, bound to the run's as_of date.")
    table: str | None = Field(None, description="Table to read whole (instead of query).")
    path: str | None = Field(None, description="Parquet or CSV file (instead of url).")
    params: dict[str, Any] = Field(default_factory=dict, description="Extra bind parameters for the query.")
    fingerprint: Literal["summary", "content"] = Field(
        "summary",
        description=(
            "How a SQL source is fingerprinted for caching: 'summary' runs one cheap aggregate query "
            "(row count, and max of time_column when set); 'content' hashes every extracted row."
        ),
    )
    connect_timeout: int = Field(10, ge=1, description="Seconds to wait for the database connection.")
    retries: int = Field(
        1, ge=0, le=10, description="Reads repeated after a lost or refused connection (not after a failed query)."
    )
    retry_delay: float = Field(1.0, ge=0, description="Seconds before the first repeat; doubled after each.")
    fast_extract: Literal["auto", "off"] = Field(
        "auto",
        description="PostgreSQL: stream rows with COPY into Arrow ('auto') instead of row-by-row read_sql ('off').",
    )
    chunk_rows: int = Field(
        100_000,
        ge=1_000,
        description=(
            "Rows per chunk when extract streams PostgreSQL (COPY) or a Parquet file into the run store: "
            "extract holds one chunk in memory, not the table. CSV files and other databases are read whole."
        ),
    )
    partition_on: str | None = Field(
        None,
        description=(
            "PostgreSQL: an integer, date or timestamp column of the query's result to read the rows in "
            "`partitions` ranges of, each over its own connection at the same time (the server's work is split). "
            "The query is then read whole, not in chunk_rows. A query ordered by this column keeps its order; "
            "otherwise rows come range by range. Unused for other databases and files."
        ),
    )
    partitions: int = Field(
        2, ge=1, le=32, description="How many ranges (and connections) partition_on reads at the same time."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SourceSpec:
        if bool(self.url) == bool(self.path):
            raise ValueError("give exactly one of 'url' (a database) or 'path' (a Parquet/CSV file)")
        if self.url and bool(self.query) == bool(self.table):
            raise ValueError("a database source needs exactly one of 'query' or 'table'")
        if self.path and not self.path.lower().endswith((".csv", ".parquet", ".pq", ".csv.gz")):
            raise ValueError(f"path must end in .csv, .csv.gz, .parquet or .pq, got {self.path!r}")
        return self


class TargetSpec(_Section):
    """The label column; for binary models which value is positive, for regression how it is transformed."""

    column: str = Field(description="The label column (binary: two values; multiclass: labels; regression: numbers).")
    positive: str | int | float | bool | None = Field(
        None, description="Binary only: positive class value; inferred from yes/true/1/positive when omitted."
    )
    transform: Literal["none", "log", "log1p"] = Field(
        "none",
        description="Regression only: learn on log(y) or log(1 + y) inside the model; predictions stay in y's units.",
    )


class ColumnRule(_Section):
    """Expectations for one column; every rule is optional."""

    dtype: Literal["int", "float", "numeric", "string", "bool", "datetime"] | None = Field(
        None, description="The kind of values the column must hold."
    )
    min: float | None = Field(None, description="Smallest allowed value.")
    max: float | None = Field(None, description="Largest allowed value.")
    allowed: list[str | int | float | bool] | None = Field(None, description="The only values allowed.")
    max_null_fraction: float | None = Field(
        None, ge=0, le=1, description="Share of nulls allowed in this column (overrides the section's)."
    )


class ValidationSpec(_Section):
    """Hard data gates: any failure rejects the run before training."""

    min_rows: int = Field(100, ge=1, description="Fewest rows a run may train on.")
    max_null_fraction: float = Field(0.2, ge=0, le=1, description="Per column, unless the column rule says otherwise.")
    max_duplicate_fraction: float = Field(0.01, ge=0, le=1, description="Fully duplicated rows (or duplicated ids).")
    min_class_fraction: float = Field(0.01, ge=0, le=0.5, description="Share of the rarer target class.")
    columns: dict[str, ColumnRule] = Field(default_factory=dict, description="Required columns and their rules.")
    reject_constant_columns: bool = Field(
        True, description="A feature with one value in every row is usually a broken extract: reject the batch."
    )
    max_text_cardinality: float = Field(
        0.9,
        gt=0,
        le=1,
        description="A text feature with distinct values in more than this share of rows (over 100) is an id, not a "
        "category: reject the batch (drop the column or set id_column).",
    )
    contract: Literal["off", "infer", "enforce"] = Field(
        "off",
        description=(
            "Data contract `<spec stem>.contract.yaml` beside the spec: 'infer' writes it from the first batch "
            "that passes the gates (never overwrites it) and checks later batches; 'enforce' requires it."
        ),
    )
    contract_path: str | None = Field(None, description="Where the contract lives, if not beside the spec.")
    max_age: str | None = Field(None, description="Freshness: the newest time_column value may be at most this old.")

    @field_validator("max_age")
    @classmethod
    def _valid_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class DriftThresholds(_Section):
    """A column has drifted when any of these is crossed (null switches a rule off)."""

    psi: float | None = Field(0.2, ge=0, description="Population stability index over reference bins.")
    js: float | None = Field(0.1, ge=0, le=1, description="Jensen-Shannon distance, base 2.")
    ks: float | None = Field(0.1, ge=0, le=1, description="KS statistic that counts as material.")
    ks_pvalue: float | None = Field(0.01, gt=0, lt=1, description="KS flags only below this p-value.")
    wasserstein: float | None = Field(None, ge=0, description="In the column's units; off by default.")


class DriftSpec(_Section):
    """Drift of the new batch against the data the champion was trained on, and what to do about it."""

    policy: Literal["off", "report", "retrain", "block"] = Field(
        "report",
        description=(
            "'report' records it; 'retrain' also makes an orchestrated run go ahead when it would skip "
            "for lack of new data; 'block' rejects the run."
        ),
    )
    thresholds: DriftThresholds = Field(default_factory=DriftThresholds)
    features: list[str] | None = Field(None, description="Columns to check (default: all the champion used).")


class LeakageSpec(_Section):
    """The leakage guard, run on the training split before tuning."""

    max_single_feature_auc: float | None = Field(
        0.98, gt=0.5, le=1, description="A feature predicting the target this well on its own is a leak; null: off."
    )
    label_time_column: str | None = Field(None, description="When the label became known.")
    timestamp_columns: list[str] = Field(
        default_factory=list, description="Columns (besides datetime features) that must not be after the label time."
    )
    allow: list[str] = Field(default_factory=list, description="Columns flagged but allowed.")


class DerivedFeature(_Section):
    """A feature computed from other columns, inside the model so serving computes it too."""

    name: str = Field(description="Name of the new feature column.")
    ratio: tuple[str, str] | None = Field(None, description="numerator / denominator (0 denominators give NaN).")
    bins: list[float] | None = Field(None, description="Bin edges applied to `column`.")
    date_part: Literal["hour", "dayofweek", "month", "dayofyear", "year"] | None = Field(
        None, description="Part of the datetime `column` to extract."
    )
    column: str | None = Field(None, description="Input column of `bins` and `date_part`.")

    @model_validator(mode="after")
    def _one_kind(self) -> DerivedFeature:
        kinds = [k for k in ("ratio", "bins", "date_part") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a derived feature needs exactly one of 'ratio', 'bins' or 'date_part'")
        if kinds[0] != "ratio" and not self.column:
            raise ValueError(f"'{kinds[0]}' needs 'column'")
        return self


class FeaturesSpec(_Section):
    """Preprocessing fitted on the training split only and saved inside the model."""

    drop: list[str] = Field(default_factory=list, description="Columns never used as features.")
    categorical: list[str] | None = Field(None, description="Force these columns categorical (default: inferred).")
    numeric: list[str] | None = Field(None, description="Force these columns numeric (default: inferred).")
    derived: list[DerivedFeature] = Field(default_factory=list)
    impute_numeric: Literal["median", "mean", "most_frequent"] = Field(
        "median", description="How missing numbers are filled (missing categories become their own category)."
    )
    encoding: Literal["onehot", "ordinal"] = Field("onehot", description="How categorical columns are encoded.")
    scale: bool = Field(True, description="Standard-scale numeric features.")
    max_categories: int = Field(50, ge=2, description="Rarer categories are grouped as infrequent.")


class SplitSpec(_Section):
    """How rows are divided into train, test and (temporal only) out-of-time sets."""

    method: Literal["stratified", "temporal"] = Field(
        "stratified", description="'stratified': random, keeping the class balance; 'temporal': by time_column."
    )
    test_size: float = Field(0.2, gt=0, lt=0.9, description="Share of rows held out to test (and compare) models.")
    oot_size: float = Field(0.0, ge=0, lt=0.5, description="Temporal only: latest share kept out of time.")
    test_window: str | None = Field(
        None,
        description=(
            "Temporal only: test on the rows of this period before as_of (or the out-of-time window), "
            "e.g. '1mo', '2w'; replaces test_size/oot_size. Without --as-of, the latest time in the data."
        ),
    )
    oot_window: str | None = Field(None, description="Temporal only: the last period before as_of, kept out of time.")
    train_window: str | None = Field(None, description="Temporal only: train on this period before the test window.")

    @field_validator("test_window", "oot_window", "train_window")
    @classmethod
    def _valid_period(cls, value: str | None) -> str | None:
        if value is not None:
            from retrainer.periods import parse_period

            parse_period(value)
        return value

    @model_validator(mode="after")
    def _windows_need_test_window(self) -> SplitSpec:
        if (self.oot_window or self.train_window) and not self.test_window:
            raise ValueError("oot_window and train_window need test_window")
        if self.test_window and self.method != "temporal":
            raise ValueError("test_window needs method: temporal")
        return self


class ModelsSpec(_Section):
    """Candidate algorithms and the Optuna search over them."""

    candidates: list[str] | None = Field(
        None,
        description=(
            f"Algorithms to tune: any of {', '.join(CANDIDATES)} (`mlp` is opt-in). Default: "
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
    def _known_candidates(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("list at least one candidate")
        for name in value:
            if name not in CANDIDATES:
                raise ValueError(
                    f"unknown candidate {name!r}{_did_you_mean(name, CANDIDATES)}; choose from {', '.join(CANDIDATES)}"
                )
        return value

    @field_validator("timeout")
    @classmethod
    def _valid_timeout(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
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


NotifyEvent = Literal["promoted", "kept_champion", "registered", "unchanged", "rejected", "failed", "drift", "summary"]
DEFAULT_EVENTS: list[NotifyEvent] = [
    "promoted",
    "kept_champion",
    "registered",
    "rejected",
    "failed",
    "drift",
    "summary",
]


SECRET_KEYS = {"webhook_url", "password", "lock_url"}  # never echoed in a validation error


class SlackSpec(_Section):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): a JSON POST with `text`."""

    webhook_url: SecretStr = Field(description="Secret: write ${SLACK_WEBHOOK_URL}, never the URL itself.")
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), description="Events to send.")
    timeout: float = Field(10.0, gt=0, description="Seconds per HTTP attempt.")

    @model_validator(mode="after")
    def _http_url(self) -> SlackSpec:
        # the message never repeats the URL: it is a secret
        if not self.webhook_url.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook_url must start with http:// or https:// (is the environment variable set?)")
        return self


class EmailSpec(_Section):
    """SMTP email, optionally upgraded with STARTTLS; the password comes from the environment."""

    host: str = Field(description="SMTP server host name.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 for STARTTLS, 25 for plain).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before logging in.")
    ca_file: str | None = Field(None, description="CA bundle to verify the server (default: the system's).")
    username: str | None = Field(None, description="SMTP login, when the server asks for one.")
    password: SecretStr | None = Field(None, description="Secret: write ${SMTP_PASSWORD}.")
    sender: str = Field(description="The From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), description="Events to send.")
    timeout: float = Field(10.0, gt=0, description="Seconds per SMTP attempt.")


class ReportSpec(_Section):
    """The HTML report written at the end of every run (also `retrainer report RUN_ID`)."""

    auto: bool = Field(True, description="Write runs/<id>/report.html when a run ends.")
    explain_rows: int = Field(500, ge=10, le=5000, description="Test rows explained with SHAP (bounded for speed).")


class NotifySpec(_Section):
    """Who hears about each run's outcome. A notifier that is down never fails the run."""

    console: bool = Field(True, description="Print the outcome line.")
    slack: SlackSpec | None = None
    email: EmailSpec | None = None
    retries: int = Field(3, ge=0, le=10, description="Extra attempts per message after a failure.")
    backoff: float = Field(1.0, ge=0, description="Seconds before the first retry; doubled after each.")


class OrchestrationSpec(_Section):
    """How an orchestrator (Airflow) schedules and retries the pipeline; `schedule` sits at the top level."""

    start_date: str = Field("2026-01-01", description="First logical date (ISO) of the schedule.")
    catchup: bool = Field(False, description="Run the intervals missed since start_date.")
    retries: int = Field(2, ge=0, description="Retries of a task that crashed (a rejection is never retried).")
    retry_delay: str = Field("5m", description="Wait between retries, e.g. 30s, 5m.")
    execution_timeout: str = Field("2h", description="A task running longer than this fails.")
    pool: str | None = Field(None, description="Airflow pool the tasks run in.")
    queue: str | None = Field(None, description="Executor queue (Celery) the tasks go to.")
    max_active_runs: int = Field(1, ge=1, description="DAG runs of this pipeline at once.")
    owner: str = Field("retrainer", description="Owner shown in Airflow.")
    tags: list[str] = Field(default_factory=list, description="DAG tags in Airflow.")

    @field_validator("retry_delay", "execution_timeout")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("start_date")
    @classmethod
    def _valid_date(cls, value: str) -> str:
        from datetime import datetime

        datetime.fromisoformat(value)
        return value


class PredictionLogSpec(_Section):
    """Where served predictions are logged (off the request path), for the online A/B comparison."""

    path: str | None = Field(None, description="Parquet directory; default <store>/predictions/<name>.")
    url: str | None = Field(None, description="PostgreSQL URL (instead of path), e.g. postgresql+psycopg://u@h/db.")
    table: str = Field("predictions", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Table when url is set.")
    flush_seconds: float = Field(1.0, gt=0, description="Write a batch at least this often.")

    @model_validator(mode="after")
    def _one_target(self) -> PredictionLogSpec:
        if self.path and self.url:
            raise ValueError("give 'path' (Parquet) or 'url' (PostgreSQL), not both")
        return self


class RedisSpec(_Section):
    """The online feature store: latest feature values per entity, with a TTL."""

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    ttl: str = Field("1d", description="How long materialized values live, e.g. 12h, 1d.")
    prefix: str | None = Field(None, description="Key prefix; default retrainer:<pipeline name>.")

    @field_validator("ttl")
    @classmethod
    def _valid_ttl(cls, value: str) -> str:
        if parse_duration(value) < 1:
            raise ValueError("ttl must be at least 1s")
        return value


class CanarySpec(_Section):
    """When the online comparison may move aliases: `retrainer ab-report` applies it."""

    min_labelled: int = Field(200, ge=1, description="Labelled predictions each version needs before deciding.")
    metric: str | None = Field(None, description="Metric compared online; default the ranking metric.")
    max_regression: float = Field(0.0, ge=0, description="How much worse than the champion the challenger may be.")
    action: Literal["promote", "rollback", "report"] = Field(
        "rollback",
        description="promote: a passing challenger becomes champion, a failing one loses its alias; "
        "rollback: only a failing challenger loses its alias; report: decide, move nothing.",
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRICS:
            raise ValueError(f"unknown metric {value!r}{_did_you_mean(value, METRICS)}")
        return value


class ServingSpec(_Section):
    """`retrainer serve`: the champion, a challenger on a share of entities, and the prediction log."""

    challenger_share: float = Field(0.1, ge=0, le=1, description="Share of entities routed to @challenger.")
    entity_id: str | None = Field(None, description="Request field that routes a row; defaults to id_column.")
    poll_seconds: float = Field(5.0, gt=0, description="How often the server checks for alias moves.")
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    redis: RedisSpec | None = Field(None, description="Online features: requests may send only the entity id.")
    canary: CanarySpec | None = None


class Spec(_Section):
    """A retraining pipeline."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Pipeline name (letters, digits, - _ .).")
    description: str = Field("", description="One line about the pipeline (the Airflow DAG shows it).")
    seed: int = Field(42, description="Seed for splits, tuning and models: the same data gives the same model.")
    task: Literal["binary", "multiclass", "regression"] | None = Field(
        None,
        description=(
            "What the model predicts; inferred from the target when omitted (two labels: binary; a few "
            "text labels: multiclass; floats or many numbers: regression)."
        ),
    )
    source: SourceSpec
    target: TargetSpec
    id_column: str | None = Field(None, description="Entity id: never a feature; duplicated ids fail validation.")
    time_column: str | None = Field(
        None, description="Event time: enables the temporal split and joins the source fingerprint."
    )
    store: str = Field(".retrainer", description="Run store: a directory or fsspec URL.")
    schedule: str | None = Field(None, description="Cron expression or preset (@daily, @weekly) for orchestrators.")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    leakage: LeakageSpec = Field(default_factory=LeakageSpec)
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    models: ModelsSpec = Field(default_factory=ModelsSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    orchestration: OrchestrationSpec = Field(default_factory=OrchestrationSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    spec_path: str | None = Field(None, exclude=True, description="Where the spec was loaded from (set by the loader).")

    @field_validator("target", mode="before")
    @classmethod
    def _target_shorthand(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value

    @field_validator("schedule")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        # caught at load time, not when Airflow first parses the exported DAG
        if value is None or value.startswith("@"):
            return value
        from croniter import croniter  # light; lazy so `retrainer --help` stays fast

        if not croniter.is_valid(value):
            raise ValueError("invalid cron expression (expected 5 fields, e.g. '0 3 * * 1', or @daily)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Spec:
        if self.split.method == "temporal" and not self.time_column:
            raise ValueError("split.method 'temporal' needs 'time_column'")
        if self.validation.max_age and not self.time_column:
            raise ValueError("validation.max_age (freshness) needs 'time_column'")
        for check in SPEC_CHECKS:  # the task's options (`retrainer.tasks` adds it): see spec_checks.py
            problem = check(self)
            if problem:
                raise ValueError(problem)
        return self

    def default_note(self, key: str) -> str | None:
        """What a default of this spec means here, for `retrainer explain-spec` (the task it will train)."""
        if key != "task" or self.task is not None:
            return None
        if self.target.positive is not None:
            return "binary, as target.positive names a positive label"
        return f"inferred from the values of '{self.target.column}' when the run splits (`retrainer run` prints it)"

    @property
    def registry_name(self) -> str:
        return self.promotion.registry_name or self.name

    def section_digest(self, *sections: str) -> str:
        """A stable hash of the named top-level sections (or `section.key`), for stage cache keys."""
        data = self.model_dump(mode="json", exclude={"spec_path"})
        picked = {}
        for name in sections:
            section, _, key = name.partition(".")
            picked[name] = (data.get(section) or {}).get(key) if key else data.get(section)
        return _digest(picked)

    def digest(self) -> str:
        """A hash of the whole spec, recorded as lineage on every registered model."""
        return _digest(self.model_dump(mode="json", exclude={"spec_path"}))


# --------------------------------------------------------------------------------------- loading

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse_duration(text: str) -> float:
    """'90s' -> 90.0, '10m' -> 600.0, '1.5h' -> 5400.0; a bare number is seconds."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 2h)")
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * scale


def load_spec(path: str | os.PathLike[str], env: str | None = None) -> Spec:
    """Read, interpolate, overlay and validate a spec file; raise SpecError with the key path on failure."""
    spec_path = Path(path)
    raw = read_yaml(spec_path)
    if env:
        overlay_path = spec_path.with_name(f"{spec_path.stem}.{env}{spec_path.suffix}")
        if not overlay_path.exists():
            raise SpecError(
                f"{overlay_path}: overlay for --env {env} not found", hint=f"create {overlay_path.name} or drop --env"
            )
        raw = deep_merge(raw, read_yaml(overlay_path))
    raw = _interpolate(raw, spec_path, ())
    _resolve_relative_paths(raw, spec_path.parent)
    raw["spec_path"] = str(spec_path.resolve())
    return spec_from_dict(raw, origin=str(spec_path))


def expand_projects(paths: list[Path]) -> list[Path]:
    """Spec paths, with each project file (`pipelines: [a.yaml, b.yaml]`) replaced by the specs it lists.

    A project file groups pipelines that are scheduled together (the Airflow master DAG runs them);
    its paths are relative to the project file.
    """
    expanded: list[Path] = []
    for path in paths:
        raw = read_yaml(Path(path))
        if "pipelines" not in raw:
            expanded.append(Path(path))
            continue
        listed = raw["pipelines"]
        if set(raw) != {"pipelines"} or not isinstance(listed, list) or not listed:
            raise SpecError(f"{path}: a project file has one key, 'pipelines', listing spec files")
        expanded += [Path(path).parent / str(item) for item in listed]
    return expanded


def spec_from_dict(data: dict[str, Any], origin: str = "<dict>") -> Spec:
    """Validate a plain dict as a Spec (the Python API's entry point)."""
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            _format_validation_error(exc, origin), hint="see `retrainer validate --help` and docs/spec.md"
        ) from None


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SpecError(f"{path}: spec file not found", hint="check the path, or create one with `retrainer init`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}{where}: malformed YAML: {problem}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: the spec must be a YAML mapping (key: value), got {type(data).__name__}")
    return data


def _interpolate(value: Any, path: Path, keys: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, path, (*keys, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, path, (*keys, str(i))) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise SpecError(
            f"{path}: {'.'.join(keys)}: environment variable {name} is not set",
            hint=f"export {name}=... or write ${{{name}:-default}} in the spec",
        )

    return _ENV_PATTERN.sub(replace, value)


def _resolve_relative_paths(raw: dict[str, Any], base: Path) -> None:
    source = raw.get("source")
    if not isinstance(source, dict):
        return
    file_path = source.get("path")
    if isinstance(file_path, str) and "://" not in file_path and not Path(file_path).is_absolute():
        source["path"] = str((base / file_path).resolve())
    url = source.get("url")
    if isinstance(url, str) and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        db_file = url.removeprefix("sqlite:///")
        if db_file and db_file != ":memory:":
            source["url"] = "sqlite:///" + str((base / db_file).resolve())


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _did_you_mean(name: str, choices: Any) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_for_path(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Spec
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return model


def _key_text(part: object) -> str:
    """A key as it reads in the spec; quoted when it has whitespace or control characters, so the error
    stays one line and an invisible key can be seen ('\\n', ' name')."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
        key = ".".join(_key_text(p) for p in loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            parent = _model_for_path(loc[:-1])
            known = list(parent.model_fields) if parent else []
            known = [k for k in known if k != "spec_path"]
            lines.append(f"{key}: unknown key{_did_you_mean(str(loc[-1]), known)}")
        elif error["type"] == "missing":
            lines.append(f"{key}: required key is missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            got = error.get("input")
            hidden = isinstance(got, dict | list) or got is None or bool(SECRET_KEYS & set(map(str, loc)))
            shown = "" if hidden else f" (got {got!r})"
            lines.append(f"{key}: {message}{shown}")
    noun = "error" if len(lines) == 1 else "errors"
    return f"{origin}: {len(lines)} spec {noun}: " + "; ".join(lines)
