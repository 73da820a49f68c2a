"""Scoring many rows without the model's dense intermediate for all of them at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCORING_BATCH_ROWS = 100_000


def batched(
    predict: Callable[[pd.DataFrame], np.ndarray], frame: pd.DataFrame, batch_rows: int = SCORING_BATCH_ROWS
) -> np.ndarray:
    """`predict(frame)`, `batch_rows` rows at a time.

    The preprocessor turns each row into a dense float64 vector (one-hot columns included): for a
    million rows that is gigabytes, many times the frame. Models score rows independently, so the
    batched outputs equal the whole-frame ones.
    """
    import numpy as np

    if len(frame) <= batch_rows:
        return np.asarray(predict(frame))
    return np.concatenate(
        [predict(frame.iloc[start : start + batch_rows]) for start in range(0, len(frame), batch_rows)]
    )
