"""The sections about the data: where it comes from, its target, its gates, its features and its split."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from retrainer.spec.common import _Section, parse_duration

Severity = Literal["error", "warn"]


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
    mostly: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Share of the non-null values that must meet min, max and allowed (as pandera's and Great "
        "Expectations' `mostly`): 0.99 lets 1 % through.",
    )
    severity: Severity = Field("error", description="error: a broken rule rejects the batch; warn: it is reported.")


# The checks whose threshold has a default, and the key that writes it. Left to its default a check
# warns; written in the spec it is a gate (`ValidationSpec.severity` overrides either way).
DEFAULTED_CHECKS = {
    "min_rows": "min_rows",
    "max_null_fraction": "max_null_fraction",
    "max_duplicate_fraction": "max_duplicate_fraction",
    "unique_ids": "max_duplicate_fraction",
    "target_balance": "min_class_fraction",
    "constant_columns": "reject_constant_columns",
    "cardinality": "max_text_cardinality",
}
DEFAULT_LIMITS = {
    "min_rows": 100,
    "max_null_fraction": 0.2,
    "max_duplicate_fraction": 0.01,
    "min_class_fraction": 0.01,
    "max_text_cardinality": 0.9,
}
# Checks that are gates whatever the spec says (`severity` can still make them warnings).
GATE_CHECKS = ("finite_values", "no_future_timestamps", "freshness", "contract")


class ValidationSpec(_Section):
    """Data checks before any training. A threshold written here is a gate: a batch that fails it is rejected.
    A threshold left to its default only warns (in the run's output and the report), so a sound table is
    never rejected by a rule nobody chose; what makes training impossible (no rows, one class, no target)
    always rejects."""

    min_rows: int | None = Field(None, ge=1, description="Fewest rows a run may train on (default 100, a warning).")
    max_null_fraction: float | None = Field(
        None, ge=0, le=1, description="Per column, unless the column rule says otherwise (default 0.2, a warning)."
    )
    max_duplicate_fraction: float | None = Field(
        None, ge=0, le=1, description="Fully duplicated rows, or duplicated ids (default 0.01, a warning)."
    )
    min_class_fraction: float | None = Field(
        None, ge=0, le=0.5, description="Share of the rarest target class (default 0.01, a warning)."
    )
    columns: dict[str, ColumnRule] = Field(default_factory=dict, description="Required columns and their rules.")
    reject_constant_columns: bool = Field(
        False,
        description="true: a feature with one value in every row rejects the batch (a broken extract?); "
        "false: it is left out of the features with a warning.",
    )
    max_text_cardinality: float | None = Field(
        None,
        gt=0,
        le=1,
        description="A text feature with distinct values in more than this share of rows (over 100) is an id, not a "
        "category: it is left out of the features with a warning (default 0.9; written: the batch is rejected).",
    )
    severity: dict[str, Severity] = Field(
        default_factory=dict,
        description="Per check (min_rows, max_null_fraction, max_duplicate_fraction, unique_ids, target_balance, "
        "constant_columns, cardinality, finite_values, no_future_timestamps, freshness, contract): 'error' rejects "
        "the batch, 'warn' reports it and goes on.",
    )
    contract: Literal["off", "champion", "infer", "enforce"] = Field(
        "champion",
        description=(
            "'champion': the data the champion learnt from is the contract (stored with every registered "
            "model); a new batch whose column changed type, whose null rate jumped, whose values left the "
            "champion's range or whose categories are mostly new is rejected, naming the column and both "
            "figures. A file `<spec stem>.contract.yaml` beside the spec: 'infer' writes it from the first "
            "batch that passes the gates (never overwrites it) and checks later batches; 'enforce' requires it."
        ),
    )
    contract_path: str | None = Field(None, description="Where the contract lives, if not beside the spec.")
    max_age: str | None = Field(None, description="Freshness: the newest time_column value may be at most this old.")

    @field_validator("severity")
    @classmethod
    def _known_checks(cls, value: dict[str, Severity]) -> dict[str, Severity]:
        known = [*DEFAULTED_CHECKS, *GATE_CHECKS]
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown check {', '.join(map(repr, unknown))}; the checks are {', '.join(known)}")
        return value

    def severity_of(self, check: str) -> Severity:
        """'error' (the batch is rejected) or 'warn' for a failed `check`: see `DEFAULTED_CHECKS`."""
        if check in self.severity:
            return self.severity[check]
        key = DEFAULTED_CHECKS.get(check)
        return "error" if key is None or getattr(self, key) not in (None, False) else "warn"

    def limit(self, key: str) -> float:
        """The threshold `key` as written, else its default (`DEFAULT_LIMITS`)."""
        value = getattr(self, key)
        return float(DEFAULT_LIMITS[key] if value is None else value)

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
    unseen: float | None = Field(
        0.1,
        ge=0,
        le=1,
        description="Text columns: share of the batch's words unseen in the champion's training text, above its own.",
    )


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
        0.95, gt=0.5, le=1, description="A feature predicting the target this well on its own is a leak; null: off."
    )
    max_auc_lead: float | None = Field(
        0.15,
        gt=0,
        le=0.5,
        description="A feature whose single-feature AUC stands this far above every other feature's is a proxy of "
        "the label (filled in after it was known?); null: off.",
    )
    min_auc_for_lead: float = Field(
        0.85, gt=0.5, le=1, description="The lead rule judges only features at least this predictive on their own."
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
    text: list[str] | None = Field(
        None,
        description=(
            "Free-text columns, turned into TF-IDF word (1-2) and character (2-5) n-grams fitted on the training "
            "split inside the model (default: inferred: text of median length >= 30 characters, mostly distinct "
            "values, most with a space); [] turns inference off."
        ),
    )
    text_max_features: int = Field(
        5000, ge=10, le=200_000, description="Most n-grams kept per text column and analyzer (word, character)."
    )
    derived: list[DerivedFeature] = Field(default_factory=list)
    impute_numeric: Literal["median", "mean", "most_frequent"] = Field(
        "median", description="How missing numbers are filled (missing categories become their own category)."
    )
    encoding: Literal["onehot", "ordinal"] = Field("onehot", description="How categorical columns are encoded.")
    scale: bool = Field(True, description="Standard-scale numeric features.")
    max_categories: int = Field(50, ge=2, description="Rarer categories are grouped as infrequent.")

    @model_validator(mode="after")
    def _text_columns_have_one_role(self) -> FeaturesSpec:
        for other in ("categorical", "numeric", "drop"):
            both = sorted(set(self.text or []) & set(getattr(self, other) or []))
            if both:
                raise ValueError(f"{', '.join(both)} cannot be both text and {other}")
        return self


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
