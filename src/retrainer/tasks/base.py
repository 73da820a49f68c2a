"""What every task answers: the seam between the stages and what differs by kind of model.

A stage never asks "is this binary": it asks the run's `Task` how the target is encoded, how rows
are stratified, what a model outputs, which metrics and options apply, how fairness is judged and
what serving answers. A task is built from the target column (`from_target`, at the split) and
written down as `info()` (the `target_info` artifact and the registered version's tags), so every
later stage, a worker process, an Airflow task and the champion's comparison rebuild the same one
with `retrainer.tasks.from_info`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.errors import DataValidationError, SpecError
from retrainer.metrics import REGISTRY, metrics_for

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec


class Task(ABC):
    """One kind of model. Subclasses set the class attributes and implement the abstract methods."""

    name: ClassVar[str]
    estimator_type: ClassVar[str]  # "classifier" | "regressor": which estimator a candidate builds
    default_metric: ClassVar[str]
    # options of the spec that only some tasks have (checked by `check_spec`)
    has_decision_threshold: ClassVar[bool] = False
    has_class_weight: ClassVar[bool] = False
    has_positive_label: ClassVar[bool] = False  # `target.positive` applies (binary; anomaly: the known anomalies)
    explains_every_class: ClassVar[bool] = False  # SHAP per class (multiclass) or of the one output
    explainable: ClassVar[bool] = True  # the explain stage's SHAP and permutation importance apply
    # the registered model answers each row sent (`response`); False: it answers requests (`answer_requests`)
    answers_rows: ClassVar[bool] = True
    sklearn_scoring: ClassVar[str]  # scikit-learn's scorer name, for permutation importance
    # the fairness summary's figures and their bounds: {figure: ("min" | "max", FairnessSpec field)}
    fairness_bounds: ClassVar[Mapping[str, tuple[str, str]]] = {}

    # ------------------------------------------------------------------ identity
    @classmethod
    @abstractmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> Task:
        """The task for this target column (its label set read from the values); bad targets raise."""

    @classmethod
    @abstractmethod
    def from_info(cls, info: Mapping[str, Any]) -> Task:
        """The task `info()` wrote down."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """A JSON-able description: `{"task": name, ...}` (labels, positive class, target transform)."""

    def same_target(self, other: Task) -> str | None:
        """Why a model of `other` cannot be compared with one of this task on the same rows (None: it can)."""
        if other.name != self.name:
            return f"the champion is a {other.name} model and the challenger a {self.name} one"
        return None

    # ------------------------------------------------------------------ what tables leave to the defaults
    @classmethod
    def with_target(cls, frame: pd.DataFrame, spec: Spec) -> pd.DataFrame:
        """The frame validation and the split read, with its target column (an anomaly spec may have no
        target: its rows get the label "unknown"): the frame itself here."""
        return frame

    @classmethod
    def own_spec_problems(cls, spec: Spec) -> list[str]:
        """What the task refuses in a spec beyond the options `spec_problems` checks for every task: nothing here."""
        return []

    def paired_checks(self, output: np.ndarray, champion_output: np.ndarray | None, spec: Spec) -> dict[str, Any]:
        """Checks of the challenger against the champion on the same rows, beside the bootstrap (an anomaly
        detector's alert overlap), for the evidence and the report; those its `failures` list (in words)
        keep the champion: none here."""
        return {}

    def metrics_note(self, evidence: Mapping[str, Any]) -> str | None:
        """What the report says beside the metrics (compare's `evidence`, `paired_checks` in it): nothing here."""
        return None

    @classmethod
    def data_checks(cls, frame: pd.DataFrame, spec: Spec, as_of: datetime | None) -> list[tuple[str, bool, str]]:
        """Validation's checks of this task beyond the table's, as (name, passed, message): none here."""
        return []

    def split(self, frame: pd.DataFrame, spec: Spec, as_of: datetime | None) -> dict[str, pd.DataFrame] | None:
        """The task's own train / test / oot parts of the encoded frame; None: the spec's `split` applies."""
        return None

    @classmethod
    def preprocessor(cls, train: pd.DataFrame, spec: Spec) -> tuple[Any, dict[str, Any]] | None:
        """The task's own (unfitted) preprocessing and feature schema; None: the features stage builds it."""
        return None

    def leakage_columns(self, columns: list[str], spec: Spec) -> list[str]:
        """The model inputs the leakage guard checks: all of them."""
        return columns

    def final_fit_rows(self, parts: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
        """The rows the registered model is fitted on: the training split."""
        return parts["train"]

    def gate_failures(self, metrics: Mapping[str, float], spec: Spec) -> list[str]:
        """Gates of the task beyond `evaluation.thresholds` (a forecast's baseline), in words: none here."""
        return []

    # whether drift compares the champion's output on the new data with its output on its training data
    # (a forecast's values move with the trend whatever the model: it compares each series instead)
    score_drift: ClassVar[bool] = True

    @classmethod
    def series_profile(cls, frame: pd.DataFrame, spec: Spec) -> dict[str, Any] | None:
        """What drift keeps of the training data besides its columns (a forecast's series); None: nothing."""
        return None

    @classmethod
    def series_drift(cls, reference: dict[str, Any], frame: pd.DataFrame, spec: Spec) -> list[dict[str, Any]]:
        """Drift of the new data against `series_profile` of the champion's, one entry per series: none here."""
        return []

    def bootstrap_groups(self, output: np.ndarray) -> np.ndarray | None:
        """The units the paired bootstrap resamples (a code per row, -1: not scored); None: rows."""
        return None

    # ------------------------------------------------------------------ the target
    @abstractmethod
    def encode(self, values: pd.Series) -> np.ndarray:
        """The target as the models learn it (0/1, class codes 0..k-1, or floats)."""

    @abstractmethod
    def strata(self, y: np.ndarray) -> np.ndarray | None:
        """Labels to stratify splits and folds on (None: a plain shuffled split)."""

    @abstractmethod
    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        """Raise DataValidationError when the train/test targets cannot train or test a model."""

    def balance(self, labels: pd.Series, minimum: float) -> tuple[bool, str, float] | None:
        """Validation's class-balance check of the raw labels (passed, message, rarest share); None: no classes."""
        return None

    def one_vs_rest(self, y: np.ndarray) -> list[np.ndarray]:
        """The target as 0/1 questions a single column may answer too well (the leakage guard's AUCs):
        binary its own labels, multiclass one per class, regression above the median or not."""
        return [y]

    @abstractmethod
    def describe(self, y: np.ndarray) -> dict[str, Any]:
        """A split part's target in a few numbers (positive rate, class shares, mean and spread)."""

    def folds(self, y: np.ndarray, n_splits: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Cross-validation (fit rows, score rows), stratified on `strata` where the task has them."""
        import numpy as np
        from sklearn.model_selection import KFold, StratifiedKFold

        strata, rows = self.strata(y), np.zeros(len(y))
        if strata is None:
            return KFold(n_splits=n_splits, shuffle=True, random_state=seed).split(rows)
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(rows, strata)

    def holdout(self, y: np.ndarray, size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers (kept, held out): `size` rows (or share) held out, stratified like `folds`."""
        import numpy as np
        from sklearn.model_selection import train_test_split

        kept, held = train_test_split(np.arange(len(y)), test_size=size, stratify=self.strata(y), random_state=seed)
        return np.asarray(kept), np.asarray(held)

    # ------------------------------------------------------------------ the model
    @abstractmethod
    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """The model's output on `frame`: the shape every metric and the bootstrap of this task read."""

    def wrap(self, estimator: Any, spec: Spec, calibrate: bool) -> Any:
        """The estimator as the final model holds it (calibrated, or on a transformed target)."""
        return estimator

    @abstractmethod
    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        """What serving answers per row of `output` (JSON-able)."""

    def scored_like_this_run(self, model: Any, spec: Spec) -> Any:
        """The champion as compare scores it on this run's test set: as it is (a forecaster: on this
        run's backtest windows, so both models are scored on the same cutoffs)."""
        return model

    def request_columns(self, model: Any) -> list[tuple[str, str, bool]] | None:
        """(column, MLflow type, required) of a request to the registered model, where it takes requests
        rather than rows (`answers_rows` False); None: the rows as the source gives them."""
        return None

    def request_example(self, model: Any) -> pd.DataFrame | None:
        """A request the registered model answers (its input example, what readiness asks); None: rows."""
        return None

    def answer_requests(self, model: Any, requests: pd.DataFrame) -> list[dict[str, Any]]:
        """The answers to `requests` (`answers_rows` False): `retrainer serve` and the `python_function`
        flavor both call it through `retrainer.pyfunc.answer`."""
        raise NotImplementedError(f"a {self.name} model answers rows, not requests")

    def logged_metrics(
        self, y: np.ndarray, predictions: pd.Series, probabilities: pd.Series, threshold: float
    ) -> dict[str, float]:
        """The online comparison's metrics from the prediction log's columns (`prediction` as text):
        here the logged values (regression)."""
        import numpy as np

        return self.all_metrics(y, np.asarray(predictions, dtype=float), threshold)

    def drift_values(self, output: np.ndarray) -> np.ndarray:
        """One value per row whose distribution prediction drift compares (binary scores, values)."""
        return output

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:
        """The distribution of a batch's outputs, for prediction drift and the report."""
        import numpy as np

        values = np.asarray(output, dtype=float)
        return {"mean": float(values.mean()) if len(values) else None}

    @abstractmethod
    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """Per-group figures, their summary, the rules they miss (in words) and the summary's headline key."""

    def fairness_limits(self, rules: Mapping[str, Any]) -> dict[str, tuple[str, float | None]]:
        """`fairness_bounds` with the values of `rules` (a FairnessSpec's dump, or the fairness artifact)."""
        return {figure: (side, rules.get(field)) for figure, (side, field) in self.fairness_bounds.items()}

    # ------------------------------------------------------------------ metrics
    @property
    def metrics(self) -> tuple[str, ...]:
        return metrics_for(self.name)

    def ranking_metric(self, spec: Spec) -> str:
        """The metric that ranks trials and candidates: the spec's, else this task's default."""
        return spec.evaluation.metric or self.default_metric

    def comparison_metric(self, spec: Spec) -> str:
        """The metric compare decides on: `promotion.min_improvement.metric`, else the ranking metric."""
        return spec.promotion.min_improvement.metric or self.ranking_metric(spec)

    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        """The metrics a summary line shows (notifications, `retrainer models`), most telling first."""
        return metrics_for(cls.name)

    def all_metrics(self, y: np.ndarray, output: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
        from retrainer.metrics import all_metrics

        return all_metrics(y, output, threshold, self.name)

    def candidates(self, spec: Spec) -> list[str]:
        """The spec's candidates, else the defaults for this task's kind of estimator (for a spec that names
        text columns, the linear and boosted ones: a forest on thousands of sparse n-grams is slow)."""
        from retrainer.models import DEFAULT_CANDIDATES, SLOW_ON_TEXT

        if spec.models.names:
            return list(spec.models.names)
        defaults = DEFAULT_CANDIDATES[self.estimator_type]
        return [c for c in defaults if c not in SLOW_ON_TEXT] if spec.features.text else list(defaults)

    # ------------------------------------------------------------------ the spec
    def check_spec(self, spec: Spec) -> None:
        """Raise SpecError for what the spec asks that this task does not have."""
        problems = spec_problems(type(self), spec)
        if problems:
            raise SpecError(
                f"{spec.name}: task {self.name}: " + "; ".join(problems),
                hint=f"write `task: {self.name}` explicitly to have the spec checked when it loads",
            )


def spec_problems(cls: type[Task], spec: Spec) -> list[str]:
    """Every option of `spec` that does not apply to the task `cls`, in words (load-time and run-time checks)."""
    task = cls.name
    a_task = ("an " if task[0] in "aeiou" else "a ") + task  # "an anomaly model", "a binary model"
    problems = []
    named = {
        "evaluation.metric": spec.evaluation.metric,
        "promotion.min_improvement.metric": spec.promotion.min_improvement.metric,
        "serving.canary.metric": spec.serving.canary.metric if spec.serving.canary else None,
        **{f"evaluation.thresholds.{name}": name for name in spec.evaluation.thresholds},
    }
    applicable = metrics_for(task)
    for key, metric in named.items():
        if metric is not None and metric in REGISTRY and metric not in applicable:
            problems.append(f"{key}: {metric} is not {a_task} metric (choose from {', '.join(applicable)})")
    if not cls.has_decision_threshold:
        if spec.evaluation.threshold_metric is not None:
            problems.append("evaluation.threshold_metric applies to binary models only")
        if spec.models.calibration != "none":
            problems.append("models.calibration applies to binary models only")
    if spec.target.positive is not None and not (cls.has_decision_threshold or cls.has_positive_label):
        problems.append("target.positive applies to binary models (and known anomalies) only")
    if not cls.has_class_weight:
        for candidate, params in {**spec.models.params, **spec.models.search_space}.items():
            if "class_weight" in params:
                problems.append(f"models: class_weight ({candidate}) applies to classifiers only")
    if task != "regression" and spec.target.transform != "none":
        problems.append("target.transform applies to regression only")
    problems += cls.own_spec_problems(spec)
    from retrainer.models.custom import needs

    catalogue = spec.models.catalogue
    for candidate in spec.models.names or ():
        known = catalogue.get(candidate)
        if known is None or cls.estimator_type in known.kinds:
            continue
        if known.estimator:  # your own: say what it lacks
            problems.append(
                f"models.candidates: {candidate} ({known.estimator}) cannot train {a_task} model: "
                f"it needs {needs(cls.estimator_type)}"
            )
            continue
        fits = [name for name, c in catalogue.items() if cls.estimator_type in c.kinds and not c.estimator]
        problems.append(f"models.candidates: {candidate} cannot train {a_task} model (choose from {', '.join(fits)})")
    return problems


def invalid_target(message: str, failure: str, hint: str | None = None) -> DataValidationError:
    return DataValidationError(message, failures=[failure], hint=hint)


def plain_value(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON, messages: 1, not np.int64(1))."""
    return value.item() if hasattr(value, "item") else value
