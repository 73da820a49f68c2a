"""Multiclass classification: k labels, coded 0..k-1 in the order of `labels`, which the model keeps.

The output is the probability of every class (n x k); a row's decision is its most probable class.
Two models can be compared only on the same label set: a champion that knows other classes is
kept, with the reason, and a person may still promote the challenger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from retrainer.target import as_text
from retrainer.tasks.base import Task, invalid_target, plain_value

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import FairnessSpec, Spec

MAX_CLASSES = 200


class MulticlassTask(Task):
    name: ClassVar[str] = "multiclass"
    estimator_type: ClassVar[str] = "classifier"
    default_metric: ClassVar[str] = "log_loss"
    has_class_weight: ClassVar[bool] = True
    explains_every_class: ClassVar[bool] = True
    sklearn_scoring: ClassVar[str] = "neg_log_loss"
    fairness_bounds: ClassVar[Mapping[str, tuple[str, str]]] = {
        "accuracy_gap": ("max", "max_accuracy_gap"),
        "selection_rate_parity": ("min", "min_disparate_impact"),
    }

    def __init__(self, labels: list[Any]) -> None:
        self.labels = list(labels)
        self._codes = {as_text(label): code for code, label in enumerate(self.labels)}

    @classmethod
    def from_target(cls, values: pd.Series, spec: Spec) -> MulticlassTask:
        labels = sorted_labels(values.dropna())
        if len(labels) < 2:
            raise invalid_target(
                f"target '{spec.target.column}' has {len(labels)} class; a classifier needs at least 2",
                "target: fewer than 2 classes",
            )
        if len(labels) > MAX_CLASSES:
            raise invalid_target(
                f"target '{spec.target.column}' has {len(labels):,} classes (more than {MAX_CLASSES})",
                "target: too many classes",
                hint="is it an id or a number? use task: regression for amounts",
            )
        return cls(labels)

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> MulticlassTask:
        return cls(list(info["labels"]))

    def info(self) -> dict[str, Any]:
        return {"task": self.name, "labels": self.labels}

    def same_target(self, other: Task) -> str | None:
        different = super().same_target(other)
        if different or not isinstance(other, MulticlassTask):
            return different
        if [as_text(v) for v in other.labels] != [as_text(v) for v in self.labels]:
            new = [v for v in self.labels if as_text(v) not in other._codes]
            gone = [v for v in other.labels if as_text(v) not in self._codes]
            parts = [f"new classes {new}" if new else "", f"classes no longer seen {gone}" if gone else ""]
            return "the champion was trained on other classes: " + ", ".join(p for p in parts if p)
        return None

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def encode(self, values: pd.Series) -> np.ndarray:
        import numpy as np

        codes = values.map(lambda value: self._codes.get(as_text(value), -1))
        unknown = values[codes.to_numpy() < 0]
        if len(unknown):
            shown = sorted({str(v) for v in unknown.unique()})[:5]
            raise invalid_target(
                f"target '{values.name}': {len(unknown)} rows have labels the model does not know: {shown}",
                "target: unseen labels",
                hint=f"the model's classes are {self.labels}",
            )
        return np.asarray(codes, dtype="int64")

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        return y

    def check_split(self, parts: Mapping[str, np.ndarray]) -> None:
        import numpy as np

        train_classes = set(np.unique(parts["train"]).tolist())
        if len(train_classes) < 2:
            raise invalid_target(
                f"the train split has only one target class ({len(parts['train'])} rows)", "split: train has one class"
            )
        unseen = sorted(set(np.unique(parts["test"]).tolist()) - train_classes)
        if unseen:
            names = [self.labels[code] for code in unseen]
            raise invalid_target(
                f"test labels {names} never occur in the training split",
                "split: test label unseen in training",
                hint="a class needs rows before the test window; collect more data or widen split.train_window",
            )

    def balance(self, labels: pd.Series, minimum: float) -> tuple[bool, str, float] | None:
        counts = labels.map(as_text).value_counts()
        rarest = str(counts.idxmin())
        share = float(counts.min()) / max(int(counts.sum()), 1)
        message = (
            f"{len(counts)} classes; rarest {rarest!r} is {share:.1%} of rows ({int(counts.min())}; "
            f"minimum {minimum:.1%} and 2 rows)"
        )
        return share >= minimum and int(counts.min()) >= 2, message, round(share, 4)

    def one_vs_rest(self, y: np.ndarray) -> list[np.ndarray]:
        import numpy as np

        return [(y == code).astype(int) for code in np.unique(y)]

    def describe(self, y: np.ndarray) -> dict[str, Any]:
        import numpy as np

        counts = np.bincount(y, minlength=self.n_classes) if len(y) else np.zeros(self.n_classes)
        total = max(int(counts.sum()), 1)
        return {
            "class_shares": {
                str(label): round(float(c) / total, 4) for label, c in zip(self.labels, counts, strict=True)
            }
        }

    def fairness(
        self, groups: pd.Series, y: np.ndarray, output: np.ndarray, threshold: float, rules: FairnessSpec
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str], str]:
        """Accuracy per group (its gap) and each class's selection rate across groups (its parity)."""
        from retrainer.evidence import bound_failures, class_fairness_summary, class_group_rates

        rates = class_group_rates(groups, y, output.argmax(axis=1), self.n_classes, rules.min_group_size)
        summary = class_fairness_summary(rates, [str(label) for label in self.labels])
        return rates, summary, bound_failures(summary, self.fairness_limits(rules.model_dump())), "accuracy_gap"

    def predict(self, model: Any, frame: pd.DataFrame) -> np.ndarray:
        """Every class's probability, in the columns of `labels` (a class a fold never saw scores 0)."""
        from retrainer.models.scoring import batched

        return batched(lambda rows: self._all_columns(model, model.predict_proba(rows)), frame)

    def _all_columns(self, model: Any, proba: np.ndarray) -> np.ndarray:
        import numpy as np

        known = np.asarray(getattr(model, "classes_", np.arange(proba.shape[1])), dtype="int64")
        if proba.shape[1] == self.n_classes and np.array_equal(known, np.arange(self.n_classes)):
            return proba
        full = np.zeros((len(proba), self.n_classes))
        full[:, known] = proba
        return full

    def response(self, output: np.ndarray, threshold: float) -> list[dict[str, Any]]:
        return [
            {
                "prediction": plain_value(self.labels[int(row.argmax())]),
                "probability": float(row.max()),
                "probabilities": {str(label): float(p) for label, p in zip(self.labels, row, strict=True)},
            }
            for row in output
        ]

    def logged_metrics(
        self, y: np.ndarray, predictions: pd.Series, probabilities: pd.Series, threshold: float
    ) -> dict[str, float]:
        """The log keeps the decided class, not every class's probability: the metrics of decided labels."""
        import numpy as np

        from retrainer.metrics import get_metric

        decided = np.eye(self.n_classes)[self.encode(predictions)]
        metrics = self.all_metrics(y, decided, threshold)
        return {name: value for name, value in metrics.items() if get_metric(name).needs == "labels"}

    def drift_values(self, output: np.ndarray) -> np.ndarray:
        """The decided class of each row: prediction drift compares the class shares."""
        import numpy as np

        return np.asarray([str(self.labels[code]) for code in output.argmax(axis=1)], dtype=object)

    def output_summary(self, output: np.ndarray, threshold: float) -> dict[str, Any]:
        import numpy as np

        decided = np.bincount(output.argmax(axis=1), minlength=self.n_classes) if len(output) else np.zeros(1)
        total = max(int(decided.sum()), 1)
        return {"class_shares": {str(label): float(c) / total for label, c in zip(self.labels, decided, strict=True)}}

    @classmethod
    def shown_metrics(cls) -> tuple[str, ...]:
        return ("accuracy", "f1_macro", "balanced_accuracy", "log_loss", "roc_auc_ovr")


def sorted_labels(values: pd.Series) -> list[Any]:
    """The distinct labels in their natural order (numbers by value, text alphabetically), as plain values."""
    distinct = [plain_value(v) for v in values.unique()]
    try:
        return sorted(distinct)
    except TypeError:  # mixed kinds: by their text
        return sorted(distinct, key=str)
