"""Promote: move the `champion` alias to the winner, or keep the champion; record why either way.

"Read the champion, compare, move the alias" is one guarded step: under the registry lock the
champion is read again, and if another run moved it since this run compared, this run compares
again with the new champion on its own test set, so it never overwrites a newer decision. The
old champion gets `previous` (for `retrainer rollback`); a registered model that lost, or that
waits for a manual promotion, gets `challenger`. Each decision is tagged on the version and
appended to the audit log. With `promotion.export_dir`, a new champion is also exported to a plain
file registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from retrainer.integrations.locks import registry_lock
from retrainer.integrations.mlflow_registry import CHALLENGER, CHAMPION
from retrainer.model_registry import VersionInfo
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.promotion import champion_in_audit, move_champion, record_decision
from retrainer.stages.compare import decide_against


def promote(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    decision, version = dict(inputs["decision"]), inputs["registration"]["version"]
    name = spec.registry_name
    registry = ctx.registry
    if decision["winner"] == "unchanged" and (
        # the run store's decision record is written last, so with it no move can be half done; without
        # it, ask the registry (that import alone is a second, which an unchanged re-run should not pay)
        ctx.store.read_decision(name, ctx.upstream["train"]) is not None
        or not _interrupted_move(registry.by_alias(name, CHAMPION), version)
    ):
        # the champion now, not the identical version found (which may have lost to it)
        return _done("unchanged", decision["reason"], version, champion_in_audit(ctx.store, name))
    actor = f"retrainer run {ctx.run_id}"
    lock_url = spec.promotion.lock_url
    with registry_lock(ctx.store, name, tracking_uri=registry.tracking_uri, lock_url=lock_url):
        current = registry.by_alias(name, CHAMPION)
        current_version = current.version if current else None
        if current is not None and _interrupted_move(current, version):
            # a promotion of this very version died after the alias moved, before it was recorded (a
            # retried Airflow task, a resumed run): finish it; the replaced champion is `previous`
            outcome, reason = "promoted", current.tags.get("retrainer.reason") or decision["reason"]
            current_version = move_champion(registry, name, version, reason, actor=actor)
        else:
            moved = current_version != decision.get("champion_version")
            if moved and current_version == version:  # someone promoted this very version meanwhile
                decision.update(winner="champion", reason=f"v{version} was made champion by another decision meanwhile")
            elif moved:
                ctx.logger.info("the champion moved to v%s during this run: comparing again", current_version)
                again, _, _ = decide_against(ctx, inputs, current)
                decision.update(
                    winner=again.winner,
                    reason=f"the champion moved to v{current_version} during this run; compared again: {again.reason}",
                )
            if decision["winner"] == "challenger" and not spec.promotion.auto_promote:
                outcome = "registered"
                reason = f"{decision['reason']}; auto_promote is off: promote with `retrainer promote {name} {version}`"
            elif decision["winner"] == "challenger":
                move_champion(registry, name, version, decision["reason"], actor=actor)
                outcome, reason = "promoted", decision["reason"]
            else:
                outcome, reason = "kept_champion", decision["reason"]
            if outcome != "promoted":
                if current_version != version:
                    registry.set_alias(name, CHALLENGER, version)
                registry.tag_version(
                    name,
                    version,
                    {
                        "retrainer.outcome": outcome,
                        "retrainer.reason": reason[:5000],
                        "retrainer.decided_at": datetime.now(UTC).isoformat(),
                        "retrainer.decided_by": actor,
                        "retrainer.champion_before": str(current_version or "none"),
                    },
                )
        after = version if outcome == "promoted" else current_version
        record_decision(
            ctx.store, registry, name, outcome, version, current_version, after, reason,
            actor=actor, run_id=ctx.run_id, lock_url=lock_url,
        )  # fmt: skip
    record = {"version": version, "outcome": outcome, "tracking_uri": registry.tracking_uri, "run_id": ctx.run_id}
    ctx.store.write_decision(name, ctx.upstream["train"], record)
    exported = _export(ctx, version) if outcome == "promoted" and spec.promotion.export_dir else None
    return _done(outcome, reason, version, current_version, exported)


def _interrupted_move(champion: VersionInfo | None, version: int) -> bool:
    """`champion` is already `version` but was never tagged promoted: a move killed half-way."""
    return champion is not None and champion.version == version and champion.tags.get("retrainer.outcome") != "promoted"


def _export(ctx: RunContext, version: int) -> str | None:
    """Copy the new champion to the plain file registry; a failure is logged, the promotion stands."""
    from retrainer.integrations.file_registry import export_version

    try:
        path = export_version(ctx.registry, ctx.spec.registry_name, version, str(ctx.spec.promotion.export_dir))
    except Exception as error:  # noqa: BLE001 - the alias moved; the export can be redone with export-model
        ctx.logger.warning("could not export v%s to %s: %s", version, ctx.spec.promotion.export_dir, error)
        return None
    ctx.logger.info("exported v%s to %s", version, path)
    return path


def _done(
    outcome: str, reason: str, version: int, champion_before: int | None, exported: str | None = None
) -> StageOutput:
    result = {
        "outcome": outcome,
        "reason": reason,
        "version": version,
        "champion_before": champion_before,
        "exported_to": exported,
    }
    return StageOutput(artifacts={"promotion": result}, summary=f"{outcome.replace('_', ' ')}: v{version}")


STAGE = Stage(
    name="promote",
    func=promote,
    needs=("decision", "registration", "model", "training", "test", "evaluation", "target_info"),
    makes=("promotion",),
    cacheable=False,
)
