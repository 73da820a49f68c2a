"""Notify: tell people what a run did, whatever the outcome, and keep one summary line per run.

The summary is appended to `<store>/runs.jsonl`; the spec's `notify` channels (a Slack-compatible
webhook, SMTP email) get a message on the events they listed: promoted, kept_champion, registered,
unchanged, rejected, failed, and drift when the run found drifted features. It never fails the run:
a notifier that cannot deliver logs the problem and carries on. Secrets never reach the summary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from retrainer.integrations.notifiers import Message, deliver, redact_value, secret_values
from retrainer.outcomes import headline
from retrainer.pipeline import RunContext, Stage, StageOutput

EVENT_OF_OUTCOME = {"interrupted": "failed", "partial": "registered"}


def notify(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    secrets = secret_values(ctx.spec.notify)
    summary = redact_value(dict(inputs["summary"]), secrets)
    delivered: dict[str, str] = {}
    for message in run_messages(summary):
        for channel, status in deliver(ctx.spec.notify, message).items():
            delivered[f"{channel}:{message.event}"] = status
    if delivered:
        summary["notified"] = delivered
    try:
        ctx.store.append_line(ctx.store.path("runs.jsonl"), json.dumps(summary, default=str, sort_keys=True))
    except Exception as error:  # noqa: BLE001 - notification must never fail the run
        ctx.logger.warning("could not append the run summary: %s", error)
    return StageOutput(artifacts={"notification": summary}, summary=f"{summary['outcome']}")


def run_messages(summary: Mapping[str, Any]) -> list[Message]:
    """The outcome message of one run, and a drift message when it found drifted features."""
    outcome = str(summary["outcome"])
    pipeline = summary["pipeline"]
    version = f" v{summary['model_version']}" if summary.get("model_version") else ""
    champion = summary.get("champion_version")
    lines = [
        f"Outcome: {outcome.replace('_', ' ')}: {summary.get('reason') or ''}",
        f"Model: {pipeline}{version}; champion before this run: {_version(summary.get('champion_version'))}",
    ]
    metrics = _key_metrics(summary.get("metrics") or {})
    if metrics:
        lines.append(f"Metrics (test set): {metrics}")
    drifted = list(summary.get("drifted_features") or [])
    if drifted:
        lines.append(f"Drifted features: {', '.join(map(str, drifted))}")
    lines.append(f"Run: {summary.get('run_id')} (as of {summary.get('as_of') or 'now'}), store {summary.get('store')}")
    messages = [
        Message(
            EVENT_OF_OUTCOME.get(outcome, outcome),
            f"[retrainer] {pipeline}: {headline(outcome, summary.get('model_version'), champion)}",
            "\n".join(lines),
        )
    ]
    if drifted:
        messages.append(
            Message(
                "drift",
                f"[retrainer] {pipeline}: drift in {len(drifted)} feature{'s' if len(drifted) > 1 else ''}",
                "\n".join([f"Drifted features: {', '.join(map(str, drifted))}", *lines]),
            )
        )
    return messages


def summary_message(outcomes: Mapping[str, Mapping[str, Any]], run_id: str) -> Message:
    """One message for a master run over several pipelines: each one's outcome, version and reason."""
    counts: dict[str, int] = {}
    lines = []
    for pipeline, result in outcomes.items():
        outcome = str(result.get("outcome"))
        counts[outcome] = counts.get(outcome, 0) + 1
        words = headline(outcome, result.get("model_version"), result.get("champion_version"))
        lines.append(f"- {pipeline}: {words}: {result.get('reason') or ''}")
    tally = ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items()))
    return Message("summary", f"[retrainer] {len(outcomes)} pipelines: {tally}", "\n".join([*lines, f"Run: {run_id}"]))


def _key_metrics(metrics: Mapping[str, Any]) -> str:
    """The test metrics the run's task shows first (`retrainer.tasks.shown_metrics`), as `name value`."""
    from retrainer.metrics import REGISTRY, shown
    from retrainer.tasks import shown_metrics

    values = {name: metrics.get(f"test_{name}", metrics.get(name)) for name in REGISTRY}
    tested = {name: value for name, value in values.items() if isinstance(value, int | float)}
    return ", ".join(f"{name} {shown(name, tested[name])}" for name in shown_metrics(tested))


def _version(version: Any) -> str:
    return f"v{version}" if version else "none"


STAGE = Stage(
    name="notify", func=notify, needs=("summary",), makes=("notification",), spec_sections=("notify",), cacheable=False
)
