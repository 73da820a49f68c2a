"""Turning the target column into 0/1, with the positive class given or inferred."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import TargetSpec

_POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "positive", "pos")


def as_text(value: Any) -> str:
    """One comparable text per value: True == 'Yes' == 1 == 1.0 == '1' -> '1', ' Churned' -> 'churned'."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    text = str(value).strip().lower()
    # YAML 1.1 reads an unquoted `positive: Yes` as True: yes/no must meet true/false halfway
    return {"true": "1", "false": "0", "yes": "1", "no": "0", "y": "1", "n": "0", "t": "1", "f": "0"}.get(text, text)


def shown_labels(labels: list[Any]) -> str:
    """Labels as the user wrote them, for messages: `0.0, 1e+30`, `'No', 'Yes'`, not `np.float64(0.0)`."""
    return ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in labels)


def positive_label(values: pd.Series, target: TargetSpec) -> Any:
    """The label that means "positive": the one the spec gives, else a word that says so (yes, true, 1,
    positive), else the rarer of two labels; two labels equally common are a data error."""
    labels = list(values.dropna().unique())
    if len(labels) > 2:
        shown = shown_labels(sorted(labels, key=str)[:6])
        raise DataValidationError(
            f"target '{target.column}' has {len(labels)} distinct labels ({shown}...); a binary target has 2",
            failures=[f"target: {len(labels)} labels, expected 2"],
        )
    if target.positive is not None:
        matches = [v for v in labels if as_text(v) == as_text(target.positive)]
        if labels and not matches:
            raise DataValidationError(
                f"target '{target.column}': positive label {target.positive!r} never occurs"
                f" (labels: {shown_labels(labels)})",
                failures=[f"target: positive label {target.positive!r} not found"],
                hint="fix target.positive in the spec",
            )
        return matches[0] if matches else target.positive
    for label in labels:
        if as_text(label) in _POSITIVE_WORDS:
            return label
    counts = values.value_counts()
    if len(labels) == 2 and counts.iloc[0] != counts.iloc[1]:
        return counts.index[-1]  # the rarer label: the event a model is usually kept to find (bad loans, churn)
    if len(labels) == 2:
        raise DataValidationError(
            f"target '{target.column}': cannot tell which of {shown_labels(labels)} is positive",
            failures=["target: positive class ambiguous"],
            hint=(
                f"set target: {{column: {target.column}, positive: <label>}} in the spec, "
                "or `task: multiclass` if these are two of several classes"
            ),
        )
    return labels[0] if labels else None


def encode_target(values: pd.Series, positive: Any) -> np.ndarray:
    """1 where the value equals the positive label (compared by `as_text`, so 1 == '1' == True)."""
    import numpy as np

    wanted = as_text(positive)
    return np.asarray(
        [value is not None and value == value and as_text(value) == wanted for value in values], dtype="int64"
    )
