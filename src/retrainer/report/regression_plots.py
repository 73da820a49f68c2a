"""A regressor's plots: predicted against actual, residuals against predicted, the residuals'
histogram, and the mean absolute error per slice (of `evaluation.slices`, else per decile of the
actual value: where in the range the model errs).

A residual is prediction minus truth, as in the fairness stage: above zero the model overshoots.
Scatter plots show at most `MAX_POINTS` rows (a seeded sample), so a large test set stays legible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.report.figures import BAD, CHALLENGER, Scored, figure, png, short

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

STEMS = ("predicted_vs_actual", "residuals", "residual_histogram", "error_by_slice")
MAX_POINTS = 5_000
DECILES = 10


def draw(scored: Scored) -> dict[str, bytes]:
    """The plots of predicted values, by stem (`STEMS`)."""
    import numpy as np

    y, predicted = scored.y.astype(float), np.asarray(scored.output, dtype=float)
    return {
        "predicted_vs_actual": predicted_vs_actual_plot(y, predicted),
        "residuals": residuals_plot(y, predicted),
        "residual_histogram": residual_histogram(predicted - y),
        "error_by_slice": error_by_slice_plot(y, predicted, scored.segments or {"actual value": deciles(y)}),
    }


def _sample(n: int) -> np.ndarray:
    import numpy as np

    return np.arange(n) if n <= MAX_POINTS else np.random.default_rng(0).choice(n, MAX_POINTS, replace=False)


def predicted_vs_actual_plot(y: np.ndarray, predicted: np.ndarray) -> bytes:
    rows = _sample(len(y))
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    drawn, axes = figure(5.0, 4.6)
    axes.scatter(y[rows], predicted[rows], s=8, alpha=0.4, color=CHALLENGER, linewidths=0, label="test rows")
    axes.plot([low, high], [low, high], "--", color="grey", label="y = x (perfect)")
    axes.set(xlabel="actual", ylabel="predicted", title="Predicted vs actual (test set)")
    axes.legend(loc="upper left")
    return png(drawn)


def residuals_plot(y: np.ndarray, predicted: np.ndarray) -> bytes:
    rows = _sample(len(y))
    drawn, axes = figure()
    axes.scatter(predicted[rows], (predicted - y)[rows], s=8, alpha=0.4, color=CHALLENGER, linewidths=0)
    axes.axhline(0, linestyle="--", color="grey")
    axes.set(xlabel="predicted", ylabel="residual (predicted − actual)", title="Residuals vs predicted (test set)")
    return png(drawn)


def residual_histogram(residuals: np.ndarray) -> bytes:
    drawn, axes = figure()
    axes.hist(residuals, bins=40, color=CHALLENGER, alpha=0.85)
    axes.axvline(0, linestyle="--", color="grey")
    axes.axvline(float(residuals.mean()), color=BAD, label=f"mean {amount(residuals.mean())}")
    axes.set(xlabel="residual (predicted − actual)", ylabel="test rows", title="Residuals (test set)")
    axes.legend(loc="upper right")
    return png(drawn)


def deciles(y: np.ndarray) -> pd.Series:
    """Each row's decile of the actual value, labelled by its range, in order."""
    import numpy as np
    import pandas as pd

    edges = np.unique(np.quantile(y, np.linspace(0, 1, DECILES + 1)))
    bucket = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, max(len(edges) - 2, 0))
    names = [f"{amount(edges[i])} – {amount(edges[i + 1])}" for i in range(max(len(edges) - 1, 1))]
    return pd.Series(pd.Categorical([names[b] for b in bucket], categories=names, ordered=True), name="actual value")


def amount(value: float) -> str:
    """A value in the target's units, to read at a glance: 24,400 rather than 2.44e+04."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def error_by_slice_plot(y: np.ndarray, predicted: np.ndarray, segments: dict[str, pd.Series]) -> bytes:
    """Mean absolute error per segment, one axes per slice column (bar labels give the rows)."""
    import numpy as np

    error = np.abs(predicted - y)
    tallest = max(s.nunique() for s in segments.values())
    drawn, axes = figure(6.0 * len(segments), 0.35 * tallest + 1.6, columns=len(segments))
    for ax, (column, groups) in zip(np.atleast_1d(axes), segments.items(), strict=True):
        labels = groups.astype(str).to_numpy()
        names = [str(n) for n in groups.cat.categories] if groups.dtype == "category" else sorted(set(labels))
        maes = [float(error[labels == name].mean()) for name in names]
        counts = [int((labels == name).sum()) for name in names]
        bars = ax.barh([short(str(n), 28) for n in reversed(names)], list(reversed(maes)), color=CHALLENGER)
        ax.bar_label(bars, labels=[f"{c:,} rows" for c in reversed(counts)], fontsize=7, padding=2)
        ax.axvline(float(error.mean()), linestyle="--", color="grey")
        ax.tick_params(axis="y", labelsize=8)
        ax.set(xlabel="mean absolute error", title=f"Error by {column} (dashed: overall {amount(error.mean())})")
        ax.margins(x=0.2)
    return png(drawn)
