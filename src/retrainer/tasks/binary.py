"""Binary classification: a positive class, its probability, and the threshold that decides it.

The only task with a decision threshold (chosen on out-of-fold predictions and stored with the
model), probability calibration and a positive label; the only module that takes column 1 of
`predict_proba`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.target import as_text, encode_target, positive_label
from retrainer.tasks.base import Task, invalid_target, plain_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec


class BinaryTask(Task):
    name: ClassVar[str] = "binary"
    estimator_type: ClassVar[str] = "classifier"
    default_metric: ClassVar[str] = "roc_auc"
    has_decision_threshold: ClassVar[bool] = True
    has_class_weight: ClassVar[bool] = True
    sklearn_scoring: ClassVar[str] = "roc_auc"
    fairness_bounds: ClassVar[Mapping[str, tuple[str, str]]] = {
        "disparate_impact": ("min", "min_disparate_impact"),
        "equalized_odds_difference": ("max", "max_equalized_odds_difference"),
    }

    def __init__(self, positive: Any, labels: list[Any] | None = None) -> None:
        self.positive = positive
        self.labels = labels or []

    @classmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> BinaryTask:
        labels = values.dropna()
        positive = positive_label(labels, spec.target)
        return cls(plain_value(positive), sorted({plain_value(v) for v in labels.unique()}, key=str))

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> BinaryTask:
        return cls(info.get("positive"), list(info.get("labels") or []))

    def info(self) -> dict[str, Any]:
        return {"task": self.name, "positive": self.positive, "labels": self.labels}

    def encode(self, values: pd.Series) -> np.ndarray:
        return encode_target(values, self.positive)

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        return y

    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        import numpy as np

        for name in ("train", "test"):
            if len(np.unique(parts[name])) < 2:
                raise invalid_target(
                    f"the {name} split has only one target class ({len(parts[name])} rows)",
                    f"split: {name} has one class",
                    hint="collect more data or change split.test_size",
                )

    def balance(self, labels: pd.Series, minimum: float) -> tuple[bool, str, float] | None:
        share = float(labels.map(as_text).eq(as_text(self.positive)).mean())
        rarer = min(share, 1 - share)
        message = (
            f"positive class {self.positive!r} is {share:.1%} of rows; rarer class {rarer:.1%} (minimum {minimum:.1%})"
        )
        return rarer >= minimum and labels.nunique() == 2, message, round(rarer, 4)

    def describe(self, y: np.ndarray) -> dict[str, Any]:
        return {"positive_rate": round(float(y.mean()), 4) if len(y) else None}

    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """Positive-prediction rate, TPR and FPR per group: disparate impact and equalized odds."""
        from retrainer.evidence import fairness_failures, fairness_summary, group_rates

        rates = group_rates(groups, y, output >= threshold, rules.min_group_size)
        summary = fairness_summary(rates)
        failures = fairness_failures(summary, rules.min_disparate_impact, rules.max_equalized_odds_difference)
        return rates, summary, failures, "disparate_impact"

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """The positive class's probability, `SCORING_BATCH_ROWS` rows at a time (see models.scoring)."""
        from retrainer.models.scoring import batched

        return batched(lambda rows: model.predict_proba(rows)[:, 1], frame)

    def wrap(self, estimator: Any, spec: Spec, calibrate: bool) -> Any:
        if calibrate and spec.models.calibration != "none":
            from sklearn.calibration import CalibratedClassifierCV

            return CalibratedClassifierCV(estimator, method=spec.models.calibration, cv=spec.models.cv_folds)
        return estimator

    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        """0/1 at `threshold`, with the decided class's label where the task knows both labels."""
        others = [v for v in self.labels if as_text(v) != as_text(self.positive)]
        named = {1: self.positive, 0: others[0]} if len(others) == 1 else {}
        answers = []
        for p in output:
            decided = int(p >= threshold)
            label = {"label": named[decided]} if named else {}
            answers.append({"prediction": decided, "probability": float(p), "threshold": threshold, **label})
        return answers

    def logged_metrics(
        self, y: np.ndarray, predictions: pd.Series, probabilities: pd.Series, threshold: float
    ) -> dict[str, float]:
        """Every binary metric: the log keeps the positive class's probability."""
        import numpy as np

        return self.all_metrics(y, np.asarray(probabilities, dtype=float), threshold)

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:
        import numpy as np

        scores = np.asarray(output, dtype=float)
        return {
            "mean": float(scores.mean()) if len(scores) else None,
            "positive_rate": float((scores >= threshold).mean()),
        }

    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        return ("roc_auc", "pr_auc", "f1", "accuracy", "precision", "recall", "log_loss", "brier")
