"""Train: refit the winning candidate's best configuration on the whole training split."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.stages.tune import make_model


def train(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    tuning = inputs["tuning"]
    candidate = tuning["best_candidate"]
    params = tuning["candidates"][candidate]["best_params"]
    frame = inputs["train"]
    columns = list(inputs["feature_schema"]["inputs"])
    model = make_model(inputs["preprocessor"], candidate, params, spec)
    started = time.perf_counter()
    model.fit(frame[columns], frame[spec.target.column].to_numpy())
    seconds = time.perf_counter() - started
    info = {
        "candidate": candidate,
        "params": {**params, **spec.models.params.get(candidate, {})},
        "cv_score": tuning["candidates"][candidate]["best_value"],
        "train_rows": len(frame),
        "fit_seconds": round(seconds, 3),
        "input_columns": columns,
    }
    return StageOutput(
        artifacts={"model": model, "training": info},
        metrics={"fit_seconds": seconds},
        summary=f"{candidate} on {len(frame):,} rows in {seconds:.1f}s",
    )


STAGE = Stage(
    name="train",
    func=train,
    needs=("train", "preprocessor", "feature_schema", "tuning"),
    makes=("model", "training"),
    spec_sections=("models", "target", "seed"),
    code=("retrainer.stages.tune", "retrainer.models"),
)
