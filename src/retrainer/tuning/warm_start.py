"""Warm start: with `models.warm_start`, the production champion's parameters become a trial of its candidate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrainer.pipeline import RunContext


def champion_params(ctx: RunContext) -> tuple[str, dict[str, str]] | None:
    """The production champion's candidate and logged params, or None (no champion, registry unreachable)."""
    if not ctx.spec.models.warm_start:
        return None
    try:
        registry = ctx.registry
        if registry.tracking_uri.startswith("sqlite:///") and not Path(registry.tracking_uri[10:]).exists():
            return None  # no MLflow store yet, so no champion: don't create one (migrations cost seconds)
        champion = registry.by_alias(ctx.spec.registry_name, "champion")
        if champion is None or not champion.run_id:
            return None
        params = registry.run_params(champion.run_id)
    except Exception as error:  # noqa: BLE001 - a warm start is a bonus: tuning goes on without it
        ctx.logger.warning("no warm start from the champion: %s", error)
        return None
    return params.pop("candidate", ""), params


def params_in_space(logged: dict[str, str], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """MLflow params are strings: turn those inside the search space back into values Optuna accepts."""
    values: dict[str, Any] = {}
    for param, bounds in space.items():
        text = logged.get(param)
        if text is None:
            continue
        if "choices" in bounds:
            matches = [choice for choice in bounds["choices"] if str(choice) == text]
            if matches:
                values[param] = matches[0]
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        if isinstance(bounds["low"], int) and isinstance(bounds["high"], int):
            number = round(number)
        if bounds["low"] <= number <= bounds["high"]:
            values[param] = number
    return values
