"""Promote: move the `champion` alias to the winner, or keep the champion; record why either way.

The move happens under a lock, after re-reading the champion: if another run moved it since this
run compared, this run's comparison is stale and nothing moves (run again to compare with the new
champion). The old champion gets the `previous` alias, so `retrainer rollback` can restore it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from retrainer.integrations.locks import registry_lock
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.promotion import move_champion


def promote(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    decision, version = inputs["decision"], inputs["registration"]["version"]
    name = spec.registry_name
    if decision["winner"] == "unchanged":
        return _done("unchanged", decision["reason"], version, decision.get("existing_version"))
    registry = ctx.registry
    with registry_lock(ctx.store, name):
        current = registry.by_alias(name, "champion")
        current_version = current.version if current else None
        if decision["winner"] == "challenger" and current_version != decision.get("champion_version"):
            outcome, reason = (
                "kept_champion",
                f"the champion moved to v{current_version} during this run; run again to compare against it",
            )
        elif decision["winner"] == "challenger" and not spec.promotion.auto_promote:
            registry.set_alias(name, "challenger", version)
            outcome, reason = (
                "registered",
                f"{decision['reason']}; auto_promote is off: promote with `retrainer promote {name} {version}`",
            )
        elif decision["winner"] == "challenger":
            move_champion(registry, name, version, decision["reason"], actor=f"retrainer run {ctx.run_id}")
            outcome, reason = "promoted", decision["reason"]
        else:
            outcome, reason = "kept_champion", decision["reason"]
        if outcome != "promoted":
            registry.tag_version(
                name,
                version,
                {
                    "retrainer.outcome": outcome,
                    "retrainer.reason": reason[:5000],
                    "retrainer.decided_at": datetime.now(UTC).isoformat(),
                },
            )
    record = {"version": version, "outcome": outcome, "tracking_uri": registry.tracking_uri, "run_id": ctx.run_id}
    ctx.store.write_decision(name, ctx.upstream["train"], record)
    return _done(outcome, reason, version, current_version)


def _done(outcome: str, reason: str, version: int, champion_before: int | None) -> StageOutput:
    result = {"outcome": outcome, "reason": reason, "version": version, "champion_before": champion_before}
    return StageOutput(artifacts={"promotion": result}, summary=f"{outcome.replace('_', ' ')}: v{version}")


STAGE = Stage(name="promote", func=promote, needs=("decision", "registration"), makes=("promotion",), cacheable=False)
