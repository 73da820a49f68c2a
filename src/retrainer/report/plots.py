"""The run's plots as PNG bytes (matplotlib, Agg backend): for the HTML report and for MLflow.

Each function takes plain arrays or artifact dicts and returns PNG bytes, so a missing artifact
only means a missing plot. `run_plots` draws every plot a run's artifacts allow.

Which plots show a model's test output depends on what that output is, not on the task's name:
`output_kind` names it in the metrics' words (`scores`: one positive-class probability per row,
`proba`: a probability per class, `values`: predicted amounts; `forecast` and `anomaly`: their
tables) and `OUTPUT_PLOTS` maps each kind
to the module that draws it (binary_plots, multiclass_plots, regression_plots; each lists its file
stems in `STEMS`). A new task whose output is one of these kinds gets its plots for free; a new
kind is one module and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from retrainer.report import anomaly_plots, binary_plots, forecast_plots, multiclass_plots, regression_plots
from retrainer.report.figures import BAD, CHALLENGER, CHAMPION, Scored, figure, png, short
from retrainer.tasks import Task, from_info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import Spec
    from retrainer.store import RunStore

OUTPUT_PLOTS: dict[str, Callable[[Scored], dict[str, bytes]]] = {
    "scores": binary_plots.draw,
    "proba": multiclass_plots.draw,
    "values": regression_plots.draw,
    "forecast": forecast_plots.draw,
    "anomaly": anomaly_plots.draw,
}
# every stem a model's output may draw, in the order the report shows them
OUTPUT_STEMS = tuple(
    dict.fromkeys(
        [
            *binary_plots.STEMS,
            *multiclass_plots.STEMS,
            *regression_plots.STEMS,
            *forecast_plots.STEMS,
            *anomaly_plots.STEMS,
        ]
    )
)
PLOT_MODULES = (
    __name__,
    *(m.__name__ for m in (binary_plots, multiclass_plots, regression_plots, forecast_plots, anomaly_plots)),
)
PLOT_MODULES += ("retrainer.report.figures",)


def spec_slices(spec: Spec) -> dict[str, list[float] | None]:
    """The spec's `evaluation.slices`, each with its bins (None: the column's own values)."""
    return {column: spec.evaluation.slice_bins.get(column) for column in spec.evaluation.slices}


def output_kind(task: Task, output: np.ndarray) -> str:
    """What a model's output holds: `values` (a regressor), `forecast` (a backtest, `FORECAST_OUTPUT` per
    row), `proba` (n x k) or `scores` (n)."""
    if task.estimator_type == "forecaster":
        return "forecast"
    if task.estimator_type == "anomaly_detector":
        return "anomaly"
    if task.estimator_type == "regressor":
        return "values"
    return "proba" if output.ndim == 2 else "scores"


def shap_summary_plot(explanation: Mapping[str, Any], top: int = 15) -> bytes:
    """A beeswarm: one row per feature, each dot a test row, red = high feature value."""
    import numpy as np

    values = np.asarray(explanation["shap_values"], dtype=float)[:, :top]
    features = np.asarray(explanation["feature_values"], dtype=float)[:, :top]
    names = explanation["top_features"][:top]
    drawn, axes = figure(6.5, 0.35 * len(names) + 1.5)
    rng = np.random.default_rng(0)
    for rank in range(len(names)):
        row = len(names) - 1 - rank
        column = features[:, rank]
        span = np.nanmax(column) - np.nanmin(column) if len(column) else 0
        colour = (column - np.nanmin(column)) / span if span > 0 else np.full(len(column), 0.5)
        jitter = rng.uniform(-0.3, 0.3, len(column))
        axes.scatter(values[:, rank], row + jitter, c=colour, cmap="coolwarm", s=6, alpha=0.7, linewidths=0)
    axes.axvline(0, color="grey", linewidth=0.8)
    axes.set_yticks(range(len(names)), labels=[short(n) for n in reversed(names)], fontsize=8)
    axes.set(xlabel="SHAP value (red: high feature value)", title=f"SHAP summary ({explanation['explainer']})")
    return png(drawn)


def importance_plot(importances: Mapping[str, float], kind: str, top: int = 15) -> bytes:
    items = [(short(n), v) for n, v in sorted(importances.items(), key=lambda p: -p[1])[:top]]
    drawn, axes = figure(6.5, 0.35 * len(items) + 1.5)
    axes.barh([n for n, _ in reversed(items)], [v for _, v in reversed(items)], color=CHALLENGER)
    axes.tick_params(axis="y", labelsize=8)
    axes.set(xlabel=f"importance ({kind})", title="Global feature importance")
    return png(drawn)


def comparison_metrics(task: Task, computed: Mapping[str, float]) -> tuple[str, ...]:
    """The task's shown metrics the comparison draws: the [0, 1] scores where higher is better on one
    axis when there are any (classifiers), else every shown metric, each on its own scale (regressors)."""
    from retrainer.metrics import REGISTRY

    shown = [m for m in task.shown_metrics() if m in computed]
    scores = [m for m in shown if REGISTRY[m].bounded and REGISTRY[m].greater_is_better]
    return tuple(scores or shown)


def comparison_plot(
    challenger: Mapping[str, float], champion: Mapping[str, float] | None, metrics: tuple[str, ...]
) -> bytes:
    """Challenger and champion side by side: one axes on [0, 1] for scores, else one axes per metric."""
    import numpy as np

    from retrainer.metrics import REGISTRY

    shown = [m for m in metrics if m in challenger]
    one_scale = all(REGISTRY[m].bounded for m in shown if m in REGISTRY)
    groups = [shown] if one_scale else [[m] for m in shown]
    width = 0.38 if champion else 0.6
    drawn, axes = figure(6.5 if one_scale else 2.2 * len(groups) + 0.5, 4, columns=len(groups))
    for ax, names in zip(np.atleast_1d(axes), groups, strict=True):
        x = np.arange(len(names))
        offset = width / 2 if champion else 0
        ax.bar(x - offset, [challenger[m] for m in names], width, label="challenger", color=CHALLENGER)
        if champion:
            ax.bar(x + offset, [champion.get(m, 0.0) for m in names], width, label="champion", color=CHAMPION)
        ax.set_xticks(x, labels=names)
        if one_scale:
            ax.set(ylim=(0, 1.05))
    title = "Challenger vs champion (same test set)"
    if one_scale:
        axes.set_title(title)
        axes.legend(loc="upper right")
    else:
        drawn.suptitle(title)
        np.atleast_1d(axes)[0].legend(loc="lower center", fontsize=7)
    return png(drawn)


def drift_plot(drift: Mapping[str, Any]) -> bytes:
    features = drift.get("features", [])
    score_key = "psi" if any(f.get("psi") is not None for f in features) else "ks"
    rows = sorted(features, key=lambda f: -(f.get(score_key) or 0.0))[:20]
    drawn, axes = figure(6.5, 0.35 * max(len(rows), 1) + 1.5)
    colours = [BAD if f.get("drifted") else CHALLENGER for f in reversed(rows)]
    axes.barh(
        [str(f["name"]) for f in reversed(rows)], [f.get(score_key) or 0.0 for f in reversed(rows)], color=colours
    )
    axes.tick_params(axis="y", labelsize=8)
    axes.set(xlabel=score_key.upper(), title="Drift per feature (red: drifted)")
    return png(drawn)


def scored_test(
    artifacts: Mapping[str, Any], target: str, threshold: float, slices: Mapping[str, Sequence[float] | None]
) -> tuple[str, Scored] | None:
    """The test set as the plots read it, and its output kind, if the run got as far as training."""
    from retrainer.evidence import group_labels

    try:
        test, model, training = artifacts["test"], artifacts["model"], artifacts["training"]
    except KeyError:
        return None
    task = from_info(artifacts.get("target_info"))
    output = task.predict(model, test[training["input_columns"]])
    kind = output_kind(task, output)
    segments = {
        column: in_order(test[column], group_labels(test[column], bins))
        for column, bins in slices.items()
        if column in test  # a spec edited since the run may name a column the test set lacks
    }
    classes = [str(label) for label in task.info().get("labels") or []]
    # the top alerts' unusual features; a forecast's timestamps (its history plot's x-axis)
    rows = test[training["input_columns"]] if kind in ("anomaly", "forecast") else None
    scored = Scored(test[target].to_numpy(), output, threshold, classes, segments, rows)
    return kind, scored


def in_order(values: pd.Series, labels: pd.Series) -> pd.Series:
    """Segment labels as an ordered categorical, by the smallest value each holds: bins in the order
    of their edges ('x < 12' before '12 ≤ x < 48'), text labels alphabetically, missing ones last."""
    import pandas as pd

    smallest = values.groupby(labels.to_numpy(), dropna=False).min()
    order = sorted(smallest.index, key=lambda label: (pd.isna(smallest[label]), smallest[label], str(label)))
    return pd.Series(pd.Categorical(labels, categories=order, ordered=True), name=labels.name)


def run_plots(
    artifacts: Mapping[str, Any],
    target: str,
    threshold: float,
    cache: PlotCache | None = None,
    slices: Mapping[str, Sequence[float] | None] | None = None,
) -> dict[str, bytes]:
    """Every plot the given artifacts allow, by file stem (`OUTPUT_STEMS`, shap_summary, comparison, ...).

    `slices` are the spec's `evaluation.slices` with their bins (a regressor's error by slice). With
    a `cache`, a group of plots whose inputs (artifact digests, threshold, target, task, slices) were
    drawn before is read back instead of drawn: register and the report draw the same plots, and an
    unchanged re-run would otherwise load the model and redraw everything for the same pictures.
    """
    cache = cache or PlotCache(None, {})
    slices = dict(slices or {})
    task = from_info(artifacts.get("target_info"))
    plots: dict[str, bytes] = {}

    def output_plots() -> dict[str, bytes]:
        found = scored_test(artifacts, target, threshold, slices)
        return {} if found is None else OUTPUT_PLOTS[found[0]](found[1])

    extra = [target, threshold, task.info(), slices]
    plots.update(cache.plots("scores", ("test", "model", "training"), extra, output_plots))
    if artifacts.get("explanation"):
        explanation = artifacts["explanation"]
        draw = partial(explanation_plots, explanation, task)
        plots.update(cache.plots("explanation", ("explanation",), [task.info()], draw))
    evaluation, decision = artifacts.get("evaluation"), artifacts.get("decision")
    if evaluation and decision and decision.get("winner") != "unchanged":
        metrics = comparison_metrics(task, evaluation["test"])
        plots["comparison"] = comparison_plot(evaluation["test"], decision.get("champion_metrics"), metrics)
    drift = artifacts.get("drift")
    if drift and drift.get("features"):
        plots.update(cache.plots("drift", ("drift",), [], lambda: {"drift": drift_plot(drift)}))
    return plots


def explanation_plots(explanation: Mapping[str, Any], task: Task) -> dict[str, bytes]:
    """The SHAP beeswarm and importances, and SHAP by class where explain wrote it (multiclass)."""
    plots = {
        "shap_summary": shap_summary_plot(explanation),
        "importances": importance_plot(explanation["importances"], explanation["importance_kind"]),
    }
    by_class = shap_by_class(explanation, task)
    if by_class:
        plots["shap_by_class"] = multiclass_plots.shap_by_class_plot(by_class, explanation["top_features"][:15])
    return plots


def shap_by_class(explanation: Mapping[str, Any], task: Task) -> dict[str, dict[str, float]]:
    """`mean_abs_shap_by_class` in the task's class order (the store sorts JSON keys); empty if absent."""
    by_class = explanation.get("mean_abs_shap_by_class") or {}
    order = [str(label) for label in task.info().get("labels") or [] if str(label) in by_class]
    return {label: by_class[label] for label in [*order, *(c for c in by_class if c not in order)]}


class PlotCache:
    """Plots already drawn, under `cache/plots/<key>/` in the run store; the key hashes the digests of
    the artifacts a group of plots is drawn from, its other inputs and the plot modules' source."""

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

        parts = [group, [self.digests[name] for name in needs], extra, _code_digest(PLOT_MODULES)]
        key = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode()).hexdigest()[:16]
        directory = self.store.path("cache", "plots", key)
        index = posixpath.join(directory, "index.json")
        try:
            stems = self.store.read_json(index)
            return {stem: self.store.read_bytes(posixpath.join(directory, f"{stem}.png")) for stem in stems}
        except FileNotFoundError:
            pass
        drawn = draw()
        for stem, image in drawn.items():
            self.store.write_bytes(posixpath.join(directory, f"{stem}.png"), image)
        self.store.write_json(index, list(drawn))  # written last: an index means a complete set
        return drawn
