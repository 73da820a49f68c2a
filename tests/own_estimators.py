"""Estimators of a user's own, importable as `own_estimators:...` in tests (pytest puts tests/ on sys.path).

Each stands for a mistake a user can make with `models.candidates: [{name, estimator, ...}]`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression


class ClosureClassifier(LogisticRegression):
    """Fits and predicts, but keeps a lambda as a fitted attribute: skops cannot save it."""

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ClosureClassifier:  # noqa: N803
        super().fit(X, y, sample_weight=sample_weight)
        self.link_ = lambda z: 1 / (1 + np.exp(-z))
        return self


def make_scaled_forest(n_estimators: int = 50, max_depth: int | None = None, **params: Any) -> Any:
    """A factory, not a class: an extra-trees classifier (a non-built-in sklearn estimator)."""
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(n_estimators=n_estimators, max_depth=max_depth, **params)


def make_unsaveable_classifier() -> ClosureClassifier:
    """Holds a lambda before it is even fitted: refused when the spec loads."""
    classifier = ClosureClassifier()
    classifier.link_ = lambda z: z
    return classifier


class ForgetfulClassifier(LogisticRegression):
    """Learns a shift of its scores at fit, but keeps it on the class, not the instance: the saved model
    lacks it, so a fresh process answers differently from the model that was evaluated."""

    learned_shift = 0.0

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> ForgetfulClassifier:  # noqa: N803
        super().fit(X, y, sample_weight=sample_weight)
        type(self).learned_shift = 0.05
        return self

    def predict_proba(self, X: Any) -> Any:  # noqa: N803
        positive = np.clip(super().predict_proba(X)[:, 1] + type(self).learned_shift, 0.0, 1.0)
        return np.column_stack([1.0 - positive, positive])
