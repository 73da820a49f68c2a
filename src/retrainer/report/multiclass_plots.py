"""A multiclass model's plots: the k x k confusion matrix, one-vs-rest ROC and PR curves per class,
top-label calibration, and the mean |SHAP| of each feature split by class.

With many classes a curve plot keeps the `MAX_CURVES` most frequent ones (the title says so) and a
confusion matrix drops its numbers past `MAX_ANNOTATED` classes: the picture must stay readable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from retrainer.report.figures import CHALLENGER, Scored, annotate_cells, figure, png, short

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

STEMS = ("confusion", "roc", "pr", "calibration")
MAX_CURVES = 10
MAX_ANNOTATED = 15


def draw(scored: Scored) -> dict[str, bytes]:
    """The plots of per-class probabilities (n x k, in the order of `scored.classes`), by stem (`STEMS`)."""
    y, proba = scored.y.astype(int), scored.output
    classes = scored.classes or [str(code) for code in range(proba.shape[1])]
    return {
        "confusion": confusion_plot(y, proba.argmax(axis=1), classes),
        "roc": one_vs_rest_plot(y, proba, classes, "roc"),
        "pr": one_vs_rest_plot(y, proba, classes, "pr"),
        "calibration": top_label_calibration_plot(y, proba),
    }


def confusion_plot(y: np.ndarray, predicted: np.ndarray, classes: list[str]) -> bytes:
    return png(confusion_figure(y, predicted, classes))


def confusion_figure(y: np.ndarray, predicted: np.ndarray, classes: list[str]) -> Figure:
    """Counts, and each row divided by its total (the recall of that class on the diagonal)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    counts = confusion_matrix(y, predicted, labels=list(range(k)))
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = min(3.0 + 0.45 * k, 12.0)
    drawn, (left, right) = figure(2 * side + 1, side + 0.6, columns=2)
    names = [short(name, 16) for name in classes]
    fontsize = max(6.0, 12.0 - 0.5 * k)
    panels = ((left, counts, ",", "counts"), (right, shares, ".2f", "share of each actual class"))
    for axes, matrix, fmt, what in panels:
        axes.imshow(matrix, cmap="Blues", vmin=0)
        if k <= MAX_ANNOTATED:
            annotate_cells(axes, matrix, fmt, fontsize)
        axes.set_xticks(range(k), labels=names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
        axes.set_yticks(range(k), labels=names)
        axes.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix ({what})")
    return drawn


def one_vs_rest_plot(y: np.ndarray, proba: np.ndarray, classes: list[str], curve: str) -> bytes:
    """Each class against the rest: ROC (`curve="roc"`) or precision-recall (`"pr"`), a line per class."""
    import numpy as np
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    counts = np.bincount(y, minlength=len(classes))
    shown = [c for c in np.argsort(-counts, kind="stable") if 0 < counts[c] < len(y)][:MAX_CURVES]
    drawn, axes = figure(5.6, 4.4)
    for code in sorted(shown):
        truth = (y == code).astype(int)
        if curve == "roc":
            fpr, tpr, _ = roc_curve(truth, proba[:, code])
            axes.plot(fpr, tpr, label=f"{short(classes[code], 20)} (AUC {auc(fpr, tpr):.3f})")
        else:
            precision, recall, _ = precision_recall_curve(truth, proba[:, code])
            ap = average_precision_score(truth, proba[:, code])
            axes.plot(recall, precision, label=f"{short(classes[code], 20)} (AP {ap:.3f})")
    of = f", {len(shown)} most frequent of {len(classes)} classes" if len(shown) < len(classes) else ""
    if curve == "roc":
        axes.plot([0, 1], [0, 1], "--", color="grey", label="chance")
        axes.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, one vs rest{of}")
        axes.legend(loc="lower right", fontsize=8)
    else:
        axes.set(xlabel="recall", ylabel="precision", title=f"Precision-recall, one vs rest{of}", ylim=(0, 1.02))
        axes.legend(loc="lower left", fontsize=8)
    return png(drawn)


def top_label_calibration_plot(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> bytes:
    """The predicted class's probability (the model's confidence) against how often that class is right."""
    import numpy as np

    confidence, correct = proba.max(axis=1), (proba.argmax(axis=1) == y).astype(float)
    edges = np.unique(np.quantile(confidence, np.linspace(0, 1, bins + 1)))
    bucket = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, max(len(edges) - 2, 0))
    filled = [b for b in range(max(len(edges) - 1, 1)) if (bucket == b).any()]
    drawn, axes = figure()
    axes.plot(
        [confidence[bucket == b].mean() for b in filled],
        [correct[bucket == b].mean() for b in filled],
        "o-",
        color=CHALLENGER,
        label="model",
    )
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    axes.set(
        xlabel="confidence (probability of the predicted class)",
        ylabel="accuracy of the predicted class",
        title="Top-label calibration (test set)",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
    )
    axes.legend(loc="upper left")
    return png(drawn)


def shap_by_class_plot(by_class: Mapping[str, Mapping[str, float]], top: list[str]) -> bytes:
    """Mean |SHAP| of the `top` features, one stacked segment per class: which class a feature speaks to."""
    import numpy as np

    names = list(reversed(top))
    drawn, axes = figure(6.5, 0.35 * len(names) + 1.8)
    left = np.zeros(len(names))
    for label, values in by_class.items():
        widths = np.asarray([float(values.get(name, 0.0)) for name in names])
        axes.barh([short(n) for n in names], widths, left=left, label=short(str(label), 20))
        left += widths
    axes.tick_params(axis="y", labelsize=8)
    axes.set(xlabel="mean |SHAP value| (stacked by class)", title="SHAP by class")
    axes.legend(loc="lower right", fontsize=8)
    return png(drawn)
