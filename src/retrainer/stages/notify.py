"""Notify: one summary per run, whatever the outcome, appended to `<store>/runs.jsonl`.

It never fails the run: a notifier that cannot deliver logs the problem and carries on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from retrainer.pipeline import RunContext, Stage, StageOutput


def notify(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    summary = dict(inputs["summary"])
    try:
        ctx.store.append_line(ctx.store.path("runs.jsonl"), json.dumps(summary, default=str, sort_keys=True))
    except Exception as error:  # noqa: BLE001 - notification must never fail the run
        ctx.logger.warning("could not append the run summary: %s", error)
    return StageOutput(artifacts={"notification": summary}, summary=f"{summary['outcome']}")


STAGE = Stage(
    name="notify", func=notify, needs=("summary",), makes=("notification",), spec_sections=("notify",), cacheable=False
)
