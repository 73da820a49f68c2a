"""Evaluate: every metric on the test set (and out-of-time set), then the spec's thresholds as gates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrainer.errors import GateFailed
from retrainer.metrics import LOWER_IS_BETTER, all_metrics
from retrainer.pipeline import RunContext, Stage, StageOutput


def evaluate_model(model: Any, frame: Any, columns: list[str], target: str, threshold: float) -> dict[str, float]:
    proba = model.predict_proba(frame[columns])[:, 1]
    return all_metrics(frame[target].to_numpy(), proba, threshold)


def threshold_failures(metrics: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Every threshold the metrics miss, in words; an empty list means the model passes."""
    failures = []
    for name, bound in thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name}: not computed on the test set")
        elif name in LOWER_IS_BETTER and value > bound:
            failures.append(f"{name} {value:.4f} > maximum {bound}")
        elif name not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{name} {value:.4f} < minimum {bound}")
    return failures


def evaluate(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    columns = inputs["training"]["input_columns"]
    threshold = spec.evaluation.decision_threshold
    report: dict[str, Any] = {
        "test": evaluate_model(inputs["model"], inputs["test"], columns, spec.target.column, threshold)
    }
    if len(inputs["oot"]):
        report["oot"] = evaluate_model(inputs["model"], inputs["oot"], columns, spec.target.column, threshold)
    failures = threshold_failures(report["test"], spec.evaluation.thresholds)
    report["thresholds"] = spec.evaluation.thresholds
    report["passed"] = not failures
    for name, value in report["test"].items():
        ctx.logger.info("test %s = %.4f", name, value)
    if failures:
        raise GateFailed(
            "model failed evaluation gates: " + "; ".join(failures),
            failures=failures,
            hint="the champion is unchanged; tune longer, add data or revisit evaluation.thresholds",
        )
    metric = spec.evaluation.metric
    return StageOutput(
        artifacts={"evaluation": report},
        metrics={f"test_{k}": v for k, v in report["test"].items()},
        summary=f"test {metric} {report['test'][metric]:.4f}",
    )


STAGE = Stage(
    name="evaluate",
    func=evaluate,
    needs=("model", "training", "test", "oot"),
    makes=("evaluation",),
    spec_sections=("evaluation", "target"),
    code=("retrainer.metrics",),
)
