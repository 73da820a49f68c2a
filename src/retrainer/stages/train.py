"""Train: refit the winning candidate's best configuration on the whole training split.

A booster refits with the number of trees early stopping found in tuning. With
`models.calibration`, the estimator is wrapped in CalibratedClassifierCV. With
`evaluation.threshold_metric`, the decision threshold that maximizes that metric on out-of-fold
predictions of this exact model (calibration included) is chosen here and stored with the model.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from retrainer.fitting import best_threshold, check_saveable, fit_model, make_model, out_of_fold_proba
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import from_info


def train(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    task = from_info(inputs["target_info"])
    tuning = inputs["tuning"]
    candidate = tuning["best_candidate"]
    params = dict(tuning["candidates"][candidate]["best_params"])
    best_iteration = tuning["candidates"][candidate].get("best_iteration")
    if best_iteration and "n_estimators" not in spec.models.params.get(candidate, {}):
        params["n_estimators"] = int(best_iteration)  # what early stopping found in CV
    fixed = {**params, **spec.models.params.get(candidate, {})}
    frame = task.final_fit_rows(inputs)  # the training split; a forecaster's whole history
    columns = list(inputs["feature_schema"]["inputs"])
    X, y = frame[columns], frame[spec.target.column].to_numpy()  # noqa: N806
    model = make_model(inputs["preprocessor"], candidate, params, spec, calibrate=True, task=task)
    started = time.perf_counter()
    fit_model(model, candidate, fixed, X, y, task=task)
    seconds = time.perf_counter() - started
    check_saveable(model, candidate, spec)
    info: dict[str, Any] = {
        "candidate": candidate,
        "params": fixed,
        "cv_score": tuning["candidates"][candidate]["best_value"],
        "train_rows": len(frame),
        "fit_seconds": round(seconds, 3),
        "input_columns": columns,
        "calibration": spec.models.calibration,
        "decision_threshold": None,  # None: evaluation.decision_threshold from the spec applies (binary)
        "task": task.name,
    }
    metric = spec.evaluation.threshold_metric  # binary only (the spec check refuses it elsewhere)
    if metric and task.has_decision_threshold:
        proba = out_of_fold_proba(
            lambda: make_model(inputs["preprocessor"], candidate, params, spec, calibrate=True, task=task),
            candidate,
            fixed,
            X,
            y,
            spec.models.cv_folds,
            spec.seed,
            task,
        )
        threshold, value = best_threshold(metric, y, proba)
        info.update(
            decision_threshold=threshold,
            threshold_source=f"max out-of-fold {metric}",
            threshold_oof_score=round(value, 6),
        )
        ctx.logger.info("decision threshold %.2f maximizes out-of-fold %s (%.4f)", threshold, metric, value)
    metrics = {"fit_seconds": seconds}
    if info["decision_threshold"] is not None:
        metrics["decision_threshold"] = info["decision_threshold"]
    return StageOutput(
        artifacts={"model": model, "training": info},
        metrics=metrics,
        summary=f"{candidate} on {len(frame):,} rows in {seconds:.1f}s",
    )


STAGE = Stage(
    name="train",
    func=train,
    needs=("train", "test", "preprocessor", "feature_schema", "tuning", "target_info"),
    makes=("model", "training"),
    spec_sections=("models", "evaluation.threshold_metric", "target", "task", "seed", "forecast", "anomaly"),
    code=("retrainer.models", "retrainer.fitting", "retrainer.tasks"),
)
