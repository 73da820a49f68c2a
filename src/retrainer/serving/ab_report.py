"""The online comparison: logged predictions joined to labels that arrived later, per served version.

Each entity counts once per version (its latest prediction), so a frequent caller does not outweigh
the rest. Each version is scored by its own task at its own threshold (`Task.logged_metrics`): binary
versions on every binary metric, multiclass ones on the metrics of the decided class (the log keeps
no per-class probabilities), regression ones on the logged values. `canary_verdict` is the pure
decision a spec's `serving.canary` rule makes from the two arms' figures; `apply_verdict` moves the
aliases under the registry lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retrainer.metrics import better

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.spec import CanarySpec, TargetSpec
    from retrainer.store import RunStore
    from retrainer.tasks import Task


@dataclass(frozen=True)
class VersionFigures:
    version: int
    aliases: tuple[str, ...]
    predictions: int
    entities: int
    labelled: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    decision: Literal["wait", "pass", "fail", "no_challenger"]
    action: Literal["promote", "rollback", "nothing"]
    reason: str


def online_comparison(
    log: pd.DataFrame, labels: pd.DataFrame, entity_id: str, target: str, served: Callable[[int], tuple[Task, float]]
) -> list[VersionFigures]:
    """Figures per served version, newest version first; `served(version)`: its task and threshold."""
    if target not in labels.columns or entity_id not in labels.columns:
        from retrainer.errors import SourceError

        raise SourceError(
            f"labels need columns {entity_id!r} and {target!r}; they have {list(labels.columns)[:12]}",
            hint="point --labels at a file with the entity id and the target",
        )
    known = labels[[entity_id, target]].dropna().drop_duplicates(subset=[entity_id], keep="last")
    known = known.assign(**{entity_id: known[entity_id].astype(str)})
    figures = []
    for version, rows in log.groupby("version"):
        latest = rows.sort_values("ts", kind="stable").drop_duplicates(subset=["entity_id"], keep="last")
        joined = latest.merge(known, left_on="entity_id", right_on=entity_id, how="inner")
        metrics: dict[str, float] = {}
        if len(joined):
            task, threshold = served(int(version))
            y_true = task.encode(joined[target])
            metrics = task.logged_metrics(y_true, joined["prediction"], joined["probability"], threshold)
        figures.append(
            VersionFigures(
                version=int(version),
                aliases=tuple(sorted(set(rows["alias"]))),
                predictions=len(rows),
                entities=len(latest),
                labelled=len(joined),
                metrics=metrics,
            )
        )
    return sorted(figures, key=lambda f: f.version, reverse=True)


def served_task(
    registry: Registry, name: str, version: int, labels: pd.Series, target: TargetSpec, threshold: float
) -> tuple[Task, float]:
    """A version's task and threshold from its tags. One registered before tasks existed is binary,
    with the spec's positive label (or the one `labels` imply), and `threshold` where it stored none."""
    from retrainer.integrations.mlflow_registry import TASK_TAG
    from retrainer.target import positive_label
    from retrainer.tasks import from_info

    info = registry.version(name, version)
    task = info.task if TASK_TAG in info.tags else from_info({"positive": positive_label(labels, target)})
    return task, info.decision_threshold(threshold)


def canary_verdict(
    rule: CanarySpec, champion: VersionFigures | None, challenger: VersionFigures | None, default_metric: str = ""
) -> Verdict:
    """Promote, roll back or wait, from the two arms' online figures and the spec's canary rule.

    The rule's metric, else `default_metric` (the served task's ranking metric).
    """
    metric = rule.metric or default_metric
    if challenger is None:
        return Verdict("no_challenger", "nothing", "no challenger is being served")
    for arm, figures in (("champion", champion), ("challenger", challenger)):
        labelled = figures.labelled if figures else 0
        if labelled < rule.min_labelled:
            return Verdict(
                "wait", "nothing", f"{arm} has {labelled} labelled predictions of {rule.min_labelled} needed"
            )
        if figures and metric not in figures.metrics:
            known = ", ".join(figures.metrics) or "none"
            return Verdict(
                "wait",
                "nothing",
                f"{arm} v{figures.version} has no online {metric or 'metric'} (undefined on its labelled rows, or "
                f"not one its prediction log gives: {known}); set serving.canary.metric to one of those",
            )
    assert champion is not None
    ours, theirs = challenger.metrics[metric], champion.metrics[metric]
    gain = better(metric, ours, theirs)
    text = (
        f"online {metric}: challenger v{challenger.version} {ours:.4f} vs champion v{champion.version} "
        f"{theirs:.4f} ({challenger.labelled} and {champion.labelled} labelled)"
    )
    if gain >= -rule.max_regression:
        action: Literal["promote", "nothing"] = "promote" if rule.action == "promote" else "nothing"
        return Verdict("pass", action, f"{text}: within the allowed regression of {rule.max_regression}")
    action_on_fail: Literal["rollback", "nothing"] = "nothing" if rule.action == "report" else "rollback"
    return Verdict("fail", action_on_fail, f"{text}: worse by more than {rule.max_regression}")


def apply_verdict(registry: Registry, store: RunStore, name: str, verdict: Verdict, challenger: int) -> str:
    """Carry out the verdict on the registry; return what was done, in words."""
    from retrainer.integrations.locks import registry_lock
    from retrainer.integrations.mlflow_registry import CHALLENGER
    from retrainer.promotion import move_champion

    if verdict.action == "nothing":
        return "no alias moved"
    with registry_lock(store, name):
        current = registry.by_alias(name, CHALLENGER)
        if current is None or current.version != challenger:
            return f"no alias moved: the challenger is no longer v{challenger}"
        if verdict.action == "promote":
            old = move_champion(registry, name, challenger, f"canary passed: {verdict.reason}", actor="canary")
            registry.delete_alias(name, CHALLENGER)
            return f"promoted v{challenger} to champion (was v{old})"
        registry.delete_alias(name, CHALLENGER)
        registry.tag_version(name, challenger, {"retrainer.canary": f"rolled back: {verdict.reason}"[:5000]})
        return f"rolled back: v{challenger} no longer gets traffic"


def figures_as_dicts(figures: list[VersionFigures]) -> list[dict[str, Any]]:
    return [f.__dict__ for f in figures]
