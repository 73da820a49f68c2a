"""The online comparison: logged predictions joined to labels that arrived later, per served version.

Each entity counts once per version (its latest prediction), so a frequent caller does not outweigh
the rest. Each version is scored by its own task at its own threshold (`Task.logged_metrics`): binary
versions on every binary metric, multiclass ones on the metrics of the decided class (the log keeps
no per-class probabilities), regression ones on the logged values. `canary_verdict` is the pure
decision a spec's `serving.canary` rule makes from the two arms' figures; `apply_verdict` moves the
aliases under the registry lock. `online_report` does all of it for a spec: what `retrainer ab-report`
shows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retrainer.metrics import better

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.spec import CanarySpec, Spec, TargetSpec
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
    from retrainer.model_registry import TASK_TAG
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


class ServedTasks:
    """Each served version's task and threshold (`served_task`), read from its registry tags once."""

    def __init__(self, registry: Registry, name: str, labels: pd.Series, target: TargetSpec, threshold: float) -> None:
        self.registry, self.name, self.labels, self.target, self.threshold = registry, name, labels, target, threshold
        self._served: dict[int, tuple[Task, float]] = {}

    def __call__(self, version: int) -> tuple[Task, float]:
        if version not in self._served:
            self._served[version] = served_task(
                self.registry, self.name, version, self.labels, self.target, self.threshold
            )
        return self._served[version]


@dataclass(frozen=True)
class OnlineReport:
    """The online comparison of one served model, its canary verdict and what was done about it."""

    name: str
    log: str  # where the prediction log was read
    figures: list[VersionFigures]  # newest version first
    verdict: Verdict | None  # None: the spec has no canary rule
    applied: str | None  # what apply_verdict did, in words; None when nothing was applied (a dry run)
    canary_metric: str | None
    tasks: ServedTasks

    def shown_metrics(self, limit: int = 2) -> list[str]:
        """The canary's metric, then those a summary of the newest version's task shows first."""
        shown = [self.canary_metric] if self.canary_metric else []
        if self.figures:
            shown += list(self.tasks(self.figures[0].version)[0].shown_metrics())
        return list(dict.fromkeys(shown))[:limit]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "log": self.log,
            "versions": figures_as_dicts(self.figures),
            "canary": self.verdict.__dict__ if self.verdict else None,
            "applied": self.applied,
        }


def online_report(
    spec: Spec, registry: Registry, store: RunStore, *, labels: str | None = None, apply: bool = True
) -> OnlineReport:
    """Join the spec's prediction log to labels (the file `labels`, else the spec's source), score each
    served version, and judge the challenger by `serving.canary`; move the aliases too when `apply`."""
    from retrainer.errors import SpecError
    from retrainer.integrations.mlflow_registry import CHALLENGER, CHAMPION
    from retrainer.serving.app import ServingConfig
    from retrainer.serving.source import read_labels, read_source

    config = ServingConfig.from_spec(spec, store)
    if config.prediction_log is None:
        raise SpecError(
            f"{spec.spec_path}: the run store is not local, so there is no default prediction log to read",
            hint="set serving.prediction_log.path or .url in the spec",
        )
    log = config.prediction_log.read()
    label_frame = read_labels(labels) if labels else read_source(spec)
    column = spec.target.column
    tasks = ServedTasks(registry, config.name, label_frame[column], spec.target, config.decision_threshold)
    figures = online_comparison(log, label_frame, config.entity_id, column, tasks)
    verdict = applied = None
    rule = spec.serving.canary
    if rule is not None:
        champion, challenger = registry.by_alias(config.name, CHAMPION), registry.by_alias(config.name, CHALLENGER)
        by_version = {f.version: f for f in figures}
        verdict = canary_verdict(
            rule,
            by_version.get(champion.version) if champion else None,
            by_version.get(challenger.version) if challenger else None,
            tasks(champion.version)[0].ranking_metric(spec) if champion else "",
        )
        if apply and challenger is not None:
            applied = apply_verdict(registry, store, config.name, verdict, challenger.version)
    return OnlineReport(
        name=config.name,
        log=config.prediction_log.where,
        figures=figures,
        verdict=verdict,
        applied=applied,
        canary_metric=rule.metric if rule else None,
        tasks=tasks,
    )
