"""The pipeline spec: one YAML file, validated by pydantic, with defaults that run locally.

Loading does three things before validation: `${VAR}` / `${VAR:-default}` are replaced from the
environment (so secrets never sit in the file), `--env NAME` overlays `<spec>.NAME.yaml` on the
base file, and relative paths are resolved against the spec's own directory (so a spec runs the
same from any working directory).

    >>> spec = load_spec("examples/telco_churn/pipeline.yaml")
    >>> spec.target.column, spec.task   # the task is inferred from the target's values when omitted
    ('churn', None)

The sections live by concern in `data`, `modelling` and `operations`, the whole `Spec` in `root`,
the reading of files in `loading`; import them from here.
"""

from retrainer.models import DEFAULT_CANDIDATES
from retrainer.spec.anomaly import AnomalySpec
from retrainer.spec.common import _did_you_mean, _Section, parse_duration
from retrainer.spec.data import (
    ColumnRule,
    DerivedFeature,
    DriftSpec,
    DriftThresholds,
    FeaturesSpec,
    LeakageSpec,
    SourceSpec,
    SplitSpec,
    TargetSpec,
    ValidationSpec,
)
from retrainer.spec.forecast import BacktestSpec, ForecastSpec
from retrainer.spec.loading import deep_merge, expand_projects, load_spec, read_yaml, spec_from_dict
from retrainer.spec.modelling import (
    CANDIDATES,
    EvaluationSpec,
    FairnessSpec,
    Improvement,
    ModelsSpec,
    PromotionSpec,
    TrackingSpec,
)
from retrainer.spec.operations import (
    DEFAULT_EVENTS,
    SECRET_KEYS,
    CanarySpec,
    EmailSpec,
    NotifyEvent,
    NotifySpec,
    OrchestrationSpec,
    PredictionLogSpec,
    RedisSpec,
    ReportSpec,
    ServingSpec,
    SlackSpec,
)
from retrainer.spec.readiness import LatencyBounds, ReadinessSpec
from retrainer.spec.root import Spec

__all__ = [
    "CANDIDATES",
    "DEFAULT_CANDIDATES",
    "DEFAULT_EVENTS",
    "SECRET_KEYS",
    "AnomalySpec",
    "BacktestSpec",
    "CanarySpec",
    "ColumnRule",
    "DerivedFeature",
    "DriftSpec",
    "DriftThresholds",
    "EmailSpec",
    "EvaluationSpec",
    "FairnessSpec",
    "FeaturesSpec",
    "ForecastSpec",
    "Improvement",
    "LatencyBounds",
    "LeakageSpec",
    "ModelsSpec",
    "NotifyEvent",
    "NotifySpec",
    "OrchestrationSpec",
    "PredictionLogSpec",
    "PromotionSpec",
    "ReadinessSpec",
    "RedisSpec",
    "ReportSpec",
    "ServingSpec",
    "SlackSpec",
    "SourceSpec",
    "Spec",
    "SplitSpec",
    "TargetSpec",
    "TrackingSpec",
    "ValidationSpec",
    "_Section",
    "_did_you_mean",
    "deep_merge",
    "expand_projects",
    "load_spec",
    "parse_duration",
    "read_yaml",
    "spec_from_dict",
]
