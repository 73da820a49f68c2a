"""The readiness probe: a fresh process that loads registered versions as `retrainer serve` does and times them.

    python -m retrainer.serving.readiness REQUEST.json RESULT.json
    python -m retrainer.serving.readiness      # then '["REQUEST.json", "RESULT.json"]' on stdin

The readiness stage (`retrainer.stages.readiness`) starts it with the run's interpreter, the second
way: as compare starts, so that the imports (MLflow, scikit-learn) overlap compare and register. For each
version in the request it loads the model by its `models:/` URI (`deployment.load_version`, the
server's loader), answers the request rows through the server's code (`RequestSchema.parse`,
`request_frame`, `LoadedModel.respond`, JSON in and out), times one-row and batch requests, and
checks that every requirement the model declares is installed at the pinned version and imports.
Each version is measured in a process of its own (forked after the imports): the peak memory of one
is not the other's, and neither inherits what the other loaded (a module-level cache, say).

The result holds, per version: `error` (where it broke: load, schema, score), the answers to every
row, `size_bytes`, `load_s`, `latency_ms` (`one_row`, `batch`: p50/p95/p99 and the samples),
`first_request_ms`, `peak_memory_mb`, `baseline_memory_mb`, `requirements` (each with its problem).
A forecaster is sent a `python_function` request instead of rows (every series at the model's
horizon), answered as that flavor answers it; its one-row requests are `POST /forecast` bodies, one
series each, and its batch the whole request.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

IDENTITY = ("entity_id", "alias", "version")  # what `respond` adds to the task's answer


def main(argv: list[str]) -> int:
    _import_serving()  # before forking: both versions start from the same process
    if not argv:  # started ahead (as compare starts): the two paths arrive on standard input
        line = sys.stdin.readline()
        if not line.strip():  # closed unused: the run did not get this far
            return 0
        argv = json.loads(line)
    request = json.loads(Path(argv[0]).read_text())
    rows = json.loads(Path(request["rows_file"]).read_text())
    results = [_isolated(request, rows, entry, Path(f"{argv[1]}.{i}")) for i, entry in enumerate(request["models"])]
    Path(argv[1]).write_text(json.dumps({"models": results}))
    return 0


def _import_serving() -> None:
    import contextlib

    import mlflow.sklearn  # noqa: F401 - what every load needs: imported once, before the fork

    with contextlib.suppress(ImportError):  # MLflow's scikit-learn format; it imports every estimator (seconds)
        import skops.io  # noqa: F401

    from retrainer.serving import deployment, schema  # noqa: F401


def _isolated(request: dict[str, Any], rows: list[dict[str, Any]], entry: dict[str, Any], out: Path) -> dict[str, Any]:
    """`measure` in a forked child (where fork exists), which writes its result to `out` and exits."""
    if not hasattr(os, "fork"):
        return measure(request, rows, entry)
    pid = os.fork()
    if pid == 0:  # the child: measure, write, leave without running the parent's exit handlers
        code = 0
        try:
            out.write_text(json.dumps(measure(request, rows, entry), default=str))
        except BaseException:  # noqa: BLE001 - the parent reports the missing result
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if out.exists():
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else f"exit {status >> 8}"
    return {**entry, "error": {"stage": "load", "message": f"the process measuring it died ({how})"}}


def measure(request: dict[str, Any], rows: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
    """Load one version, answer the rows, time requests; every failure is recorded, never raised."""
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.serving.deployment import load_version
    from retrainer.serving.schema import RequestSchema

    result: dict[str, Any] = {**entry, "error": None, "baseline_memory_mb": _peak_memory_mb()}
    registry = Registry(request["tracking_uri"])
    name, version = request["name"], int(entry["version"])
    try:  # the connection to the store is the process's, made once at start: not the model's load time
        registry.version(name, version)
    except Exception as error:  # noqa: BLE001
        return {**result, "error": {"stage": "load", "message": _said(error)}}
    started = time.perf_counter()
    try:
        loaded = load_version(registry, name, version, entry["role"], float(request["default_threshold"]))
        schema = RequestSchema(list(loaded.inputs), request["entity_id"], registry.optional_inputs(name, version))
    except Exception as error:  # noqa: BLE001 - a version that cannot load is the finding
        result["error"] = {"stage": "load", "message": _said(error)}
    else:
        result["load_s"] = time.perf_counter() - started
        try:
            result.update(_requests(loaded, schema, rows, request, keep_answers=entry.get("answers", True)))
        except _Refused as refused:
            result["error"] = {"stage": "schema", "message": str(refused)}
        except Exception as error:  # noqa: BLE001
            result["error"] = {"stage": "score", "message": _said(error)}
    result["peak_memory_mb"] = _peak_memory_mb()
    try:
        directory = registry.model_directory(name, version)
        result["size_bytes"] = sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file())
        result["requirements"] = requirement_problems(Path(directory, "requirements.txt"))
        here = Path(directory)
        copied = next((p for p in (here, *here.parents) if p.name.startswith("retrainer-model-")), None)
        if copied is not None:  # a remote store's files, downloaded for this: not kept
            import shutil

            shutil.rmtree(copied, ignore_errors=True)
    except Exception as error:  # noqa: BLE001
        result["requirements"] = [{"requirement": "(the model's files)", "problem": _said(error)}]
    return result


class _Refused(Exception):
    """The request schema refused a row the model was evaluated on: a 422 from `retrainer serve`."""


def _requests(
    loaded: Any, schema: Any, rows: list[dict[str, Any]], request: dict[str, Any], *, keep_answers: bool
) -> dict[str, Any]:
    """Every row answered in batches (the answers compared with the evaluated ones), then the timings."""
    batch_rows, entity_id = int(request["batch_rows"]), request["entity_id"]

    if not loaded.task.answers_rows:  # a forecaster answers requests (series, horizon), not rows
        return _forecaster_requests(loaded, rows, request, keep_answers=keep_answers)

    def serve(body: str) -> str:  # what POST /predict does between the HTTP layer's bytes in and out
        from pydantic import ValidationError

        from retrainer.serving.schema import error_details, request_frame

        try:
            shape, parsed = schema.parse(json.loads(body))
        except ValidationError as error:
            raise _Refused(json.dumps(error_details(error)[:3])) from None
        found = [dict(row) for row in parsed]
        frame = request_frame(found, schema.columns)
        answers = loaded.respond(frame, [str(r[entity_id]) for r in found])
        return json.dumps(answers[0] if shape == "single" and answers else {"predictions": answers})

    answers: list[dict[str, Any]] = []
    for start in range(0, len(rows) if keep_answers else 0, batch_rows):  # the champion is only timed
        answered = json.loads(serve(json.dumps({"rows": rows[start : start + batch_rows]})))["predictions"]
        answers += [{k: v for k, v in a.items() if k not in IDENTITY} for a in answered]
    singles = [json.dumps(rows[i % len(rows)]) for i in range(int(request["requests"]) + 1)]
    filled = (rows * (batch_rows // len(rows) + 2))[: batch_rows + len(rows)]
    batches = [json.dumps({"rows": filled[(i * 7) % len(rows) :][:batch_rows]}) for i in range(int(request["batches"]))]
    first = _timed(serve, singles[:1])[0]  # the first request pays for lazy set-up: shown apart
    return {
        "answers": answers,
        "first_request_ms": first,
        "latency_ms": {"one_row": _summary(_timed(serve, singles[1:])), "batch": _summary(_timed(serve, batches))},
    }


def _forecaster_requests(
    loaded: Any, rows: list[dict[str, Any]], request: dict[str, Any], *, keep_answers: bool
) -> dict[str, Any]:
    """A forecaster: `rows` is a `python_function` request (every series at the model's horizon) answered
    at once (the `batch` timing: MLflow's callers ask this way); one-row timings are `POST /forecast`
    requests, one series each, through the server's code."""
    import pandas as pd

    from retrainer.serving import forecasts

    def ask(body: str) -> str:  # what the python_function flavor does with a request
        return json.dumps(loaded.answer(pd.DataFrame(json.loads(body))), default=str)

    def forecast(body: str) -> str:  # what POST /forecast does between the bytes in and out
        series, horizon, future = forecasts.parse(json.loads(body))
        return json.dumps(forecasts.answer(loaded, series, horizon, future))

    everything = json.dumps(rows)
    answers = json.loads(ask(everything)) if keep_answers else []
    per_series: dict[str, dict[str, Any]] = {}
    for row in rows:  # a body per series: its future periods (a model with exogenous columns) in `future`
        future = {k: v for k, v in row.items() if k not in ("series_id", "horizon")}
        body = per_series.setdefault(str(row["series_id"]), {"series_id": row["series_id"], "horizon": row["horizon"]})
        if future:
            body.setdefault("future", []).append(future)
    every = list(per_series.values())
    bodies = [json.dumps(every[i % len(every)]) for i in range(int(request["requests"]) + 1)]
    first = _timed(forecast, bodies[:1])[0]  # the first request pays for lazy set-up: shown apart
    return {
        "answers": answers,
        "first_request_ms": first,
        "latency_ms": {
            "one_row": _summary(_timed(forecast, bodies[1:])),
            "batch": _summary(_timed(ask, [everything] * int(request["batches"]))),
        },
    }


def _timed(serve: Any, bodies: list[str]) -> list[float]:
    times = []
    for body in bodies:
        started = time.perf_counter()
        serve(body)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(samples: list[float]) -> dict[str, Any]:
    import numpy as np

    p50, p95, p99 = (float(v) for v in np.percentile(samples, [50, 95, 99]))
    return {"p50": p50, "p95": p95, "p99": p99, "mean": float(np.mean(samples)), "samples": samples}


def requirement_problems(path: Path) -> list[dict[str, Any]]:
    """Each requirement of the model's `requirements.txt`, with its problem where it has one: not
    installed, installed at a version the pin excludes, or installed but its modules do not import."""
    import importlib
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import InvalidRequirement, Requirement

    if not path.exists():
        return [{"requirement": "requirements.txt", "problem": "the model declares no requirements file"}]
    checked = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        entry: dict[str, Any] = {"requirement": line, "installed": None, "problem": None}
        try:
            wanted = Requirement(line)
        except InvalidRequirement as error:
            checked.append({**entry, "problem": f"cannot be read: {error}"})
            continue
        if wanted.marker is not None and not wanted.marker.evaluate():
            continue
        try:
            installed = distribution(wanted.name)
            entry["installed"] = installed.version
        except PackageNotFoundError:
            checked.append({**entry, "problem": "not installed"})
            continue
        if wanted.specifier and not wanted.specifier.contains(entry["installed"], prereleases=True):
            entry["problem"] = f"installed {entry['installed']}, the model needs {wanted.specifier}"
        else:
            for module in _import_names(wanted.name, _top_level_modules(installed)):
                try:
                    importlib.import_module(module)
                except Exception as error:  # noqa: BLE001 - any import failure is the finding
                    entry["problem"] = f"installed, but `import {module}` fails: {_said(error)}"
                    break
        checked.append(entry)
    return checked


def _top_level_modules(installed: Any) -> list[str]:
    """The modules a distribution installs at the top level: its `top_level.txt`, else its files."""
    listed = (installed.read_text("top_level.txt") or "").split()
    if listed:
        return listed
    found = set()
    for file in installed.files or ():
        parts = file.parts
        if (len(parts) > 1 and parts[1] == "__init__.py") or (len(parts) == 1 and file.suffix == ".py"):
            found.add(parts[0].removesuffix(".py"))
    return sorted(found) or [_canonical(installed.metadata["Name"]).replace("-", "_")]


def _import_names(distribution: str, modules: list[str]) -> list[str]:
    """The module a distribution is imported by: the one of its own name (torch, not torchgen), else its first."""
    public = sorted(m for m in modules if not m.startswith("_"))
    return [m for m in public if _canonical(m) == _canonical(distribution)] or public[:1]


def _canonical(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def _peak_memory_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _said(error: BaseException) -> str:
    message = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"[:500]


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the result is written: skip tearing down MLflow and scikit-learn (about a second)
