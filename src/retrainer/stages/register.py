"""Register: log the model, its metrics, lineage and reports to MLflow as a new registered version.

Only models that passed every gate get here. A loser against the champion is registered too (its
reason in its tags) so every decision can be audited. An unchanged model registers nothing.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from retrainer.lineage import lineage_tags
from retrainer.model_registry import TASK_TAG, THRESHOLD_TAG
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.report.plots import PLOT_MODULES, PlotCache
from retrainer.store import frame_digest
from retrainer.tasks import Task, from_info

REPORTS = (
    "source_info",
    "validation",
    "drift",
    "split_info",
    "feature_schema",
    "leakage",
    "tuning",
    "training",
    "evaluation",
    "fairness",
    "explanation",
    "decision",
    "target_info",
)


def register(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    decision = inputs["decision"]
    name = spec.registry_name
    if decision["winner"] == "unchanged":
        version = decision["existing_version"]
        return StageOutput(
            artifacts={"registration": {"version": version, "new": False}}, summary=f"nothing new (v{version})"
        )
    if decision.get("existing_version"):  # registered by a run that stopped before promotion
        version = decision["existing_version"]
        return StageOutput(
            artifacts={"registration": {"version": version, "new": False}}, summary=f"reusing v{version}"
        )
    training, evaluation = inputs["training"], inputs["evaluation"]
    task = from_info(inputs["target_info"])
    source_info = inputs["source_info"]
    tags = {
        **lineage_tags(
            spec.spec_path,
            spec.digest(),
            source_info["data_digest"],
            ctx.run_id,
            ctx.as_of.isoformat() if ctx.as_of else None,
        ),
        "retrainer.pipeline": spec.name,
        "retrainer.model_key": ctx.upstream["train"],
        "retrainer.candidate": training["candidate"],
        "retrainer.source": str(source_info.get("url") or source_info.get("path", "")),
        "retrainer.source_state": str(source_info.get("source_state", "")),
        "retrainer.compared_with": str(decision.get("champion_version") or "none"),
        "retrainer.decision": decision["winner"],
        "retrainer.reason": decision["reason"][:5000],
        "retrainer.metrics": json.dumps({k: round(v, 4) for k, v in evaluation["test"].items()}),
        # what the model predicts (task, label set, target transform): compare, drift and serving read it back
        TASK_TAG: json.dumps(task.info(), default=str),
    }
    if task.has_decision_threshold:
        # the threshold the model was evaluated at: compare and serving score it with the same one
        tags[THRESHOLD_TAG] = str(evaluation.get("decision_threshold", spec.evaluation.decision_threshold))
    metrics = {f"test_{k}": v for k, v in evaluation["test"].items()}
    metrics.update({f"oot_{k}": v for k, v in evaluation.get("oot", {}).items()})
    metrics[f"cv_{task.ranking_metric(spec)}"] = training["cv_score"]
    if decision.get("champion_metrics"):
        metrics.update({f"champion_test_{k}": v for k, v in decision["champion_metrics"].items()})
    metrics.update(drift_metrics(inputs["drift"]))
    params = {"candidate": training["candidate"], **training["params"], "train_rows": training["train_rows"]}
    test = inputs["test"]
    source = str(source_info.get("url") or source_info.get("path", ""))
    with tempfile.TemporaryDirectory(prefix="retrainer-reports-") as reports:
        for report in REPORTS:
            Path(reports, f"{report}.json").write_text(json.dumps(inputs[report], indent=2, default=str))
        # what the next runs' drift stage compares their data with
        fitted = task.final_fit_rows(inputs)  # the rows the model learned from (a forecaster: all of them)
        text = inputs["feature_schema"].get("text", [])
        profile = reference_profile(inputs["model"], fitted, training["input_columns"], spec.seed, task, text=text)
        series = task.series_profile(fitted, spec)
        if series is not None:  # a forecast's level and seasonality per series: the next runs' series drift
            profile["series"] = series
        Path(reports, "reference_profile.json").write_text(json.dumps(profile))
        if evaluation.get("calibration"):
            from retrainer.models.calibration import plot_calibration

            plot_calibration(evaluation["calibration"], Path(reports, "calibration.png"))
        _write_plots(Path(reports, "plots"), inputs, spec, PlotCache(ctx.store, ctx.artifact_digests))
        info = ctx.registry.log_and_register(
            name,
            experiment=spec.tracking.experiment or spec.name,
            model=inputs["model"],
            input_example=test[training["input_columns"]].head(5),  # real rows, as the source gave them
            training_rows=inputs["train"][training["input_columns"]],  # the signature's types and optional columns
            params=params,
            metrics=metrics,
            tags=tags,
            artifacts={"retrainer": reports},
            datasets={
                "train": (inputs["train"], source, frame_digest(inputs["train"])),
                "test": (test, source, frame_digest(test)),
            },
        )
    ctx.logger.info("registered %s v%d (run %s)", name, info.version, info.run_id)
    return StageOutput(
        artifacts={"registration": {"version": info.version, "new": True, "mlflow_run_id": info.run_id}},
        summary=f"{name} v{info.version}",
    )


PROFILE_ROWS = 200_000  # training rows the reference profile is drawn from, at most


def reference_profile(
    model: Any,
    train: Any,
    columns: list[str],
    seed: int = 0,
    task: Task | None = None,
    max_rows: int = PROFILE_ROWS,
    text: list[str] | None = None,
) -> dict[str, Any]:
    """The profile of the training rows the model learned from, and of its scores on them.

    Above `max_rows` rows, of a seeded sample of that many: its decile shares and 1,001 quantiles
    differ from the whole table's by about a 1/sqrt(max_rows) share (0.2 % at 200,000), while scoring
    all of 8 M training rows took minutes of the register stage.
    """
    from retrainer.drift import build_profile

    task = task or from_info(None)
    rows = train if len(train) <= max_rows else train.sample(n=max_rows, random_state=seed)
    scores = task.drift_values(task.predict(model, rows[columns])) if task.score_drift else None
    profile = build_profile(rows[columns], scores, text)  # text columns: vocabulary and length
    profile["task"] = task.info()
    profile["rows"], profile["profiled_rows"] = len(train), len(rows)
    profile["input_columns"] = columns
    return profile


def drift_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The drift statistics as MLflow metrics: `drift.<stat>.<feature>`, `drift.<stat>.score`."""
    import re

    metrics: dict[str, float] = {}
    score = [report["score"]] if report.get("score") else []
    for entry in [*report.get("features", []), *score]:
        name = re.sub(r"[^A-Za-z0-9_\-. /]", "_", str(entry["name"]))
        for stat in ("psi", "js", "ks", "ks_pvalue", "wasserstein", "unseen"):
            if entry.get(stat) is not None:
                metrics[f"drift.{stat}.{name}"] = float(entry[stat])
    if report.get("reference"):
        metrics["drift.drifted_features"] = float(len(report.get("drifted_features", [])))
    return metrics


def _write_plots(directory: Path, inputs: Mapping[str, Any], spec: Any, cache: PlotCache) -> None:
    """The run's plots as PNG files, logged with the model (the task's output plots, SHAP, comparison...).

    Drawn into the plot cache, so the run's report, drawn from the same artifacts, reads them back.
    """
    from retrainer.report.plots import run_plots, spec_slices
    from retrainer.stages.evidence import decision_threshold

    directory.mkdir()
    threshold = decision_threshold(spec, inputs["evaluation"])
    for stem, png in run_plots(inputs, spec.target.column, threshold, cache, spec_slices(spec)).items():
        (directory / f"{stem}.png").write_bytes(png)


STAGE = Stage(
    name="register",
    func=register,
    needs=("model", "train", "test", *REPORTS),
    makes=("registration",),
    cacheable=False,
    code=("retrainer.lineage", *PLOT_MODULES),
)
