"""Compare: score the production champion on the *same* test set and decide who should serve.

The challenger wins only when it beats the champion on the chosen metric by `min_improvement`
(absolute, or relative to the champion's score); a tie keeps the champion. With no champion, the
first model that passed every gate wins. The evidence (a paired bootstrap CI of the gain, per-slice
metrics; see `retrainer.stages.evidence`) can still keep the champion. A model identical to one
already decided on (same training cache key) is "unchanged": nothing is registered or moved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from retrainer.metrics import better, shown
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.stages.evidence import decision_threshold, promotion_evidence, weigh_evidence
from retrainer.tasks import from_info

if TYPE_CHECKING:
    from retrainer.model_registry import VersionInfo


@dataclass(frozen=True)
class Decision:
    winner: str  # "challenger" | "champion" | "unchanged"
    reason: str
    metric: str
    challenger_score: float | None = None
    champion_score: float | None = None
    champion_version: int | None = None
    existing_version: int | None = None  # this exact model, registered before


def required_improvement(champion_score: float, absolute: float | None, relative: float | None) -> float:
    """The margin the challenger must beat the champion by, in metric units."""
    if relative is not None:
        return abs(champion_score) * relative
    return absolute or 0.0


def challenger_beats_champion(
    metric: str, challenger: float, champion: float, absolute: float | None = None, relative: float | None = None
) -> tuple[bool, str]:
    """Whether the challenger wins, and the reason in plain words."""
    gain = better(metric, challenger, champion)
    needed = required_improvement(champion, absolute, relative)
    rule = f"{relative:.1%} relative" if relative is not None else f"+{shown(metric, needed)}"
    signed_gain = ("+" if gain >= 0 else "") + shown(metric, gain)
    comparison = f"{metric} {shown(metric, challenger)} vs champion {shown(metric, champion)} ({signed_gain})"
    if gain > 0 and gain >= needed - 1e-12:  # 0.57 - 0.56 is 0.00999...: a margin met exactly wins
        return True, f"{comparison} beats the required improvement ({rule})"
    if gain <= 0:
        return False, f"{comparison}: not better than the champion"
    return False, f"{comparison}: improvement below the required {shown(metric, needed)} ({rule})"


def compare(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    name = spec.registry_name
    metric = from_info(inputs["target_info"]).comparison_metric(spec)
    model_key = ctx.upstream["train"]
    decided = ctx.store.read_decision(name, model_key)
    if decided and decided.get("tracking_uri") == _tracking_uri(ctx):
        return _unchanged(metric, decided["version"], decided["outcome"])
    registry = ctx.registry
    existing = registry.validated_version_with_key(name, model_key)
    if existing and "retrainer.outcome" in existing.tags:
        return _unchanged(metric, existing.version, existing.tags["retrainer.outcome"])
    champion = registry.by_alias(name, "champion")
    if champion is not None and existing and existing.version == champion.version:
        return _unchanged(metric, existing.version, "promoted")
    decision, champion_metrics, proof = decide_against(ctx, inputs, champion)
    return _output(decision, existing, champion_metrics, proof or None)


def decide_against(
    ctx: RunContext, inputs: Mapping[str, Any], champion: VersionInfo | None
) -> tuple[Decision, dict[str, float] | None, dict[str, Any]]:
    """Score `champion` on this run's test set and decide, with the evidence; also used by promote when the
    champion moved."""
    spec = ctx.spec
    task = from_info(inputs["target_info"])
    metric = task.comparison_metric(spec)
    challenger_score = inputs["evaluation"]["test"][metric]
    threshold = decision_threshold(spec, inputs["evaluation"])
    if champion is None:
        proof = promotion_evidence(ctx, inputs, metric, None, threshold)
        ci = proof["challenger_ci"]
        reason = (
            f"no champion yet: first model to pass every gate ({metric} {shown(metric, challenger_score)}, "
            f"{ci['confidence']:.0%} CI [{shown(metric, ci['low'])}, {shown(metric, ci['high'])}])".replace(
                "% CI", " % CI"
            )
        )
        return Decision("challenger", reason, metric, challenger_score), None, proof
    columns = inputs["training"]["input_columns"]
    different = task.same_target(champion.task)
    if different:
        # scores of another task or label set cannot be compared row by row: production stays as it is
        reason = f"{different}: they cannot be compared on the same test set; keeping v{champion.version}"
        reason += " (`retrainer promote` can still make the challenger champion)"
        proof = promotion_evidence(ctx, inputs, metric, None, threshold)
        return Decision("champion", reason, metric, challenger_score, None, champion.version), None, proof
    try:
        # a forecaster's champion is backtested on this run's windows (its own may have other ones)
        champion_model = task.scored_like_this_run(ctx.registry.load_model(spec.registry_name, champion.version), spec)
        test = inputs["test"]
        champion_proba = task.predict(champion_model, test[_champion_columns(champion_model, columns)])
        # the champion serves at the threshold stored with it: its metrics, bootstrap and slices use that one
        champion_threshold = champion.decision_threshold(spec.evaluation.decision_threshold)
        champion_metrics = task.all_metrics(test[spec.target.column].to_numpy(), champion_proba, champion_threshold)
    except Exception as error:  # noqa: BLE001 - any failure to score means the champion cannot serve this data
        ctx.logger.warning("champion v%s cannot score the new test set: %s", champion.version, error)
        reason = (
            f"champion v{champion.version} cannot score the new test set ({type(error).__name__}: {error}); "
            f"challenger {metric} {shown(metric, challenger_score)}"
        )
        proof = promotion_evidence(ctx, inputs, metric, None, threshold)
        return Decision("challenger", reason, metric, challenger_score, None, champion.version), None, proof
    champion_score = champion_metrics[metric]
    twin = _twin_of(ctx, inputs, champion, champion_proba)
    if twin:  # `--force` on unchanged data: a retrained copy of the champion is not a new version
        same = Decision("unchanged", twin, metric, challenger_score, champion_score, champion.version, champion.version)
        return same, champion_metrics, {}
    rule = spec.promotion.min_improvement
    wins, reason = challenger_beats_champion(metric, challenger_score, champion_score, rule.absolute, rule.relative)
    proof = promotion_evidence(ctx, inputs, metric, champion_proba, threshold, champion_threshold)
    wins, reason = weigh_evidence(wins, reason, proof, spec.promotion.confidence)
    decision = Decision(
        "challenger" if wins else "champion", reason, metric, challenger_score, champion_score, champion.version
    )
    if warning := too_good_to_be_true(metric, challenger_score, champion_score, champion.version):
        ctx.logger.warning("%s", warning)
        proof = {**proof, "too_good_to_be_true": warning}
    return decision, champion_metrics, proof


TOO_GOOD_GAIN = 0.05


def too_good_to_be_true(metric: str, challenger: float, champion: float, version: int) -> str | None:
    """The leakage guard's last check: a challenger far better than the champion on the same rows. A
    score in [0, 1] that gains more than `TOO_GOOD_GAIN` and closes more than half the champion's gap
    to perfect, or an error cut by more than half. Retraining rarely does that; a leak does. A warning
    with the figures: a real step (new features, much more data) is possible."""
    from retrainer.metrics import get_metric

    known = get_metric(metric)
    gain = better(metric, challenger, champion)
    if known.bounded and known.greater_is_better:
        suspicious = gain > TOO_GOOD_GAIN and gain > (1 - champion) / 2
    elif not known.greater_is_better:
        suspicious = champion > 0 and challenger < champion / 2
    else:
        suspicious = False
    if not suspicious:
        return None
    return (
        f"challenger {metric} {shown(metric, challenger)} against champion v{version}'s {shown(metric, champion)} "
        "on the same rows: too good to be true? (check the top features for a proxy of the label)"
    )


def _twin_of(ctx: RunContext, inputs: Mapping[str, Any], champion: VersionInfo, champion_proba: Any) -> str:
    """Why the challenger is the champion again (same data digest, the same predictions on every test
    row), or "" when it is a different model. The training cache key differs whenever anything upstream
    was re-run (`--force`, `--from`), so the key alone cannot tell."""
    import numpy as np

    digest = ctx.artifact_digests.get("data")
    if not digest or champion.tags.get("retrainer.data_digest") != digest:
        return ""
    task = from_info(inputs["target_info"])
    test = inputs["test"]
    proba = np.asarray(task.predict(inputs["model"], test[inputs["training"]["input_columns"]]), dtype=float)
    theirs = np.asarray(champion_proba, dtype=float)
    if proba.shape != theirs.shape or not np.allclose(proba, theirs, rtol=0, atol=1e-12, equal_nan=True):
        return ""
    return (
        f"model identical to v{champion.version} (same data {digest}, the same predictions on all "
        f"{len(test):,} test rows); nothing to register"
    )


def _champion_columns(model: Any, fallback: list[str]) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(c) for c in names] if names is not None else fallback


def _tracking_uri(ctx: RunContext) -> str:
    from retrainer.integrations.mlflow_registry import default_tracking_uri

    return ctx.spec.tracking.uri or default_tracking_uri(ctx.store)


def _unchanged(metric: str, version: int, outcome: str) -> StageOutput:
    decision = Decision(
        "unchanged",
        f"model identical to v{version} (already {outcome.replace('_', ' ')}); nothing to do",
        metric,
        existing_version=version,
    )
    return _output(decision, None, None)


def _output(
    decision: Decision, existing: Any, champion_metrics: dict[str, float] | None, proof: dict[str, Any] | None = None
) -> StageOutput:
    record = asdict(decision)
    if existing is not None:
        record["existing_version"] = existing.version
    record["champion_metrics"] = champion_metrics
    record["evidence"] = proof
    summary = f"{decision.winner}: {decision.reason}"
    if proof and proof.get("too_good_to_be_true"):
        summary += f"; warning: {proof['too_good_to_be_true']}"
    return StageOutput(artifacts={"decision": record}, summary=summary)


STAGE = Stage(
    name="compare",
    func=compare,
    needs=("model", "training", "test", "evaluation", "target_info"),
    makes=("decision",),
    cacheable=False,
    code=("retrainer.stages.evidence", "retrainer.evidence", "retrainer.tasks"),
)
