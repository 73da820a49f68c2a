"""Turning the target column into 0/1, with the positive class given or inferred."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import TargetSpec

_POSITIVE_WORDS = ("yes", "y", "true", "t", "1", "1.0", "positive", "pos")


def positive_label(values: pd.Series, target: TargetSpec) -> Any:
    """The label that means "positive": the one the spec gives, else inferred from two labels."""
    labels = list(values.dropna().unique())
    if len(labels) > 2:
        shown = ", ".join(repr(v) for v in sorted(labels, key=str)[:6])
        raise DataValidationError(
            f"target '{target.column}' has {len(labels)} distinct labels ({shown}...); a binary target has 2",
            failures=[f"target: {len(labels)} labels, expected 2"],
        )
    if target.positive is not None:
        matches = [v for v in labels if str(v).lower() == str(target.positive).lower()]
        if labels and not matches:
            raise DataValidationError(
                f"target '{target.column}': positive label {target.positive!r} never occurs (labels: {labels})",
                failures=[f"target: positive label {target.positive!r} not found"],
                hint="fix target.positive in the spec",
            )
        return matches[0] if matches else target.positive
    for label in labels:
        if str(label).strip().lower() in _POSITIVE_WORDS or label is True:
            return label
    if len(labels) == 2:
        raise DataValidationError(
            f"target '{target.column}': cannot tell which of {labels} is positive",
            failures=["target: positive class ambiguous"],
            hint=f"set target: {{column: {target.column}, positive: <label>}} in the spec",
        )
    return labels[0] if labels else None


def encode_target(values: pd.Series, positive: Any) -> np.ndarray:
    """1 where the value equals the positive label (compared as text, so 1 == '1' == True)."""
    import numpy as np

    as_text = values.astype("string").str.lower().to_numpy(dtype=object, na_value=None)
    return np.asarray([v is not None and v == str(positive).lower() for v in as_text], dtype="int64")
