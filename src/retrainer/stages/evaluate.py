"""Evaluate: every metric on the test set (and out-of-time set), then the spec's thresholds as gates.

The decision threshold is the one train chose on out-of-fold predictions when
`evaluation.threshold_metric` is set, else the spec's `decision_threshold`. The reliability curve
of each set is stored in the report (`calibration`) and drawn to calibration.png in the work dir.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retrainer.errors import GateFailed
from retrainer.metrics import LOWER_IS_BETTER, shown
from retrainer.models.calibration import plot_calibration, reliability_curve
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import Task, from_info


def evaluate_model(
    model: Any, frame: Any, columns: list[str], target: str, threshold: float, task: Task | None = None
) -> dict[str, float]:
    """Every metric of the task (binary by default) of `model` on `frame`."""
    task = task or from_info(None)
    return task.all_metrics(frame[target].to_numpy(), task.predict(model, frame[columns]), threshold)


def model_threshold(training: Mapping[str, Any], spec_threshold: float) -> float:
    """The threshold stored with the model (chosen on validation data), else the spec's."""
    chosen = training.get("decision_threshold")
    return float(chosen) if chosen is not None else spec_threshold


def threshold_failures(metrics: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """Every threshold the metrics miss, in words; an empty list means the model passes."""
    failures = []
    for name, bound in thresholds.items():
        value = metrics.get(name)
        if value is None:
            failures.append(f"{name}: not computed on the test set")
        elif name in LOWER_IS_BETTER and value > bound:
            failures.append(f"{name} {shown(name, value)} > maximum {bound:g}")
        elif name not in LOWER_IS_BETTER and value < bound:
            failures.append(f"{name} {shown(name, value)} < minimum {bound:g}")
    return failures


def evaluate(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    task = from_info(inputs["target_info"])
    columns = inputs["training"]["input_columns"]
    threshold = model_threshold(inputs["training"], spec.evaluation.decision_threshold)
    report: dict[str, Any] = {"task": task.name, "calibration": {}}
    if task.has_decision_threshold:
        report["decision_threshold"] = threshold
    sets = {"test": inputs["test"], **({"oot": inputs["oot"]} if len(inputs["oot"]) else {})}
    for name, frame in sets.items():
        truth = frame[spec.target.column].to_numpy()
        output = task.predict(inputs["model"], frame[columns])
        report[name] = task.all_metrics(truth, output, threshold)
        if task.has_decision_threshold and len(set(truth.tolist())) == 2:
            report["calibration"][name] = reliability_curve(truth, output)
    if report["calibration"]:
        method = inputs["training"].get("calibration", "none")
        plot = plot_calibration(
            report["calibration"], Path(ctx.work_dir()) / "calibration.png", f"Calibration ({method})"
        )
        report["calibration_plot"] = str(plot)
    failures = threshold_failures(report["test"], spec.evaluation.thresholds)
    failures += task.gate_failures(report["test"], spec)  # a forecast must beat the seasonal-naive baseline
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
    metric = task.ranking_metric(spec)
    return StageOutput(
        artifacts={"evaluation": report},
        metrics={f"test_{k}": v for k, v in report["test"].items()},
        summary=f"test {metric} {shown(metric, report['test'][metric])}",
    )


STAGE = Stage(
    name="evaluate",
    func=evaluate,
    needs=("model", "training", "test", "oot", "target_info"),
    makes=("evaluation",),
    spec_sections=("evaluation", "target", "anomaly"),  # an anomaly detector's gates
    code=(
        "retrainer.metrics",
        "retrainer.models.calibration",
        "retrainer.models.scoring",
        "retrainer.tasks",
        "retrainer.models.forecaster",
    ),
)
