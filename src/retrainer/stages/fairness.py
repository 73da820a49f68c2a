"""Fairness: the challenger's decisions compared across groups (e.g. age bands); a failure is a gate.

Per group of `evaluation.fairness.group_column` (or its bins) on the test set, the task's rules
(`Task.fairness`): binary models the positive prediction rate, TPR and FPR at the decision
threshold (disparate impact, equalized-odds difference); multiclass the accuracy gap and each
class's selection-rate parity; regression the MAE ratio and the mean-residual gap. Groups
smaller than `min_group_size` are shown but not judged. The group column need not be a model
feature: the test set keeps every column.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from retrainer.errors import GateFailed
from retrainer.evidence import group_labels
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.stages.evidence import decision_threshold, segment_column
from retrainer.tasks import from_info


def fairness(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    rules = ctx.spec.evaluation.fairness
    if rules is None:
        return StageOutput(artifacts={"fairness": {"enabled": False}}, summary="no fairness check in the spec")
    test = inputs["test"]
    task = from_info(inputs["target_info"])
    threshold = decision_threshold(ctx.spec, inputs["evaluation"])
    output = task.predict(inputs["model"], test[inputs["training"]["input_columns"]])
    groups = group_labels(segment_column(test, rules.group_column, "evaluation.fairness.group_column"), rules.bins)
    truth = test[ctx.spec.target.column].to_numpy()
    rates, summary, failures, headline = task.fairness(groups, truth, output, threshold, rules)
    counted = [group for group, rate in rates.items() if rate["counted"]]
    if len(counted) < 2:  # a check that cannot compare two groups must not pass silently
        sizes = ", ".join(f"{group}: {rate['rows']}" for group, rate in rates.items())
        failures.append(
            f"fairness cannot be judged: {len(counted)} of {len(rates)} groups of {rules.group_column} have at "
            f"least {rules.min_group_size} test rows ({sizes})"
        )
    report = {
        "enabled": True,
        "group_column": rules.group_column,
        "threshold": threshold,
        "groups": rates,
        **summary,
        "task": task.name,
        "headline": headline,
        **rules.model_dump(exclude={"group_column", "bins"}),
        "failures": failures,
        "passed": not failures,
    }
    # a rejected stage saves no artifacts: keep the evidence where the report finds it
    ctx.store.write_json(posixpath.join(ctx.store.run_dir(ctx.run_id), "fairness.json"), report)
    if failures:
        raise GateFailed(
            "; ".join(failures),
            failures=failures,
            hint="the champion is unchanged; see the fairness section of `retrainer report RUN_ID`",
        )
    figure = summary.get(headline)
    shown = "n/a (fewer than 2 groups large enough)" if figure is None else f"{figure:.2f}"
    return StageOutput(
        artifacts={"fairness": report},
        metrics={} if figure is None else {headline: figure},
        summary=f"{headline.replace('_', ' ')} {shown} across {len(rates)} groups",
    )


STAGE = Stage(
    name="fairness",
    func=fairness,
    needs=("model", "training", "test", "evaluation", "target_info"),
    makes=("fairness",),
    spec_sections=("evaluation", "target"),
    code=("retrainer.evidence", "retrainer.stages.evidence", "retrainer.tasks"),
)
