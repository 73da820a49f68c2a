"""Transformers that live inside saved models. Their import path is part of every saved model: keep it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.impute import SimpleImputer


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
        frame = X.copy(deep=False)  # copy-on-write: the columns set below never touch X's
        for rule in self.rules or []:
            frame[rule["name"]] = _derive(frame, rule)
        for column in self.categorical or []:
            if column in frame.columns and not _is_text(frame[column]):
                # one text type, NaN for missing, whatever the source's dtype
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


class ColumnMedianImputer(SimpleImputer):  # type: ignore[misc]
    """SimpleImputer whose medians are found a column at a time.

    scikit-learn's median argsorts the whole masked matrix (an index and a sorted copy of it: at 8 M
    rows x 20 columns, 2.5 GB more than the data, and a minute); np.median partitions one column at a
    time. Both average the two middle values of an even count, so the medians are the same numbers.
    Every other strategy, and everything but fitting the statistics, is SimpleImputer's own.
    """

    def _dense_fit(self, X: np.ndarray, strategy: str, missing_values: Any, fill_value: Any) -> np.ndarray:  # noqa: N803
        if strategy != "median" or self.add_indicator or not _is_nan(missing_values) or X.dtype.kind != "f":
            statistics: np.ndarray = super()._dense_fit(X, strategy, missing_values, fill_value)
            return statistics
        self.indicator_ = None
        medians = np.full(X.shape[1], 0.0 if self.keep_empty_features else np.nan)
        for i in range(X.shape[1]):
            column = X[:, i]
            present = column[~np.isnan(column)]
            if present.size:
                medians[i] = np.median(present)
        return medians


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _is_text(column: pd.Series) -> bool:
    """Already the text type the normalisation below produces (pandas' default `str`, NaN for missing)."""
    return isinstance(column.dtype, pd.StringDtype) and column.dtype == pd.StringDtype(na_value=np.nan)


class CategoryCodes(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Each text column's category number: what SimpleImputer("missing") then OrdinalEncoder give, in pandas.

    Categories are the sorted values seen in fit, missing counted as the text "missing"; a value not
    seen in fit is -1. The scikit-learn pair turns every cell into a Python string first (gigabytes and
    minutes at 10 M rows); this hashes the column as it is and returns the same float64 codes.
    """

    def fit(self, X: pd.DataFrame, y: Any = None) -> CategoryCodes:  # noqa: N803
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.categories_ = [np.asarray(sorted(_filled(X[c]).unique().tolist()), dtype=object) for c in X.columns]
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:  # noqa: N803
        codes = np.empty((len(X), len(self.categories_)), dtype=np.float64)
        for i, (column, categories) in enumerate(zip(X.columns, self.categories_, strict=True)):
            # number the distinct values (fast on Arrow text), then look only those up among the categories
            distinct_codes, distinct = pd.factorize(_filled(X[column]))
            codes[:, i] = pd.Index(categories).get_indexer(distinct)[distinct_codes]
        return codes


def _filled(column: pd.Series) -> pd.Series:
    return column.astype(str).where(column.notna(), "missing") if not _is_text(column) else column.fillna("missing")


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


class TextTfidf(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """TF-IDF of one free-text column: word 1-2-grams and character 2-5-grams within words, side by side.

    Words carry the meaning; character n-grams carry spelling variants, plurals and typos that words
    miss. Both use sublinear tf and keep at most `max_features` n-grams each, so the width (and the
    model's memory) is bounded whatever the vocabulary. Fitted on the training split only, inside the
    model: serving reads the same vocabulary. A missing value is the empty text. Output is sparse.
    """

    def __init__(self, max_features: int = 5000, min_df: int = 2) -> None:
        self.max_features = max_features
        self.min_df = min_df

    def fit(self, X: Any, y: Any = None) -> TextTfidf:  # noqa: N803 - scikit-learn's names
        from sklearn.feature_extraction.text import TfidfVectorizer

        text = _text_values(X)
        self.feature_names_in_ = np.asarray([str(c) for c in getattr(X, "columns", ["text"])][:1], dtype=object)
        self.n_features_in_ = 1
        # a few rows (a CV fold of a tiny table) cannot ask a word to appear twice
        min_df = self.min_df if len(text) >= 20 * self.min_df else 1
        common = {"sublinear_tf": True, "min_df": min_df, "max_features": self.max_features, "dtype": np.float32}
        self.words_ = TfidfVectorizer(ngram_range=(1, 2), **common).fit(text)
        self.characters_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), **common).fit(text)
        return self

    def transform(self, X: Any) -> Any:  # noqa: N803
        from scipy import sparse

        text = _text_values(X)
        return sparse.hstack([self.words_.transform(text), self.characters_.transform(text)], format="csr")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        column = str(self.feature_names_in_[0])
        words = [f"{column}:{w}" for w in self.words_.get_feature_names_out()]
        characters = [f"{column}:'{c}'" for c in self.characters_.get_feature_names_out()]
        return np.asarray(words + characters, dtype=object)


def _text_values(X: Any) -> list[str]:  # noqa: N803
    """One column (a one-column frame, a Series or an array) as a list of strings, missing as ''."""
    column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X).ravel())
    return [value if isinstance(value, str) else "" if pd.isna(value) else str(value) for value in column.tolist()]
