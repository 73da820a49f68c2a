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
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.store import frame_digest

REPORTS = (
    "source_info",
    "validation",
    "split_info",
    "feature_schema",
    "tuning",
    "training",
    "evaluation",
    "fairness",
    "explanation",
    "decision",
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
    }
    metrics = {f"test_{k}": v for k, v in evaluation["test"].items()}
    metrics.update({f"oot_{k}": v for k, v in evaluation.get("oot", {}).items()})
    metrics[f"cv_{spec.evaluation.metric}"] = training["cv_score"]
    if decision.get("champion_metrics"):
        metrics.update({f"champion_test_{k}": v for k, v in decision["champion_metrics"].items()})
    params = {"candidate": training["candidate"], **training["params"], "train_rows": training["train_rows"]}
    test = inputs["test"]
    source = str(source_info.get("url") or source_info.get("path", ""))
    with tempfile.TemporaryDirectory(prefix="retrainer-reports-") as reports:
        for report in REPORTS:
            Path(reports, f"{report}.json").write_text(json.dumps(inputs[report], indent=2, default=str))
        _write_plots(Path(reports, "plots"), inputs, spec)
        info = ctx.registry.log_and_register(
            name,
            experiment=spec.tracking.experiment or spec.name,
            model=inputs["model"],
            input_example=test[training["input_columns"]].head(5),
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


def _write_plots(directory: Path, inputs: Mapping[str, Any], spec: Any) -> None:
    """The run's plots as PNG files, logged with the model (ROC, PR, calibration, SHAP, comparison...)."""
    from retrainer.report.plots import run_plots
    from retrainer.stages.evidence import decision_threshold

    directory.mkdir()
    threshold = decision_threshold(spec, inputs["evaluation"])
    metrics = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1")
    for stem, png in run_plots(inputs, spec.target.column, threshold, metrics).items():
        (directory / f"{stem}.png").write_bytes(png)


STAGE = Stage(
    name="register",
    func=register,
    needs=("model", "train", "test", *REPORTS),
    makes=("registration",),
    cacheable=False,
    code=("retrainer.lineage", "retrainer.report.plots"),
)
