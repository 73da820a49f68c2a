"""Compare's evidence: the paired bootstrap of the gain and the per-slice check, on the run's test set.

Kept apart from compare.py so the decision rule reads in one place: the point gain must meet
`promotion.min_improvement`; with `promotion.confidence` set, the bootstrap CI of the gain must also
lie above zero; and no slice of `evaluation.slices` with `min_slice_size` rows may regress by more
than `max_slice_regression`. Each rule that keeps the champion says so in the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrainer.errors import SpecError
from retrainer.evidence import group_labels, metric_intervals, paired_bootstrap, slice_metrics, slice_regressions
from retrainer.tasks import from_info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.pipeline import RunContext
    from retrainer.spec import Spec

DEFAULT_CONFIDENCE = 0.95


def decision_threshold(spec: Spec, evaluation: Mapping[str, Any]) -> float:
    """The probability cut-off in force (binary models): one chosen by the evaluate stage, else the spec's."""
    return float(evaluation.get("decision_threshold") or spec.evaluation.decision_threshold)


def segment_column(frame: pd.DataFrame, column: str, key: str) -> pd.Series:
    """The test set's column for slicing or fairness, or a clear error naming the spec key."""
    if column not in frame.columns:
        raise SpecError(
            f"{key}: column {column!r} is not in the data",
            hint=f"use one of: {', '.join(map(str, frame.columns))}",
        )
    return frame[column]


def promotion_evidence(
    ctx: RunContext,
    inputs: Mapping[str, Any],
    metric: str,
    champion_proba: np.ndarray | None,
    threshold: float,
    champion_threshold: float | None = None,
) -> dict[str, Any]:
    """Bootstrap CI of the gain (or of the challenger's score alone) and per-slice metrics of both models,
    each binary model cut at its own decision threshold (the champion's defaults to the challenger's).
    The outputs are the task's (`Task.predict`): scores, per-class probabilities or values."""
    spec = ctx.spec
    test = inputs["test"]
    task = from_info(inputs["target_info"])
    y = test[spec.target.column].to_numpy()
    proba = task.predict(inputs["model"], test[inputs["training"]["input_columns"]])
    confidence = spec.promotion.confidence or DEFAULT_CONFIDENCE
    units = task.bootstrap_groups(proba)  # a forecast resamples series x origin, not rows
    max_rows = spec.promotion.bootstrap_rows if units is None else None
    result = paired_bootstrap(
        metric,
        y,
        proba,
        proba if champion_proba is None else champion_proba,
        n_bootstrap=spec.promotion.n_bootstrap,
        confidence=confidence,
        seed=spec.seed,
        threshold=threshold,
        champion_threshold=champion_threshold,
        max_rows=max_rows,
        groups=units,
    )
    old_threshold = threshold if champion_threshold is None else champion_threshold
    proof: dict[str, Any] = {
        "metric": metric,
        "threshold": threshold,
        "champion_threshold": None if champion_proba is None else old_threshold,
        "bootstrap": None if champion_proba is None else result.to_dict(),
        "challenger_ci": {"low": result.challenger_low, "high": result.challenger_high, "confidence": confidence},
        "intervals": metric_intervals(
            y,
            proba,
            [m for m in task.metrics if m != metric],
            n_bootstrap=spec.promotion.n_bootstrap,
            confidence=confidence,
            seed=spec.seed,
            threshold=threshold,
            max_rows=max_rows,
            groups=units,
        )
        | {metric: (result.challenger_low, result.challenger_high)},
        "checks": task.paired_checks(proba, champion_proba, spec),  # an anomaly detector's alert overlap
        "slices": {},
        "slice_failures": [],
        "min_slice_size": spec.evaluation.min_slice_size,
        "max_slice_regression": spec.evaluation.max_slice_regression,
    }
    for column in spec.evaluation.slices:
        groups = group_labels(segment_column(test, column, "evaluation.slices"), spec.evaluation.slice_bins.get(column))
        new = slice_metrics(groups, y, proba, metric, threshold)
        old = None if champion_proba is None else slice_metrics(groups, y, champion_proba, metric, old_threshold)
        proof["slices"][column] = {"challenger": new, "champion": old}
        if old is not None:
            proof["slice_failures"] += slice_regressions(
                metric,
                new,
                old,
                min_slice_size=spec.evaluation.min_slice_size,
                max_regression=spec.evaluation.max_slice_regression,
                column=column,
            )
    return proof


def weigh_evidence(
    wins: bool, reason: str, proof: Mapping[str, Any], required_confidence: float | None
) -> tuple[bool, str]:
    """Apply the CI and slice rules to a point decision; the reason grows by what each rule found."""
    boot = proof.get("bootstrap")
    if boot:
        interval = f"{boot['confidence']:.0%} CI of the gain [{boot['low']:+.4f}, {boot['high']:+.4f}]"
        reason += "; " + interval.replace("% CI", " % CI")
        if wins and required_confidence is not None and boot["low"] <= 0:
            wins = False
            reason += ": the gain is not significant (the interval includes zero)"
    checks = (proof.get("checks") or {}).get("failures") or []  # the task's own (an anomaly detector's overlap)
    if checks:
        reason += ("; but a check failed: " if wins else "; failed checks: ") + "; ".join(checks)
        wins = False
    failures = proof.get("slice_failures") or []
    if failures:
        reason += ("; but a slice regressed: " if wins else "; slice regressions: ") + "; ".join(failures)
        wins = False
    elif proof.get("slices") and boot:
        reason += "; no slice regressed"
    return wins, reason
