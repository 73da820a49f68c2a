"""Readiness: before the alias moves, load the registered version as serving will, and measure it.

A fresh process (`python -m retrainer.serving.readiness`, this interpreter) loads the version by its
`models:/` URI, answers the test rows through the serving code (request schema, response building,
JSON in and out) and times one-row and batch requests; the champion is measured the same way, so the
figures compare. A forecaster is asked instead for every series' forecasts `horizon` periods after
its training end (`Task.request_example`; exogenous values stand in from the last training periods),
through the code of `POST /forecast` and its `python_function` flavor, and must answer the in-process
model's forecasts. The version must load, answer every row as the evaluated model did (labels exactly,
numbers to `readiness.tolerance`, 1e-6 relative), and find each requirement it declares installed at
its pin: these always hold. Size, load time, latency, memory and the slowdown against the champion are gates only where
`readiness` bounds them; past the defaults below they only warn.

A failure tags the version (`retrainer.readiness: failed` and the reason), keeps the champion, and
ends the run "rejected" (`NotReady`), notified like any gate; a later run of the same model checks
it again (after the missing package is installed, say). A crash here moves nothing: the run resumes.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import NotReady, StageError
from retrainer.faults import kill_point
from retrainer.integrations.mlflow_registry import CHAMPION
from retrainer.pipeline import RunContext, Stage, StageOutput, warmed
from retrainer.promotion import READINESS_TAG
from retrainer.pyfunc import answer
from retrainer.tasks import from_info

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import ReadinessSpec

FIGURES_TAG = "retrainer.readiness_figures"  # json: size, load, p95 latencies, memory, slowdown
# past these a figure warns (in the log and the report) without failing: a bound in the spec gates
WARN_AT = {"model_mb": 500.0, "load_s": 30.0, "p95_ms": 100.0, "batch_p95_ms": 1000.0, "memory_mb": 4096.0}
WARN_SLOWDOWN = 2.0
ABSOLUTE_TOLERANCE = 1e-12  # beside `readiness.tolerance` (relative): a probability of 0 served as 1e-17


def readiness(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    process = warmed(ctx, "readiness")  # started as compare started; else started below
    try:
        return _check(ctx, inputs, process)
    finally:
        if process is not None:
            process.close()


def _check(ctx: RunContext, inputs: Mapping[str, Any], process: ProbeProcess | None) -> StageOutput:
    spec, decision = ctx.spec, inputs["decision"]
    name, version = spec.registry_name, int(inputs["registration"]["version"])
    if decision["winner"] == "unchanged":  # nothing new registered: no alias will move to it
        skipped = {"checked": False, "version": version, "reason": "nothing new registered"}
        return StageOutput(artifacts={"readiness": skipped}, summary="nothing new to check")
    if not spec.readiness.enabled:
        skipped = {"checked": False, "version": version, "reason": "readiness.enabled is false"}
        ctx.logger.warning("v%s is not loaded back before promotion: readiness.enabled is false", version)
        return StageOutput(artifacts={"readiness": skipped}, summary="off (readiness.enabled: false)")
    registry = ctx.registry
    champion = registry.by_alias(name, CHAMPION)
    champion_version = champion.version if champion is not None and champion.version != version else None
    task = from_info(inputs["target_info"])
    evaluation = inputs["evaluation"]
    threshold = float(evaluation.get("decision_threshold", spec.evaluation.decision_threshold))
    entity_id = serving_entity_id(spec)
    asked = task.request_example(inputs["model"])
    if asked is None:  # the test rows, answered as they were evaluated
        columns = inputs["training"]["input_columns"]
        rows = inputs["test"].head(spec.readiness.check_rows)
        expected = task.response(task.predict(inputs["model"], rows[columns]), threshold)
        sent = request_rows(rows, columns, entity_id)
    else:  # a forecaster: every series forecast `horizon` periods after the training end, as served
        rows = asked
        sent = request_rows(rows, list(rows.columns), "series_id")
        answered = answer(inputs["model"], task, threshold, [], rows)
        expected = json.loads(json.dumps(answered, default=str))  # as the probe's JSON gives them back
    measured = probe(
        registry.tracking_uri,
        name,
        [(version, "candidate"), *([(champion_version, "champion")] if champion_version else [])],
        sent,
        entity_id=entity_id,
        rules=spec.readiness,
        default_threshold=spec.evaluation.decision_threshold,
        process=process,
    )
    kill_point("readiness:measured")  # measured, nothing tagged yet: a crash here must move nothing
    candidate = measured[0]
    champion_figures = figures(measured[1]) if len(measured) > 1 and not measured[1].get("error") else None
    failures, warnings = judge(candidate, expected, spec.readiness, champion_figures)
    if len(measured) > 1 and measured[1].get("error"):
        warnings.append(f"champion v{champion_version} could not be measured: {measured[1]['error']['message']}")
    found = figures(candidate)
    record: dict[str, Any] = {
        "checked": True,
        "version": version,
        "passed": not failures,
        "failures": failures,
        "warnings": warnings,
        "figures": found,
        "champion": {"version": champion_version, "figures": champion_figures} if champion_version else None,
        "slowdown_vs_champion": slowdown(found, champion_figures),
        "latency_ms": {kind: (candidate.get("latency_ms") or {}).get(kind, {}).get("samples", []) for kind in KINDS},
        "requirements": candidate.get("requirements", []),
        "rows_checked": len(rows),
        "bounds": spec.readiness.model_dump(mode="json"),
    }
    for warning in warnings:
        ctx.logger.warning("readiness of %s v%s: %s", name, version, warning)
    shown = {k: _rounded(v) for k, v in found.items() if v is not None}
    if record["slowdown_vs_champion"] is not None:
        shown["slowdown_vs_champion"] = _rounded(record["slowdown_vs_champion"])
    tags = {READINESS_TAG: "passed" if not failures else "failed", FIGURES_TAG: json.dumps(shown, sort_keys=True)}
    if failures:
        reason = f"v{version} is not ready to serve: " + "; ".join(failures)
        tags["retrainer.reason"] = reason[:5000]
        registry.tag_version(name, version, tags)
        # the report reads it from the run directory: a rejected stage saves no artifacts
        ctx.store.write_json(posixpath.join(ctx.store.run_dir(ctx.run_id), "readiness.json"), record)
        raise NotReady(reason, failures=failures, hint=NotReady.fix)
    registry.tag_version(name, version, tags)
    return StageOutput(artifacts={"readiness": record}, metrics=_metrics(record), summary=summary(record))


KINDS = ("one_row", "batch")


def serving_entity_id(spec: Any) -> str:
    """The request field `retrainer serve` routes by (`ServingConfig.from_spec`'s rule), else a stand-in."""
    series = (spec.forecast.series_id or "series_id") if spec.forecast else None
    return str(spec.serving.entity_id or spec.id_column or series or "id")


def request_rows(rows: pd.DataFrame, columns: list[str], entity_id: str) -> list[dict[str, Any]]:
    """The test rows as a client sends them in JSON: missing values null, times in ISO form, an entity id
    on each (the row's own where the data has one)."""
    import numpy as np
    import pandas as pd

    frame = rows[columns].astype(object).where(rows[columns].notna(), None)
    ids = rows[entity_id].astype(str).tolist() if entity_id in rows.columns else [str(i) for i in range(len(rows))]
    records = frame.to_dict(orient="records")
    for record, entity in zip(records, ids, strict=True):
        for key, value in record.items():
            if isinstance(value, pd.Timestamp | np.datetime64):
                record[key] = pd.Timestamp(value).isoformat()
            elif isinstance(value, np.generic):
                record[key] = value.item()
        record.setdefault(entity_id, entity)
    return records


class ProbeProcess:
    """The fresh process (`python -m retrainer.serving.readiness`, this interpreter), started before it is
    asked anything: MLflow and the serving code import while the run compares and registers the
    version (the stage's `warm_up`), then it reads where its request is from its standard input."""

    def __init__(self) -> None:
        self.work = tempfile.TemporaryDirectory(prefix="retrainer-readiness-")
        # the child imports what this process can (your estimator's module too), as `retrainer serve` would
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "retrainer.serving.readiness"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, Any], rows: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """The results of `request` (its models measured on `rows`); a timeout is each model's load error."""
        rows_file, request_file, result_file = (
            Path(self.work.name, n) for n in ("rows.json", "request.json", "result.json")
        )
        rows_file.write_text(json.dumps(rows))
        request_file.write_text(json.dumps({**request, "rows_file": str(rows_file)}))
        try:
            _, stderr = self.process.communicate(
                json.dumps([str(request_file), str(result_file)]) + "\n", timeout=timeout
            )
            if self.process.returncode != 0 or not result_file.exists():
                tail = " | ".join((stderr or "").strip().splitlines()[-3:])
                raise StageError(f"the readiness probe failed (exit {self.process.returncode}): {tail}")
            results: list[dict[str, Any]] = json.loads(result_file.read_text())["models"]
        except subprocess.TimeoutExpired:
            message = f"the fresh process did not finish within readiness.timeout ({timeout:g} s)"
            return [{**model, "error": {"stage": "load", "message": message}} for model in request["models"]]
        finally:
            self.close()
        return results

    def close(self) -> None:
        """Stop the process if it still runs (unused, or timed out) and remove its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        self.work.cleanup()


def warm_up(ctx: RunContext) -> ProbeProcess | None:
    """Start the probe's process as the champion comparison starts (the import of MLflow and scikit-learn
    takes seconds, and compare and register leave a core free), unless readiness is off."""
    return ProbeProcess() if ctx.spec.readiness.enabled else None


def probe(
    tracking_uri: str,
    name: str,
    versions: list[tuple[int, str]],
    rows: list[dict[str, Any]],
    *,
    entity_id: str,
    rules: ReadinessSpec,
    default_threshold: float = 0.5,
    process: ProbeProcess | None = None,
) -> list[dict[str, Any]]:
    """Measure `versions` ((version, role): the candidate first) in a fresh process (`process`, started
    ahead, or a new one); its results."""
    request = {
        "tracking_uri": tracking_uri,
        "name": name,
        "models": [{"version": v, "role": role, "answers": role == "candidate"} for v, role in versions],
        "entity_id": entity_id,
        "default_threshold": default_threshold,
        "batch_rows": rules.batch_rows,
        "requests": rules.requests,
        "batches": rules.batches,
    }
    return (process or ProbeProcess()).ask(request, rows, rules.timeout)


def figures(measured: Mapping[str, Any]) -> dict[str, float | None]:
    """The headline figures of one measured version (None where it broke before them)."""
    latency = measured.get("latency_ms") or {}
    size = measured.get("size_bytes")
    return {
        "model_mb": size / 1e6 if size is not None else None,
        "load_s": measured.get("load_s"),
        **{f"{p}_ms": latency.get("one_row", {}).get(p) for p in ("p50", "p95", "p99")},
        **{f"batch_{p}_ms": latency.get("batch", {}).get(p) for p in ("p50", "p95", "p99")},
        "memory_mb": measured.get("peak_memory_mb"),
    }


def judge(
    measured: Mapping[str, Any],
    expected: list[dict[str, Any]],
    rules: ReadinessSpec,
    champion: Mapping[str, float | None] | None = None,
) -> tuple[list[str], list[str]]:
    """(failures, warnings) of one measured version: what always fails, then the spec's bounds."""
    failures: list[str] = []
    error = measured.get("error")
    if error:
        where = {"load": "does not load", "schema": "the serving schema refuses its test rows", "score": "fails"}
        failures.append(f"{where.get(error['stage'], 'fails')} in a fresh process: {error['message']}")
    failures += [
        f"requirement {r['requirement']} {r['problem']}" for r in measured.get("requirements", []) if r.get("problem")
    ]
    if not error:
        difference = answers_differ(expected, measured.get("answers", []), rules.tolerance)
        if difference:
            failures.append(f"answers differently once loaded than when evaluated: {difference}")
    found = figures(measured)
    bounds = {
        "model_mb": rules.max_model_mb,
        "load_s": rules.max_load_s,
        "memory_mb": rules.max_memory_mb,
        **{f"{p}_ms": getattr(rules.max_latency_ms, p) for p in ("p50", "p95", "p99")},
        **{f"batch_{p}_ms": getattr(rules.max_batch_latency_ms, p) for p in ("p50", "p95", "p99")},
    }
    warnings: list[str] = []
    for key, value in found.items():
        bound = bounds.get(key)
        if value is None:
            continue
        if bound is not None and value > bound:
            failures.append(f"{_words(key)} {_shown(key, value)} is over the bound {_shown(key, bound)}")
        elif bound is None and key in WARN_AT and value > WARN_AT[key]:
            warnings.append(f"{_words(key)} {_shown(key, value)} is past {_shown(key, WARN_AT[key])} (no bound set)")
    ratio = slowdown(found, champion)
    if ratio is not None:
        limit = rules.max_slowdown_vs_champion
        if limit is not None and ratio > limit:
            failures.append(f"one-row p95 latency is {ratio:.1f}x the champion's, over the bound {limit:g}x")
        elif limit is None and ratio > WARN_SLOWDOWN:
            warnings.append(f"one-row p95 latency is {ratio:.1f}x the champion's (no bound set)")
    return failures, warnings


def slowdown(found: Mapping[str, float | None], champion: Mapping[str, float | None] | None) -> float | None:
    """The version's one-row p95 latency as a multiple of the champion's (None without both)."""
    mine, theirs = found.get("p95_ms"), (champion or {}).get("p95_ms")
    return mine / theirs if mine is not None and theirs else None


def answers_differ(expected: list[dict[str, Any]], found: list[dict[str, Any]], tolerance: float = 1e-6) -> str:
    """'' when `found` answers each row as `expected` does (labels exactly, numbers to `tolerance`
    relative), else how many rows differ and the first difference, in words."""
    if len(expected) != len(found):
        return f"{len(found)} answers for {len(expected)} evaluated ones"
    pairs = enumerate(zip(expected, found, strict=True))
    differing = [(i, why) for i, (a, b) in pairs if (why := _differs(a, b, tolerance))]
    if not differing:
        return ""
    row, why = differing[0]
    return f"{len(differing)} of {len(expected):,} test rows differ (row {row}: {why})"


def _differs(expected: Any, found: Any, tolerance: float, field: str = "") -> str:
    if isinstance(expected, dict) and isinstance(found, dict):
        if set(expected) != set(found):
            return f"fields {sorted(map(str, expected))} evaluated, {sorted(map(str, found))} served"
        for key in expected:
            why = _differs(expected[key], found[key], tolerance, f"{field}{key}.")
            if why:
                return why
        return ""
    name = field.rstrip(".") or "answer"
    if _is_number(expected) and _is_number(found):
        a, b = float(expected), float(found)
        if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=tolerance, abs_tol=ABSOLUTE_TOLERANCE):
            return ""
        return f"{name} {a:.10g} evaluated, {b:.10g} served"
    if expected is None and found is None:
        return ""
    same = str(expected) == str(found) if isinstance(found, str) or isinstance(expected, str) else expected == found
    return "" if same else f"{name} {expected!r} evaluated, {found!r} served"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summary(record: Mapping[str, Any]) -> str:
    """'v3 ready: 0.21 MB, loads in 0.84 s, p95 1.90 ms (batch: 6.20 ms), 312 MB, 1.1x slower than the champion...'."""
    found = record["figures"]
    text = (
        f"v{record['version']} ready: {_shown('model_mb', found['model_mb'])}, "
        f"loads in {_shown('load_s', found['load_s'])}, "
        f"p95 {_shown('p95_ms', found['p95_ms'])} (batch: {_shown('batch_p95_ms', found['batch_p95_ms'])}), "
        f"{_shown('memory_mb', found['memory_mb'])}"
    )
    champion = record.get("champion") or {}
    ratio = slowdown(found, champion.get("figures"))
    return text + (f", {than_the_champion(ratio)}" if ratio is not None else "")


def than_the_champion(ratio: float) -> str:
    """'2.1x slower than the champion' (one-row p95), or '1.5x faster ...'."""
    if ratio >= 1:
        return f"{ratio:.1f}x slower than the champion (one-row p95)"
    return f"{1 / ratio:.1f}x faster than the champion (one-row p95)"


def _metrics(record: Mapping[str, Any]) -> dict[str, float]:
    return {f"readiness_{k}": float(v) for k, v in record["figures"].items() if v is not None}


def _words(key: str) -> str:
    return {
        "model_mb": "model size",
        "load_s": "load time",
        "memory_mb": "peak memory",
    }.get(key, ("batch " if key.startswith("batch_") else "one-row ") + key.split("_")[-2] + " latency")


def _shown(key: str, value: float | None) -> str:
    if value is None:
        return "–"
    if key.endswith("_mb"):
        return f"{value:,.2f} MB" if value < 10 else f"{value:,.0f} MB"
    if key.endswith("_s"):
        return f"{value:.2f} s"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _rounded(value: float) -> float:
    return float(f"{value:.4g}")


STAGE = Stage(
    name="readiness",
    func=readiness,
    needs=("decision", "registration", "model", "training", "test", "evaluation", "target_info"),
    makes=("readiness",),
    cacheable=False,
    code=("retrainer.serving",),
    warm_up=warm_up,
    # as compare starts: its imports (about 4 s) overlap compare and register, which leave a core free
    # (measured: from evaluate, 5 ahead, the forecast example's backtest and the imports slowed each other)
    warm_up_lead=2,
)
