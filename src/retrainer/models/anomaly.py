"""An anomaly detector as retrainer's models hold it: a scikit-learn detector, its cut-off, and seed copies.

`AnomalyDetector` wraps IsolationForest, LocalOutlierFactor (novelty mode: it scores rows it has
not seen), EllipticEnvelope or OneClassSVM (RBF kernel, on the scaled features the preprocessing
hands it), or a user's own detector (`estimator`: anything with `score_samples`, higher for more
normal rows, `models/custom.py`) and makes three things the same for each:
- the score: higher is more anomalous (the negated `score_samples`);
- the cut-off: the score above which `alert_rate` of the training rows lie, fitted once and saved
  with the model, so serving flags at the rate the model was fitted for. A training row's LOF
  score is its own (`negative_outlier_factor_`), not one that counts it among its neighbours;
- the stability check: `stability_seeds` copies refitted with other seeds on other samples of the
  training rows (`COPY_SHARE` of them each, so a detector without a seed, LOF or the SVM, is checked too), each
  with its own cut-off. A row's `seed_agreement` is the share of copies that flag it too.

`fit` never reads `y`: the labels of known anomalies are for scoring, never for fitting.
`predict` returns one row per input row, `metrics.ANOMALY_OUTPUT`: score, cut-off, expected alert
rate, seed agreement (the last three the same on every row; the metrics read them from there).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from sklearn.base import BaseEstimator

if TYPE_CHECKING:
    import numpy as np

METHODS = ("isolation_forest", "local_outlier_factor", "elliptic_envelope", "one_class_svm")
COPY_SHARE = 0.8  # of the training rows, drawn afresh for each stability copy


def build_detector(method: str, params: dict[str, Any], seed: int, estimator: str | None = None) -> Any:
    """The scikit-learn detector of `method` (a LOF in novelty mode), or a user's own at `estimator`
    (`package.module:ClassOrFactory`, `models/custom.py`)."""
    if estimator is not None:
        from retrainer.models.imported import build_imported

        return build_imported(estimator, params, seed)
    if method == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(random_state=seed, **params)
    if method == "local_outlier_factor":
        from sklearn.neighbors import LocalOutlierFactor

        return LocalOutlierFactor(novelty=True, **params)
    if method == "elliptic_envelope":
        from sklearn.covariance import EllipticEnvelope

        return EllipticEnvelope(random_state=seed, **params)
    if method == "one_class_svm":  # libsvm: no seed; its fit grows with the square of the rows
        from sklearn.svm import OneClassSVM

        return OneClassSVM(kernel="rbf", **params)
    raise ValueError(f"unknown anomaly detector {method!r} (choose from {', '.join(METHODS)})")


class AnomalyDetector(BaseEstimator):
    """A detector with its cut-off and seed copies (see the module docstring)."""

    def __init__(
        self,
        method: str = "isolation_forest",
        params: dict[str, Any] | None = None,
        seed: int = 0,
        alert_rate: float = 0.05,
        stability_seeds: int = 2,
        estimator: str | None = None,
    ) -> None:
        self.method = method
        self.params = params
        self.seed = seed
        self.alert_rate = alert_rate
        self.stability_seeds = stability_seeds
        self.estimator = estimator  # a user's own detector (`package.module:ClassOrFactory`), or None

    def fit(self, X: Any, y: Any = None) -> AnomalyDetector:  # noqa: N803 - y is never read
        import numpy as np

        params = dict(self.params or {})
        with warnings.catch_warnings():
            # MinCovDet's C-steps on a 0/1 column (a one-hot category) report rounding as a rising determinant
            warnings.filterwarnings("ignore", message="Determinant has increased", category=RuntimeWarning)
            self.detector_ = build_detector(self.method, params, self.seed, self.estimator).fit(X)
            self.copies_, cutoffs = [], []
            for i in range(self.stability_seeds):
                rows = self._resample(len(X), self.seed + 1 + i)
                part = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
                self.copies_.append(build_detector(self.method, params, self.seed + 1 + i, self.estimator).fit(part))
                cutoffs.append(self._cutoff(self.copies_[-1], part))
        self.cutoff_ = self._cutoff(self.detector_, X)
        self.copy_cutoffs_ = np.array(cutoffs, dtype=float)
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    @staticmethod
    def _resample(n: int, seed: int) -> np.ndarray:
        """The rows a stability copy learns from: `COPY_SHARE` of them, drawn without replacement."""
        import numpy as np

        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=max(2, round(COPY_SHARE * n)), replace=False))

    def _cutoff(self, detector: Any, X: Any) -> float:  # noqa: N803
        """The score above which `alert_rate` of the training rows lie."""
        import numpy as np

        if hasattr(detector, "negative_outlier_factor_"):  # a LOF: each row's own, not one among its neighbours
            scores = -np.asarray(detector.negative_outlier_factor_, dtype=float)
        else:
            scores = -np.asarray(detector.score_samples(X), dtype=float)
        return float(np.quantile(scores, 1.0 - self.alert_rate))

    def score_samples(self, X: Any) -> np.ndarray:  # noqa: N803
        """The anomaly score: higher is more anomalous."""
        import numpy as np

        return -np.asarray(self.detector_.score_samples(X), dtype=float)

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        """Per row: score, cut-off, expected alert rate, seed agreement (`metrics.ANOMALY_OUTPUT`)."""
        import numpy as np

        scores = self.score_samples(X)
        if self.copies_:
            copies = zip(self.copies_, self.copy_cutoffs_, strict=True)
            agreement = np.mean([-np.asarray(c.score_samples(X)) >= cut for c, cut in copies], axis=0).astype(float)
        else:  # no copies (stability_seeds: 0): nothing to disagree with
            agreement = np.ones(len(scores))
        n = len(scores)
        return np.column_stack([scores, np.full(n, self.cutoff_), np.full(n, self.alert_rate), agreement])
