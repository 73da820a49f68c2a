"""Explain: SHAP values of the trained model on a bounded test sample, and global importances.

Tree models get SHAP's exact tree explainer, linear models the linear one, anything else the
permutation explainer on a smaller sample (it calls the model many times). Values are in the
model's own feature space (after one-hot encoding), named by the preprocessor. Importances come
from the model when it has them (trees, coefficients), otherwise from permutation on raw columns.

What is explained is the task's output: a binary model's positive-class score, each class of a
multiclass model (ranked by the mean |SHAP| over classes; each row's values are those of the class it
is given), a regressor's value. A regressor on a transformed target is explained on that scale
(log dollars for `target.transform: log`): the inner model's, which is additive there.

A wide model (TF-IDF of a text column: thousands of n-grams) is explained on `WIDE_ROWS` rows, its
report names only the `WIDE_NAMED` n-grams of largest mean |SHAP|, and `mean_abs_shap_by_column`
sums each input column's features (a text column's n-grams, a category's one-hot columns).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import Task, from_info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TOP_FEATURES = 20
PERMUTATION_ROWS = 50  # the permutation explainer calls the model (2 x features + 1) x background times per row
WIDE = 1000  # features: a model this wide (text n-grams) is explained on fewer rows and named in part
WIDE_ROWS = 100
WIDE_NAMED = 200


def shap_values(
    model: Any, train: pd.DataFrame, sample: pd.DataFrame, seed: int, task: Task | None = None
) -> tuple[str, list[str], Any, Any]:
    """(explainer kind, feature names, SHAP values, feature values) for a fitted pipeline: values are
    rows x features, or rows x features x classes for a multiclass model."""
    import numpy as np
    import shap

    task = task or from_info(None)
    preprocess, estimator = _split_model(model)
    estimator = getattr(estimator, "regressor_", estimator)  # a transformed target: its inner model
    transformed = preprocess.transform(sample) if preprocess is not None else sample.to_numpy(dtype=float)
    if transformed.shape[1] > WIDE:  # SHAP values are rows x features (x classes): bound them
        transformed = transformed[:WIDE_ROWS]
    features = _dense(transformed)
    names = _feature_names(preprocess, features.shape[1])
    background = _dense(preprocess.transform(train.sample(min(len(train), 200), random_state=seed)))
    kind = _explainer_kind(estimator)
    if kind == "tree":
        # SHAP announces that LightGBM's binary output is now a list per class: handled just below
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)
            values = shap.TreeExplainer(estimator).shap_values(features)
    elif kind == "linear":
        values = shap.LinearExplainer(estimator, background).shap_values(features)
    else:
        features = features[:PERMUTATION_ROWS]
        explainer = shap.PermutationExplainer(
            lambda x: task.predict(estimator, x), shap.maskers.Independent(background, max_samples=20), seed=seed
        )
        # one forward and one backward permutation per row: exact for additive models, and bounded time
        values = explainer(features, max_evals=2 * features.shape[1] + 1, silent=True).values
    if isinstance(values, list):  # one array per class (older SHAP)
        values = np.stack(values, axis=-1)
    values = np.asarray(values)
    if values.ndim == 3 and not task.explains_every_class:  # (rows, features, classes): the positive class
        values = values[:, :, -1]
    return kind, names, values, features


def explain(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    import numpy as np

    spec = ctx.spec
    task = from_info(inputs["target_info"])
    if not task.explainable:  # a forecaster builds its own lags: SHAP over its raw columns says nothing
        return StageOutput(artifacts={"explanation": {}}, summary=f"not explained ({task.name})")
    columns = inputs["training"]["input_columns"]
    test = inputs["test"]
    sample = test.sample(min(len(test), spec.report.explain_rows), random_state=spec.seed)
    model = inputs["model"]
    kind, names, values, features = shap_values(model, inputs["train"][columns], sample[columns], spec.seed, task)
    per_class: dict[str, dict[str, float]] = {}
    if values.ndim == 3:  # multiclass: rank by the mean |SHAP| over classes, show each row's given class
        labels = [str(label) for label in getattr(task, "labels", range(values.shape[2]))]
        per_class = {
            label: {names[i]: round(float(v), 6) for i, v in enumerate(np.abs(values[:, :, c]).mean(axis=0))}
            for c, label in enumerate(labels)
        }
        mean_abs = np.abs(values).mean(axis=(0, 2))
        given = task.predict(model, sample[columns]).argmax(axis=1)[: len(values)]
        values = values[np.arange(len(values)), :, given]
    else:
        mean_abs = np.abs(values).mean(axis=0)
    order = np.argsort(mean_abs)[::-1]
    top = order[:TOP_FEATURES]
    by_column = _by_column(names, mean_abs, columns) if len(names) > WIDE else {}
    if by_column:  # thousands of n-grams: the report names the strongest only
        order = order[:WIDE_NAMED]
        per_class = {label: {names[i]: shares[names[i]] for i in order} for label, shares in per_class.items()}
    importances, importance_kind = _importances(model, names, sample, columns, spec.target.column, spec.seed, task)
    report = {
        "explainer": kind,
        "rows": len(values),
        "mean_abs_shap": {names[i]: round(float(mean_abs[i]), 6) for i in order},
        "top_features": [names[i] for i in top],
        "shap_values": np.round(values[:, top], 5).tolist(),
        "feature_values": np.round(np.asarray(features, dtype=float)[:, top], 5).tolist(),
        "importances": importances,
        "importance_kind": importance_kind,
        "task": task.name,
        **({"mean_abs_shap_by_class": per_class} if per_class else {}),
        **({"mean_abs_shap_by_column": by_column} if by_column else {}),
    }
    leader = names[order[0]] if len(order) else "none"
    summary = f"{kind} SHAP on {len(values)} rows; top feature {leader}"
    if dominant := dominant_feature(report["mean_abs_shap"], columns, spec.leakage.allow):
        report["dominant_feature"] = dominant
        ctx.logger.warning("%s", dominant["message"])
        summary += f"; warning: {dominant['message']}"
    return StageOutput(artifacts={"explanation": report}, summary=summary)


DOMINANT_SHARE = 0.6  # one input carries this share of the mean |SHAP|...
DOMINANT_RATIO = 5.0  # ...and this many times the next input's


def dominant_feature(
    mean_abs_shap: Mapping[str, float], columns: list[str], allowed: list[str]
) -> dict[str, Any] | None:
    """The leakage guard's check after training: one input that carries most of the model's SHAP
    importance while the others carry little (a proxy of the label the single-feature scores missed).
    Encoded columns (`contract_Month-to-month`) count for the input they come from. A warning: a
    model that leans on one honest feature is possible, and the figures say so."""
    per_input: dict[str, float] = {}
    for name, value in mean_abs_shap.items():
        source = max((c for c in columns if name == c or name.startswith(f"{c}_")), key=len, default=name)
        per_input[source] = per_input.get(source, 0.0) + value
    ranked = sorted(per_input.items(), key=lambda item: -item[1])
    total = sum(per_input.values())
    if len(ranked) < 2 or total <= 0 or ranked[0][0] in allowed:
        return None
    (column, top), (runner_up, second) = ranked[0], ranked[1]
    share = top / total
    if share < DOMINANT_SHARE or top < DOMINANT_RATIO * second:
        return None
    message = (
        f"{column} carries {share:.0%} of the model's SHAP importance, {top / max(second, 1e-12):.1f}x the next "
        f"input ({runner_up}): a proxy of the label? (leakage.allow: [{column}] if it is known at prediction time)"
    )
    return {"column": column, "share": round(share, 4), "next": runner_up, "message": message}


def _by_column(names: list[str], mean_abs: np.ndarray, columns: list[str]) -> dict[str, float]:
    """Mean |SHAP| summed per input column: a feature belongs to the longest column name it starts with
    (`review:great` and `review:'gre'` to review, `contract_Two year` to contract)."""
    totals: dict[str, float] = {}
    by_length = sorted(columns, key=len, reverse=True)
    for name, value in zip(names, mean_abs, strict=True):
        source = next((c for c in by_length if name == c or name.startswith((f"{c}:", f"{c}_"))), name)
        totals[source] = totals.get(source, 0.0) + float(value)
    return {c: round(v, 6) for c, v in sorted(totals.items(), key=lambda p: -p[1])}


def _split_model(model: Any) -> tuple[Any, Any]:
    steps = getattr(model, "steps", None)
    if steps and len(steps) >= 2:
        from sklearn.pipeline import Pipeline

        return Pipeline(steps[:-1]), steps[-1][1]
    return None, model


def _feature_names(preprocess: Any, width: int) -> list[str]:
    """Names from the preprocessor (its last step, if an earlier one cannot name its outputs), else f0, f1..."""
    step = preprocess
    while step is not None:
        try:
            names = [str(n) for n in step.get_feature_names_out()]
        except Exception:  # noqa: BLE001 - a custom step without names: try the step after it
            names = []
        if len(names) == width:
            return names
        step = step.steps[-1][1] if hasattr(step, "steps") else None
    return [f"f{i}" for i in range(width)]


def _dense(matrix: Any) -> np.ndarray:
    import numpy as np

    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=float)


def _explainer_kind(estimator: Any) -> str:
    module = type(estimator).__module__
    package = module.split(".")[0]
    trees = package in ("lightgbm", "xgboost") or (package == "sklearn" and ("forest" in module or "tree" in module))
    if trees and hasattr(estimator, "feature_importances_"):
        return "tree"
    if hasattr(estimator, "coef_") and module.startswith("sklearn.linear_model"):
        return "linear"
    return "permutation"


def _importances(
    model: Any, names: list[str], sample: pd.DataFrame, columns: list[str], target: str, seed: int, task: Task
) -> tuple[dict[str, float], str]:
    """Importances the model reports itself, else permutation importance of the raw columns (the drop of
    the task's scikit-learn scorer: ROC-AUC, log loss, RMSE)."""
    import numpy as np

    _, estimator = _split_model(model)
    estimator = getattr(estimator, "regressor_", estimator)
    native = getattr(estimator, "feature_importances_", None)
    if native is None and getattr(estimator, "coef_", None) is not None:
        coef = np.abs(np.asarray(estimator.coef_, dtype=float))
        native = coef.mean(axis=0) if coef.ndim == 2 and coef.shape[0] > 1 else np.ravel(coef)  # per class
    if native is not None and len(native) == len(names):
        total = float(np.sum(native)) or 1.0
        pairs = sorted(zip(names, np.asarray(native, dtype=float) / total, strict=True), key=lambda p: -p[1])
        return {n: round(float(v), 6) for n, v in pairs[:TOP_FEATURES]}, "model"
    from sklearn.inspection import permutation_importance

    y = sample[target].to_numpy()
    result = permutation_importance(
        model, sample[columns], y, scoring=task.sklearn_scoring, n_repeats=3, random_state=seed
    )
    pairs = sorted(zip(columns, result.importances_mean, strict=True), key=lambda p: -p[1])
    return {n: round(float(v), 6) for n, v in pairs[:TOP_FEATURES]}, "permutation"


STAGE = Stage(
    name="explain",
    func=explain,
    needs=("model", "training", "train", "test", "target_info"),
    makes=("explanation",),
    spec_sections=("report", "seed", "target", "leakage.allow"),
    code=("retrainer.tasks",),
)
