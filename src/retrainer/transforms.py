"""Transformers that live inside saved models. Their import path is part of every saved model: keep it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class DerivedFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Adds the spec's derived columns (ratio, bins, date parts) and normalises text columns.

    Stateless, so fitting learns nothing; it lives in the model so serving computes the same columns.
    `rules` are plain dicts (from `DerivedFeature.model_dump()`) so the model pickles without the spec.
    """

    def __init__(self, rules: list[dict[str, Any]] | None = None, categorical: list[str] | None = None) -> None:
        self.rules = rules
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y: Any = None) -> DerivedFeatures:  # noqa: N803 - scikit-learn's names
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        frame = X.copy()
        for rule in self.rules or []:
            frame[rule["name"]] = _derive(frame, rule)
        for column in self.categorical or []:
            if column in frame.columns:  # one text type, NaN for missing, whatever the source's dtype
                frame[column] = (
                    frame[column]
                    .astype(object)
                    .where(frame[column].notna(), np.nan)
                    .astype(str)
                    .where(frame[column].notna(), np.nan)
                )
        return frame

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = list(input_features or []) + [rule["name"] for rule in self.rules or []]
        return np.asarray(names, dtype=object)


def _derive(frame: pd.DataFrame, rule: dict[str, Any]) -> pd.Series:
    if rule.get("ratio"):
        numerator, denominator = (pd.to_numeric(frame[c], errors="coerce").astype(float) for c in rule["ratio"])
        return numerator / denominator.replace(0, np.nan)
    column = frame[rule["column"]]
    if rule.get("bins"):
        edges = [-np.inf, *rule["bins"], np.inf]
        return pd.cut(pd.to_numeric(column, errors="coerce"), bins=edges, labels=False).astype(float)
    times = pd.to_datetime(column, errors="coerce")
    part = rule["date_part"]
    # pandas 3 deprecates .dt.dayofweek / .dt.dayofyear for the underscored names
    values = getattr(times.dt, {"dayofweek": "day_of_week", "dayofyear": "day_of_year"}.get(part, part))
    return values.astype(float)
