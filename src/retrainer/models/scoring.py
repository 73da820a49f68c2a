"""Scoring many rows without the model's dense intermediate for all of them at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SCORING_BATCH_ROWS = 100_000


def positive_scores(model: Any, frame: pd.DataFrame, batch_rows: int = SCORING_BATCH_ROWS) -> np.ndarray:
    """`model.predict_proba(frame)[:, 1]`, `batch_rows` rows at a time.

    The preprocessor turns each row into a dense float64 vector (one-hot columns included): for a
    million rows that is gigabytes, many times the frame. Models score rows independently, so the
    batched scores equal the whole-frame ones.
    """
    import numpy as np

    if len(frame) <= batch_rows:
        return np.asarray(model.predict_proba(frame)[:, 1])
    parts = [
        model.predict_proba(frame.iloc[start : start + batch_rows])[:, 1] for start in range(0, len(frame), batch_rows)
    ]
    return np.concatenate(parts)
