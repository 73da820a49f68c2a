"""A binary model's plots: ROC, precision-recall, calibration and the confusion matrix at its threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrainer.report.figures import CHALLENGER, Scored, annotate_cells, figure, png

if TYPE_CHECKING:
    import numpy as np

STEMS = ("roc", "pr", "calibration", "confusion")


def draw(scored: Scored) -> dict[str, bytes]:
    """The plots of a positive-class score, by stem (`STEMS`)."""
    y, proba = scored.y.astype(int), scored.output
    return {
        "roc": roc_plot(y, proba),
        "pr": pr_plot(y, proba),
        "calibration": calibration_plot(y, proba),
        "confusion": confusion_plot(y, proba, scored.threshold),
    }


def roc_plot(y: np.ndarray, proba: np.ndarray) -> bytes:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, proba)
    drawn, axes = figure()
    axes.plot(fpr, tpr, color=CHALLENGER, label=f"model (AUC {roc_auc_score(y, proba):.3f})")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test set)")
    axes.legend(loc="lower right")
    return png(drawn)


def pr_plot(y: np.ndarray, proba: np.ndarray) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, proba)
    drawn, axes = figure()
    axes.plot(recall, precision, color=CHALLENGER, label=f"model (AP {average_precision_score(y, proba):.3f})")
    axes.axhline(float(y.mean()), linestyle="--", color="grey", label=f"base rate {y.mean():.3f}")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (test set)", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return png(drawn)


def calibration_plot(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> bytes:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, proba, n_bins=bins, strategy="quantile")
    drawn, axes = figure()
    axes.plot(predicted, observed, "o-", color=CHALLENGER, label="model")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    axes.set(xlabel="mean predicted probability", ylabel="observed positive rate", title="Calibration (test set)")
    axes.legend(loc="upper left")
    return png(drawn)


def confusion_plot(y: np.ndarray, proba: np.ndarray, threshold: float) -> bytes:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    drawn, axes = figure(4.2, 3.8)
    axes.imshow(matrix, cmap="Blues")
    annotate_cells(axes, matrix, ",", 13)
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix at threshold {threshold:g}",
    )
    return png(drawn)
