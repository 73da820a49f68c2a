"""The readiness probe: a fresh process that loads registered versions as `retrainer serve` does and times them.

    python -m retrainer.serving.readiness REQUEST.json RESULT.json

The readiness stage (`retrainer.stages.readiness`) starts it with the run's interpreter. For each
version in the request it loads the model by its `models:/` URI (`deployment.load_version`, the
server's loader), answers the request rows through the server's code (`RequestSchema.parse`,
`request_frame`, `LoadedModel.respond`, JSON in and out), times one-row and batch requests, and
checks that every requirement the model declares is installed at the pinned version and imports.
Each version is measured in a process of its own (forked after the imports): the peak memory of one
is not the other's, and neither inherits what the other loaded (a module-level cache, say).

The result holds, per version: `error` (where it broke: load, schema, score), the answers to every
row, `size_bytes`, `load_s`, `latency_ms` (`one_row`, `batch`: p50/p95/p99 and the samples),
`first_request_ms`, `peak_memory_mb`, `baseline_memory_mb`, `requirements` (each with its problem).
A forecaster's rows are answered as its `python_function` flavor answers them (`/forecast` takes a
series and a horizon, not rows).
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
    request = json.loads(Path(argv[0]).read_text())
    rows = json.loads(Path(request["rows_file"]).read_text())
    _import_serving()  # before forking: both versions start from the same process
    results = [_isolated(request, rows, entry, Path(f"{argv[1]}.{i}")) for i, entry in enumerate(request["models"])]
    Path(argv[1]).write_text(json.dumps({"models": results}))
    return 0


def _import_serving() -> None:
    import mlflow.sklearn  # noqa: F401 - what every load needs: imported once, before the fork

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

    def serve(body: str) -> str:  # what POST /predict does between the HTTP layer's bytes in and out
        from pydantic import ValidationError

        from retrainer.serving.schema import error_details, request_frame

        try:
            shape, parsed = schema.parse(json.loads(body))
        except ValidationError as error:
            raise _Refused(json.dumps(error_details(error)[:3])) from None
        found = [dict(row) for row in parsed]
        frame = request_frame(found, schema.columns)
        # a forecaster's answer is a backtest over the rows sent: its python_function answer
        answers = loaded.answer(frame) if forecaster else loaded.respond(frame, [str(r[entity_id]) for r in found])
        return json.dumps(answers[0] if shape == "single" and answers else {"predictions": answers})

    forecaster = loaded.task.name == "forecast"
    if forecaster:  # its answers to rows depend on all the rows sent together (a backtest): send them at once
        return _forecaster_requests(loaded, rows, request, serve, keep_answers=keep_answers)
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
    loaded: Any, rows: list[dict[str, Any]], request: dict[str, Any], serve: Any, *, keep_answers: bool
) -> dict[str, Any]:
    """A forecaster: the rows answered in one request; timed are `POST /forecast` requests (a series, the
    model's horizon), with no batch form (without exogenous columns: their futures are the client's)."""
    from retrainer.serving import forecasts

    answers = json.loads(serve(json.dumps({"rows": rows})))["predictions"] if keep_answers else []
    forecaster = loaded.model[-1]
    result: dict[str, Any] = {"answers": answers, "latency_ms": {}}
    if list(forecaster.exogenous):
        return result
    horizon = int(loaded.task.info()["horizon"])
    every = sorted(set(forecaster.history_["unique_id"].astype(str)))
    bodies = [
        json.dumps({"series_id": every[i % len(every)], "horizon": horizon}) for i in range(request["requests"] + 1)
    ]

    def forecast(body: str) -> str:
        series, ahead, future = forecasts.parse(json.loads(body), horizon)
        return json.dumps(forecasts.answer(loaded, series, ahead, future))

    result["first_request_ms"] = _timed(forecast, bodies[:1])[0]
    result["latency_ms"]["one_row"] = _summary(_timed(forecast, bodies[1:]))
    return result


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
    sys.exit(main(sys.argv[1:]))
