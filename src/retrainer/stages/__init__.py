"""The stages, one module each. `default_pipeline()` wires them in order."""

from __future__ import annotations

from retrainer.pipeline import Pipeline, Stage


def default_pipeline() -> Pipeline:
    from retrainer.stages import (
        compare,
        drift,
        evaluate,
        explain,
        extract,
        fairness,
        features,
        leakage,
        notify,
        promote,
        readiness,
        register,
        split,
        train,
        tune,
        validate,
    )

    return Pipeline(
        stages=(
            extract.STAGE,
            validate.STAGE,
            drift.STAGE,
            split.STAGE,
            features.STAGE,
            leakage.STAGE,
            tune.STAGE,
            train.STAGE,
            evaluate.STAGE,
            fairness.STAGE,
            explain.STAGE,
            compare.STAGE,
            register.STAGE,
            readiness.STAGE,
            promote.STAGE,
        ),
        final=notify.STAGE,
    )


__all__ = ["Pipeline", "Stage", "default_pipeline"]
