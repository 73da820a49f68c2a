"""`Spec`, the whole pipeline: its sections, the checks across them, and the digests cache keys read."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from retrainer.spec.anomaly import UNLABELLED, AnomalySpec
from retrainer.spec.common import _digest, _Section
from retrainer.spec.data import DriftSpec, FeaturesSpec, LeakageSpec, SourceSpec, SplitSpec, TargetSpec, ValidationSpec
from retrainer.spec.forecast import ForecastSpec
from retrainer.spec.modelling import EvaluationSpec, ModelsSpec, PromotionSpec, TrackingSpec
from retrainer.spec.operations import NotifySpec, OrchestrationSpec, ReportSpec, ServingSpec
from retrainer.spec.readiness import ReadinessSpec
from retrainer.spec_checks import SPEC_CHECKS


class Spec(_Section):
    """A retraining pipeline."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Pipeline name (letters, digits, - _ .).")
    description: str = Field("", description="One line about the pipeline (the Airflow DAG shows it).")
    seed: int = Field(42, description="Seed for splits, tuning and models: the same data gives the same model.")
    task: Literal["binary", "multiclass", "regression", "forecast", "anomaly"] | None = Field(
        None,
        description=(
            "What the model predicts; inferred from the target when omitted (two labels: binary; a few "
            "text labels: multiclass; floats or many numbers: regression). forecast is never inferred: it "
            "needs time_column and a `forecast:` section. anomaly is never inferred: its target (known "
            "anomalies) is optional."
        ),
    )
    forecast: ForecastSpec | None = Field(None, description="task: forecast only: horizon, series, backtest.")
    anomaly: AnomalySpec | None = Field(
        None, description="task: anomaly only: the expected alert rate and the checks of an unlabelled batch."
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
    readiness: ReadinessSpec = Field(default_factory=ReadinessSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    notify: NotifySpec = Field(default_factory=NotifySpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    orchestration: OrchestrationSpec = Field(default_factory=OrchestrationSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    spec_path: str | None = Field(None, exclude=True, description="Where the spec was loaded from (set by the loader).")

    @model_validator(mode="before")
    @classmethod
    def _unlabelled_anomalies(cls, data: Any) -> Any:
        """`task: anomaly` without `target`: no anomaly is known; the split gives every row the label -1."""
        if isinstance(data, dict) and data.get("task") == "anomaly" and data.get("target") is None:
            return {**data, "target": {"column": UNLABELLED}}
        return data

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
        if self.task == "forecast":
            if not self.time_column:
                raise ValueError("task forecast needs 'time_column' (the timestamp of each value)")
            if self.forecast is None:
                raise ValueError("task forecast needs a 'forecast:' section (at least forecast.horizon)")
        elif self.forecast is not None:
            raise ValueError("the 'forecast:' section applies to task: forecast only")
        if self.anomaly is not None and self.task != "anomaly":
            raise ValueError("the 'anomaly:' section applies to task: anomaly only")
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
        if "models" in sections and self.models.own_code_versions:  # your estimator's code is part of the models
            picked["models:own_code"] = self.models.own_code_versions
        return _digest(picked)

    def digest(self) -> str:
        """A hash of the whole spec, recorded as lineage on every registered model."""
        return _digest(self.model_dump(mode="json", exclude={"spec_path"}))
