"""The pipeline spec: one YAML file, validated by pydantic, with defaults that run locally.

Loading does three things before validation: `${VAR}` / `${VAR:-default}` are replaced from the
environment (so secrets never sit in the file), `--env NAME` overlays `<spec>.NAME.yaml` on the
base file, and relative paths are resolved against the spec's own directory (so a spec runs the
same from any working directory).

    >>> spec = load_spec("examples/telco_churn/pipeline.yaml")
    >>> spec.models.candidates
    ['logistic_regression', 'random_forest', 'xgboost', 'lightgbm']
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from retrainer.errors import SpecError
from retrainer.metrics import LOWER_IS_BETTER, METRICS
from retrainer.models import CATALOGUE

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
    """The label column and which of its values is the positive class."""

    column: str = Field(description="The label column (binary: two distinct values).")
    positive: str | int | float | bool | None = Field(
        None, description="Positive class value; inferred from yes/true/1/positive when omitted."
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


class ModelsSpec(_Section):
    """Candidate algorithms and the Optuna search over them."""

    candidates: list[str] = Field(
        default_factory=lambda: list(CANDIDATES), description=f"Algorithms to tune: any of {', '.join(CANDIDATES)}."
    )
    n_trials: int = Field(10, ge=1, description="Optuna trials per candidate.")
    timeout: str | None = Field(None, description="Wall-clock budget for all tuning, e.g. '10m', '90s'.")
    cv_folds: int = Field(3, ge=2, le=20, description="Cross-validation folds scoring each trial.")
    n_jobs: int = Field(1, ge=1, description="Threads per model fit (keep low on small machines).")
    workers: int = Field(1, ge=1, le=64, description="Tuning processes (or Airflow tasks) sharing one study.")
    study_storage: str | None = Field(
        None, description="Optuna storage URL shared by workers (e.g. PostgreSQL); default SQLite in the run store."
    )
    params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="Fixed params per candidate.")
    search_space: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description="Per candidate, per param: {low, high, log} or {choices}; replaces the default range.",
    )

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, value: list[str]) -> list[str]:
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


class EvaluationSpec(_Section):
    """The metric that ranks models and the thresholds a model must reach to be registered."""

    metric: Literal["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier"] = Field(
        "roc_auc", description="The metric that ranks trials and candidates, and that compare uses by default."
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Metric minimums (maximums for log_loss, brier)."
    )
    decision_threshold: float = Field(0.5, gt=0, lt=1, description="Probability above which a row is positive.")

    @field_validator("thresholds")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        for name, bound in value.items():
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}{_did_you_mean(name, METRICS)}")
            if name not in LOWER_IS_BETTER and not 0 <= bound <= 1:
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


class TrackingSpec(_Section):
    """Where MLflow keeps runs and the model registry."""

    uri: str | None = Field(None, description="MLflow tracking URI; default sqlite:///<store>/mlflow.db.")
    experiment: str | None = Field(None, description="Defaults to the pipeline name.")


class NotifySpec(_Section):
    """Who hears about each run's outcome."""

    console: bool = Field(True, description="Print the outcome line.")


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


class Spec(_Section):
    """A retraining pipeline."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Pipeline name (letters, digits, - _ .).")
    description: str = Field("", description="One line about the pipeline (the Airflow DAG shows it).")
    seed: int = Field(42, description="Seed for splits, tuning and models: the same data gives the same model.")
    source: SourceSpec
    target: TargetSpec
    id_column: str | None = Field(None, description="Entity id: never a feature; duplicated ids fail validation.")
    time_column: str | None = Field(
        None, description="Event time: enables the temporal split and joins the source fingerprint."
    )
    store: str = Field(".retrainer", description="Run store: a directory or fsspec URL.")
    schedule: str | None = Field(None, description="Cron expression or preset (@daily, @weekly) for orchestrators.")
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    models: ModelsSpec = Field(default_factory=ModelsSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    promotion: PromotionSpec = Field(default_factory=PromotionSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    orchestration: OrchestrationSpec = Field(default_factory=OrchestrationSpec)
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
        return self

    @property
    def registry_name(self) -> str:
        return self.promotion.registry_name or self.name

    @property
    def ranking_metric(self) -> str:
        return self.evaluation.metric

    def section_digest(self, *sections: str) -> str:
        """A stable hash of the named top-level sections, for stage cache keys."""
        data = self.model_dump(mode="json", exclude={"spec_path"})
        return _digest({name: data.get(name) for name in sections})

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


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if p not in ("function-after", "function-before"))
        key = ".".join(str(p) for p in loc) or "(top level)"
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
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            lines.append(f"{key}: {message}{shown}")
    noun = "error" if len(lines) == 1 else "errors"
    return f"{origin}: {len(lines)} spec {noun}: " + "; ".join(lines)
