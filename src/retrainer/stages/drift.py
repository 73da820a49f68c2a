"""Drift: the new batch against the reference profile of the data the champion was trained on.

The profile is stored with every registered version (`retrainer/reference_profile.json` on its
MLflow run, written by the register stage). Each feature the champion used, and the champion's
prediction score, is compared with `retrainer.drift`; the policy then decides: `report` records it,
`retrain` records it (and makes an orchestrated run go ahead, see `exporters.airflow`), `block`
rejects the run. With no champion (or one registered before profiles existed) there is nothing to
compare with and the stage says so.

The stage is cached per data batch, spec and champion: an unchanged re-run does not ask the
registry, but its key holds the champion of the store's audit log (a file read, no MLflow), so once
a run or `retrainer promote` moves the champion, the same batch is measured against the new one
(before, the cached line kept saying "no reference (no champion yet)" after v1 was promoted).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.drift import Thresholds, compare_to_profile, contract_changes, describe_kind_change, kind_changes
from retrainer.errors import DataValidationError, DriftBlocked
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.store import ParquetFile
from retrainer.tasks import from_info, task_class

if TYPE_CHECKING:
    import pandas as pd

PROFILE_ARTIFACT = "retrainer/reference_profile.json"


def champion_reference(ctx: RunContext) -> tuple[int, dict[str, Any]] | None:
    """The champion's version and reference profile, or None when there is no champion or no profile."""
    spec = ctx.spec
    if not spec.tracking.uri and ctx.store.is_local and not Path(ctx.store.path("mlflow.db")).exists():
        return None  # no registry yet: no champion, and no need to import MLflow to learn it
    registry = ctx.registry
    champion = registry.by_alias(spec.registry_name, "champion")
    if champion is None or champion.run_id is None:
        return None
    profile = registry.run_json_artifact(champion.run_id, PROFILE_ARTIFACT)
    return None if profile is None else (champion.version, profile)


def drift_report(
    frame: pd.DataFrame,
    profile: dict[str, Any],
    rules: Any,
    reference: str | None,
    scores: Any = None,
) -> dict[str, Any]:
    """The drift artifact: every feature's statistics, the score's, and the names of those that drifted."""
    thresholds = Thresholds(**rules.thresholds.model_dump())
    features, score = compare_to_profile(profile, frame, thresholds, rules.features, scores)
    kinds = kind_changes(profile, frame)  # also the contract's type rule
    return {
        "reference": reference,
        "policy": rules.policy,
        "thresholds": rules.thresholds.model_dump(),
        "features": [f.as_dict() for f in features],
        "score": score.as_dict() if score else None,
        "drifted_features": [f.name for f in features if f.drifted],
        "missing_features": sorted(set(rules.features or profile["columns"]) - set(frame.columns)),
        "kind_changes": kinds,
        "contract_changes": contract_changes(profile, frame, kinds),
    }


def empty_report(policy: str, why: str) -> dict[str, Any]:
    return {
        "reference": None,
        "policy": policy,
        "features": [],
        "score": None,
        "drifted_features": [],
        "note": why,
    }


def _champion_scores(ctx: RunContext, version: int, frame: pd.DataFrame, profile: Mapping[str, Any]) -> Any:
    """The champion's predictions on the new batch, as its profile holds them (`Task.drift_values`: binary
    scores, decided classes, values), or None if it cannot score it: that is compare's business."""
    try:
        model = ctx.registry.load_model(ctx.spec.registry_name, version)
        names = getattr(model, "feature_names_in_", None)
        used = [str(c) for c in names] if names is not None else list(profile.get("input_columns", []))
        task = from_info(profile.get("task"))
        return task.drift_values(task.predict(model, frame[used]))
    except Exception as error:  # noqa: BLE001 - score drift is optional evidence, never a failure
        ctx.logger.warning("champion v%s cannot score the batch for score drift: %s", version, error)
        return None


def drifted_now(ctx: RunContext) -> list[str]:
    """The features of the source's current batch that drifted from the champion's profile.

    What `drift.policy: retrain` asks before an orchestrated run is skipped for lack of new data: a
    table updated in place keeps its row count (so its summary state), yet its values may have moved.
    """
    from retrainer.stages.extract import extract

    found = champion_reference(ctx)
    if found is None:
        return []
    frame = extract(ctx, {}).artifacts["data"]
    if isinstance(frame, ParquetFile):  # streamed to a file in chunks: drift needs the values
        import pandas as pd

        streamed = Path(frame.path)
        frame = pd.read_parquet(streamed)
        streamed.unlink()  # scratch: this check is not a run, so no stage owns the file
    return list(drift_report(frame, found[1], ctx.spec.drift, f"champion v{found[0]}")["drifted_features"])


def drift(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    rules = ctx.spec.drift
    if rules.policy == "off":
        return StageOutput(artifacts={"drift": empty_report("off", "drift.policy is off")}, summary="off")
    try:
        found = champion_reference(ctx)
    except Exception as error:  # with policy 'report' drift is evidence, not a gate
        if rules.policy != "report":
            raise
        ctx.logger.warning("drift not measured: the champion's reference cannot be read: %s", error)
        report = empty_report(rules.policy, f"champion's reference unreadable: {error}"[:500])
        return StageOutput(artifacts={"drift": report}, summary="not measured (registry unreachable)")
    if found is None:
        report = empty_report(rules.policy, "no champion with a reference profile yet")
        return StageOutput(artifacts={"drift": report}, summary="no reference (no champion yet)")
    version, profile = found
    frame = inputs["data"]
    scores = _champion_scores(ctx, version, frame, profile) if profile.get("score") else None
    report = drift_report(frame, profile, rules, f"champion v{version}", scores)
    if profile.get("series"):  # a forecast: each series' level and seasonal shape against the champion's
        series = task_class(ctx.spec).series_drift(profile["series"], frame, ctx.spec)
        report["series"] = series
        report["drifted_features"] += [f"series {s['series']}" for s in series if s["drifted"]]
        for entry in series:
            reasons = "; ".join(entry["reasons"]) or "level and seasonality as before"
            ctx.logger.info("%s series %s: %s", "DRIFT" if entry["drifted"] else "ok   ", entry["series"], reasons)
    for feature in [*report["features"], *([report["score"]] if report["score"] else [])]:
        unseen = feature.get("unseen")  # a text column: new words beyond a fresh sample's
        ctx.logger.info(
            "%s %s: psi %.3f js %.3f ks %s%s%s",
            "DRIFT" if feature["drifted"] else "ok   ",
            feature["name"],
            feature["psi"],
            feature["js"],
            feature["ks"],
            "" if unseen is None else f" unseen {unseen:.3f}",
            f" ({'; '.join(feature['reasons'])})" if feature["reasons"] else "",
        )
    drifted = report["drifted_features"]
    score_drifted = bool(report["score"] and report["score"]["drifted"])
    metrics = {"drifted_features": float(len(drifted))}
    if rules.policy == "block" and (drifted or score_drifted):
        what = ", ".join(drifted + (["prediction score"] if score_drifted else []))
        raise DriftBlocked(
            f"drift against champion v{version} in {what}; drift.policy is 'block'",
            failures=[f"{f['name']}: {'; '.join(f['reasons'])}" for f in report["features"] if f["drifted"]],
            hint="inspect the data; retrain with drift.policy 'report' or 'retrain' if the change is real",
            report=report,
        )
    summary = f"{len(drifted)} of {len(report['features'])} features drifted vs champion v{version}"
    if drifted:
        summary += f": {', '.join(drifted[:6])}{'...' if len(drifted) > 6 else ''}"
    if score_drifted:
        summary += "; prediction score drifted"
    summary += _check_contract(ctx, report, version)
    return StageOutput(artifacts={"drift": report}, metrics=metrics, summary=summary)


def _check_contract(ctx: RunContext, report: dict[str, Any], version: int) -> str:
    """`validation.contract: champion`: a real change against the champion's data (`contract_changes`)
    rejects the batch (a warning where `validation.severity.contract` is 'warn'); a column that
    arrives as text where the champion had numbers warns under any other contract setting."""
    rules = ctx.spec.validation
    changes = report.get("contract_changes", [])
    if rules.contract != "champion" or rules.severity_of("contract") == "warn":
        notes = [f"warning: {c['message']} vs champion v{version}" for c in changes]
        if rules.contract != "champion":  # only the type changes, as before the champion's contract
            notes = [f"warning: {describe_kind_change(c)} vs champion v{version}" for c in report["kind_changes"]]
        for note in notes:
            ctx.logger.warning("%s", note)
        return "".join(f"; {note}" for note in notes)
    if changes:
        raise DataValidationError(
            f"the data changed against champion v{version}'s: " + "; ".join(c["message"] for c in changes),
            failures=[f"contract {c['rule']}: {c['message']}" for c in changes],
            hint="fix the feed; if the change is real, set validation.severity: {contract: warn} for this run "
            "(or validation.contract: off)",
        )
    return ""


def champion_fingerprint(ctx: RunContext) -> str:
    """The champion this stage measures against, as the audit log last recorded it (part of the key)."""
    from retrainer.promotion import champion_in_audit

    return f"champion={champion_in_audit(ctx.store, ctx.spec.registry_name, before_run=ctx.run_id)}"


STAGE = Stage(
    name="drift",
    func=drift,
    fingerprint=champion_fingerprint,
    needs=("data",),
    makes=("drift",),
    spec_sections=("drift", "promotion", "tracking", "forecast", "validation.contract", "validation.severity"),
    code=("retrainer.drift", "retrainer.forecasting", "retrainer.text"),
)
