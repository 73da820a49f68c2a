"""The run's plots as PNG bytes (matplotlib, Agg backend): for the HTML report and for MLflow.

Each function takes plain arrays or artifact dicts and returns PNG bytes, so a missing artifact
only means a missing plot. `run_plots` draws every plot a run's artifacts allow.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from retrainer.tasks import from_info

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure

    from retrainer.store import RunStore

CHALLENGER, CHAMPION, BAD = "#1f77b4", "#ff7f0e", "#d62728"


def _figure(width: float = 5.0, height: float = 4.0) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    figure = Figure(figsize=(width, height), dpi=90)
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def roc_plot(y: np.ndarray, proba: np.ndarray) -> bytes:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, proba)
    figure, axes = _figure()
    axes.plot(fpr, tpr, color=CHALLENGER, label=f"model (AUC {roc_auc_score(y, proba):.3f})")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve (test set)")
    axes.legend(loc="lower right")
    return _png(figure)


def pr_plot(y: np.ndarray, proba: np.ndarray) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, proba)
    figure, axes = _figure()
    axes.plot(recall, precision, color=CHALLENGER, label=f"model (AP {average_precision_score(y, proba):.3f})")
    axes.axhline(float(y.mean()), linestyle="--", color="grey", label=f"base rate {y.mean():.3f}")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve (test set)", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return _png(figure)


def calibration_plot(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> bytes:
    from sklearn.calibration import calibration_curve

    observed, predicted = calibration_curve(y, proba, n_bins=bins, strategy="quantile")
    figure, axes = _figure()
    axes.plot(predicted, observed, "o-", color=CHALLENGER, label="model")
    axes.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    axes.set(xlabel="mean predicted probability", ylabel="observed positive rate", title="Calibration (test set)")
    axes.legend(loc="upper left")
    return _png(figure)


def confusion_plot(y: np.ndarray, proba: np.ndarray, threshold: float) -> bytes:
    from sklearn.metrics import confusion_matrix

    matrix = confusion_matrix(y, (proba >= threshold).astype(int), labels=[0, 1])
    figure, axes = _figure(4.2, 3.8)
    axes.imshow(matrix, cmap="Blues")
    for (row, col), count in _cells(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(col, row, f"{count:,}", ha="center", va="center", color=colour, fontsize=13)
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"],
        xlabel="predicted",
        ylabel="actual",
        title=f"Confusion matrix at threshold {threshold:g}",
    )
    return _png(figure)


def _cells(matrix: np.ndarray) -> list[tuple[tuple[int, int], int]]:
    return [((r, c), int(matrix[r, c])) for r in range(matrix.shape[0]) for c in range(matrix.shape[1])]


def shap_summary_plot(explanation: Mapping[str, Any], top: int = 15) -> bytes:
    """A beeswarm: one row per feature, each dot a test row, red = high feature value."""
    import numpy as np

    values = np.asarray(explanation["shap_values"], dtype=float)[:, :top]
    features = np.asarray(explanation["feature_values"], dtype=float)[:, :top]
    names = explanation["top_features"][:top]
    figure, axes = _figure(6.5, 0.35 * len(names) + 1.5)
    rng = np.random.default_rng(0)
    for rank in range(len(names)):
        row = len(names) - 1 - rank
        column = features[:, rank]
        span = np.nanmax(column) - np.nanmin(column) if len(column) else 0
        colour = (column - np.nanmin(column)) / span if span > 0 else np.full(len(column), 0.5)
        jitter = rng.uniform(-0.3, 0.3, len(column))
        axes.scatter(values[:, rank], row + jitter, c=colour, cmap="coolwarm", s=6, alpha=0.7, linewidths=0)
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_yticks(range(len(names)), labels=[_short(n) for n in reversed(names)], fontsize=8)
    axes.set(xlabel="SHAP value (red: high feature value)", title=f"SHAP summary ({explanation['explainer']})")
    return _png(figure)


def _short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def importance_plot(importances: Mapping[str, float], kind: str, top: int = 15) -> bytes:
    items = [(_short(n), v) for n, v in sorted(importances.items(), key=lambda p: -p[1])[:top]]
    figure, axes = _figure(6.5, 0.35 * len(items) + 1.5)
    axes.barh([n for n, _ in reversed(items)], [v for _, v in reversed(items)], color=CHALLENGER)
    axes.tick_params(axis="y", labelsize=8)
    axes.set(xlabel=f"importance ({kind})", title="Global feature importance")
    return _png(figure)


def comparison_plot(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None, metrics: tuple[str, ...]
) -> bytes:
    import numpy as np

    shown = [m for m in metrics if m in challenger]
    x = np.arange(len(shown))
    figure, axes = _figure(6.5, 4)
    width = 0.38 if champion else 0.6
    axes.bar(
        x - (width / 2 if champion else 0), [challenger[m] for m in shown], width, label="challenger", color=CHALLENGER
    )
    if champion:
        axes.bar(x + width / 2, [champion.get(m, 0.0) for m in shown], width, label="champion", color=CHAMPION)
    axes.set_xticks(x, labels=shown)
    axes.set(ylim=(0, 1.05), title="Challenger vs champion (same test set)")
    axes.legend(loc="upper right")
    return _png(figure)


def drift_plot(drift: Mapping[str, Any]) -> bytes:
    features = drift.get("features", [])
    score_key = "psi" if any(f.get("psi") is not None for f in features) else "ks"
    rows = sorted(features, key=lambda f: -(f.get(score_key) or 0.0))[:20]
    figure, axes = _figure(6.5, 0.35 * max(len(rows), 1) + 1.5)
    colours = [BAD if f.get("drifted") else CHALLENGER for f in reversed(rows)]
    axes.barh(
        [str(f["name"]) for f in reversed(rows)], [f.get(score_key) or 0.0 for f in reversed(rows)], color=colours
    )
    axes.tick_params(axis="y", labelsize=8)
    axes.set(xlabel=score_key.upper(), title="Drift per feature (red: drifted)")
    return _png(figure)


def model_scores(artifacts: Mapping[str, Any], target: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Test labels and the model's probabilities, if the run got as far as training."""
    try:
        test, model, training = artifacts["test"], artifacts["model"], artifacts["training"]
    except KeyError:
        return None
    return test[target].to_numpy().astype(int), from_info(None).predict(model, test[training["input_columns"]])


def run_plots(
    artifacts: Mapping[str, Any],
    target: str,
    threshold: float,
    metrics: tuple[str, ...],
    cache: PlotCache | None = None,
) -> dict[str, bytes]:
    """Every plot the given artifacts allow, by file stem (roc, pr, calibration, confusion, shap, ...).

    With a `cache`, a group of plots whose inputs (artifact digests, threshold, target) were drawn
    before is read back instead of drawn: register and the report draw the same plots, and an
    unchanged re-run would otherwise load the model and redraw everything for the same pictures.
    """
    cache = cache or PlotCache(None, {})
    plots: dict[str, bytes] = {}

    def scores_plots() -> dict[str, bytes]:
        scores = model_scores(artifacts, target)
        if scores is None:
            return {}
        y, proba = scores
        return {
            "roc": roc_plot(y, proba),
            "pr": pr_plot(y, proba),
            "calibration": calibration_plot(y, proba),
            "confusion": confusion_plot(y, proba, threshold),
        }

    plots.update(cache.plots("scores", ("test", "model", "training"), [target, threshold], scores_plots))
    if artifacts.get("explanation"):
        explanation = artifacts["explanation"]
        plots.update(
            cache.plots(
                "explanation",
                ("explanation",),
                [],
                lambda: {
                    "shap_summary": shap_summary_plot(explanation),
                    "importances": importance_plot(explanation["importances"], explanation["importance_kind"]),
                },
            )
        )
    evaluation, decision = artifacts.get("evaluation"), artifacts.get("decision")
    if evaluation and decision and decision.get("winner") != "unchanged":
        plots["comparison"] = comparison_plot(evaluation["test"], decision.get("champion_metrics"), metrics)
    drift = artifacts.get("drift")
    if drift and drift.get("features"):
        plots.update(cache.plots("drift", ("drift",), [], lambda: {"drift": drift_plot(drift)}))
    return plots


class PlotCache:
    """Plots already drawn, under `cache/plots/<key>/` in the run store; the key hashes the digests of
    the artifacts a group of plots is drawn from, its other inputs and this module's source."""

    def __init__(self, store: RunStore | None, digests: Mapping[str, str]) -> None:
        self.store, self.digests = store, dict(digests)

    def plots(
        self, group: str, needs: tuple[str, ...], extra: list[Any], draw: Callable[[], dict[str, bytes]]
    ) -> dict[str, bytes]:
        """The group's plots from the cache, else drawn (and stored when every input has a digest)."""
        if self.store is None or any(name not in self.digests for name in needs):
            return draw()
        import hashlib
        import json
        import posixpath

        from retrainer.pipeline import _code_digest

        parts = [group, [self.digests[name] for name in needs], extra, _code_digest((__name__,))]
        key = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]
        directory = self.store.path("cache", "plots", key)
        index = posixpath.join(directory, "index.json")
        try:
            stems = self.store.read_json(index)
            return {stem: self.store.read_bytes(posixpath.join(directory, f"{stem}.png")) for stem in stems}
        except FileNotFoundError:
            pass
        drawn = draw()
        for stem, png in drawn.items():
            self.store.write_bytes(posixpath.join(directory, f"{stem}.png"), png)
        self.store.write_json(index, list(drawn))  # written last: an index means a complete set
        return drawn
