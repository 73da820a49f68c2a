"""Free-text columns: which columns are text, and how their values are split into words.

A column is *text* (TF-IDF inside the model, see `transforms.TextTfidf`) when the spec says so
(`features.text`) or when its values read as prose rather than as labels: strings whose median length
is at least `MIN_MEDIAN_CHARS`, most of them distinct (`MIN_DISTINCT_SHARE`) and most holding a space
(`MIN_SPACED_SHARE`). On real data this keeps `"Bank transfer (automatic)"` (few distinct values) a
category and makes course titles, reviews and ticket texts text; an identifier (`code-000017`: no
space) stays what validation says it is. Pure functions: no I/O.

`retrainer.drift` measures a text column's drift with the words of `tokens` (`profile_text`,
`text_drift`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

MIN_MEDIAN_CHARS = 30
MIN_DISTINCT_SHARE = 0.5
MIN_SPACED_SHARE = 0.5
INFERENCE_ROWS = 2000  # values looked at to decide a column's kind
# scikit-learn's default token pattern, lowercased: the words TF-IDF sees
TOKEN = re.compile(r"(?u)\b\w\w+\b")


def looks_like_text(values: pd.Series) -> bool:
    """Whether a column of strings reads as free text (see the module docstring for the rule)."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        return False
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return False
    present = values.dropna()
    present = present[present.map(lambda v: isinstance(v, str))].head(INFERENCE_ROWS)
    if len(present) < 10:
        return False
    text = present.astype(str)
    return bool(
        text.str.len().median() >= MIN_MEDIAN_CHARS
        and text.nunique() / len(text) >= MIN_DISTINCT_SHARE
        and text.str.contains(" ", regex=False).mean() >= MIN_SPACED_SHARE
    )


def looks_like_identifier(values: pd.Series, max_share: float) -> bool:
    """Whether a column of labels is an identifier, not a category: more than 100 distinct values, in more
    than `max_share` of its non-null rows (`validation.max_text_cardinality`). Validation warns of such a
    column (or rejects it, as a gate) and the features stage leaves it out by this one rule."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return False
    distinct = int(values.nunique(dropna=True))
    return distinct > 100 and distinct / max(int(values.notna().sum()), 1) > max_share


def tokens(value: Any) -> list[str]:
    """The words of one value as TF-IDF's word analyzer sees them (lowercased, two characters or more)."""
    return TOKEN.findall(str(value).lower()) if isinstance(value, str) else []
