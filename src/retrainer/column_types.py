"""The MLflow column types of a frame, as a model's signature states a request's columns.

A leaf: `pyfunc` (every model's signature) and `forecasting.ahead` (a forecaster's exogenous
columns) both read it, and it imports nothing of retrainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def source_columns(rows: pd.DataFrame) -> list[tuple[str, str, bool]]:
    """(column, MLflow type, required) of rows as the source gives them: the type from the dtype
    (integers `long`), required unless the rows (what the model learnt from) miss some values."""
    return [(str(c), column_type(rows[c]), not bool(rows[c].isna().any())) for c in rows.columns]


def column_type(values: pd.Series) -> str:
    """The MLflow type of one column's dtype (`string` for anything not numeric, boolean or a date)."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_integer_dtype(values):
        return "integer" if values.dtype.itemsize <= 4 else "long"
    if pd.api.types.is_float_dtype(values):
        return "float" if values.dtype.itemsize <= 4 else "double"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    return "string"
