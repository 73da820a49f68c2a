"""Fairness: the challenger's decisions compared across groups (e.g. age bands); a failure is a gate.

Per group of `evaluation.fairness.group_column` (or its bins) on the test set: the positive
prediction rate, TPR and FPR at the decision threshold; then the disparate impact ratio (lowest
over highest positive rate) and the equalized-odds difference (largest TPR or FPR gap). Groups
smaller than `min_group_size` are shown but not judged. The group column need not be a model
feature: the test set keeps every column.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from retrainer.errors import GateFailed
from retrainer.evidence import fairness_failures, fairness_summary, group_labels, group_rates
from retrainer.models.scoring import positive_scores
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.stages.evidence import decision_threshold, segment_column


def fairness(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    rules = ctx.spec.evaluation.fairness
    if rules is None:
        return StageOutput(artifacts={"fairness": {"enabled": False}}, summary="no fairness check in the spec")
    test = inputs["test"]
    threshold = decision_threshold(ctx.spec, inputs["evaluation"])
    proba = positive_scores(inputs["model"], test[inputs["training"]["input_columns"]])
    groups = group_labels(segment_column(test, rules.group_column, "evaluation.fairness.group_column"), rules.bins)
    rates = group_rates(groups, test[ctx.spec.target.column].to_numpy(), proba >= threshold, rules.min_group_size)
    summary = fairness_summary(rates)
    failures = fairness_failures(summary, rules.min_disparate_impact, rules.max_equalized_odds_difference)
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
        "min_disparate_impact": rules.min_disparate_impact,
        "max_equalized_odds_difference": rules.max_equalized_odds_difference,
        "min_group_size": rules.min_group_size,
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
    impact = summary["disparate_impact"]
    shown = "n/a (fewer than 2 groups large enough)" if impact is None else f"{impact:.2f}"
    return StageOutput(
        artifacts={"fairness": report},
        metrics={} if impact is None else {"disparate_impact": impact},
        summary=f"disparate impact {shown} across {len(rates)} groups",
    )


STAGE = Stage(
    name="fairness",
    func=fairness,
    needs=("model", "training", "test", "evaluation"),
    makes=("fairness",),
    spec_sections=("evaluation", "target"),
    code=("retrainer.evidence", "retrainer.stages.evidence"),
)
