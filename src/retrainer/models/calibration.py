"""Reliability-curve data and its plot: how well predicted probabilities match observed rates.

The curve is stored in the evaluation artifact (plain lists), so a report can redraw it without
the model; `plot_calibration` draws it with matplotlib's Agg backend (imported only when called).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

N_BINS = 10


def reliability_curve(y: np.ndarray, proba: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Per non-empty bin of predicted probability (uniform bins): mean prediction, observed rate, rows."""
    import numpy as np
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, proba, n_bins=n_bins, strategy="uniform")
    counts = np.bincount(np.minimum((proba * n_bins).astype(int), n_bins - 1), minlength=n_bins)
    return {
        "strategy": "uniform",
        "n_bins": n_bins,
        "prob_pred": [round(float(v), 6) for v in predicted],
        "prob_true": [round(float(v), 6) for v in observed],
        "counts": [int(c) for c in counts if c > 0],
    }


def plot_calibration(curves: dict[str, dict[str, Any]], path: str | Path, title: str = "Calibration") -> Path:
    """One line per curve (e.g. test, oot) against the diagonal of perfect calibration; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, curve in curves.items():
        axis.plot(curve["prob_pred"], curve["prob_true"], marker="o", label=name)
    axis.set(xlabel="mean predicted probability", ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1))
    axis.set_title(title)
    axis.legend(loc="upper left")
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
