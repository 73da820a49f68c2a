"""The FastAPI app: champion and challenger behind one `/predict`, split by a stable hash of the entity id.

    app = create_app(ServingConfig(name="telco-churn", entity_id="customer_id"), registry)

Request shapes on `POST /predict`: one row (`{...}`), a batch (`{"rows": [...]}` or a bare list), or
only ids (`{"entity_ids": [...]}`, features fetched from Redis). Every answered row says which alias
and version answered it, and is queued for the prediction log.

FastAPI is imported at module level: it resolves the handlers' annotations from this module's globals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from retrainer.errors import RetrainerError
from retrainer.forecasting.series import SINGLE
from retrainer.serving.deployment import Deployment, ModelWatcher, logger
from retrainer.serving.metrics import ServingMetrics
from retrainer.serving.prediction_log import BatchingWriter, PredictionLog, log_rows
from retrainer.serving.router import route
from retrainer.serving.schema import PredictResponse, RequestSchema, error_details, request_frame

if TYPE_CHECKING:
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.serving.online_features import OnlineFeatures
    from retrainer.spec import Spec
    from retrainer.store import RunStore


@dataclass(frozen=True)
class ServingConfig:
    """What `retrainer serve` needs; `from_spec` reads it from the spec's `serving:` section."""

    name: str
    entity_id: str = "id"
    challenger_share: float = 0.1
    poll_seconds: float = 5.0
    decision_threshold: float = 0.5  # binary versions registered without their own threshold decide at this one
    prediction_log: PredictionLog | None = None
    flush_seconds: float = 1.0
    online: OnlineFeatures | None = None

    @classmethod
    def from_spec(cls, spec: Spec, store: RunStore) -> ServingConfig:
        from retrainer.errors import SpecError

        serving = spec.serving
        # a forecaster's requests are routed by their series (one series: all of them by the same id)
        series = (spec.forecast.series_id or "series_id") if spec.forecast else None
        entity_id = serving.entity_id or spec.id_column or series
        if not entity_id:
            raise SpecError(
                f"{spec.spec_path or spec.name}: serving needs an entity id to split traffic by",
                hint="set id_column or serving.entity_id in the spec",
            )
        online = None
        if serving.redis is not None:
            from retrainer.serving.online_features import OnlineFeatures

            online = OnlineFeatures.from_spec(spec)
        default_log = str(store.local_path("predictions", spec.registry_name)) if store.is_local else ""
        return cls(
            name=spec.registry_name,
            entity_id=entity_id,
            challenger_share=serving.challenger_share,
            poll_seconds=serving.poll_seconds,
            decision_threshold=spec.evaluation.decision_threshold,
            prediction_log=PredictionLog.from_spec(serving.prediction_log, default_log)
            if (serving.prediction_log.path or serving.prediction_log.url or default_log)
            else None,
            flush_seconds=serving.prediction_log.flush_seconds,
            online=online,
        )


class _Rejected(Exception):
    """A request the server answers with an error status and detail instead of predictions."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status, self.detail = status, detail


def create_app(config: ServingConfig, registry: Registry) -> FastAPI:
    """Load the aliased models now (so a broken registry fails before the port opens) and build the app."""
    watcher = ModelWatcher(registry, config.name, config.poll_seconds, config.decision_threshold)
    schema = RequestSchema(watcher.schema, config.entity_id, watcher.optional)
    metrics = ServingMetrics()
    writer = BatchingWriter(config.prediction_log, config.flush_seconds) if config.prediction_log else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        watcher.start()
        if writer:
            writer.start()
        try:
            yield
        finally:
            watcher.stop()
            if writer:
                writer.close()
            if config.online:
                config.online.close()

    app = FastAPI(title=f"retrainer: {config.name}", version="1", lifespan=lifespan)
    app.state.watcher, app.state.metrics, app.state.writer = watcher, metrics, writer

    def rows_and_ids(body: Any) -> tuple[str, list[dict[str, Any]], list[str]]:
        try:
            shape, parsed = schema.parse(body)
        except ValidationError as error:
            raise _Rejected(422, error_details(error)) from None
        if shape != "online":
            rows = [dict(row) for row in parsed]  # type: ignore[arg-type]
            return shape, rows, [str(row[config.entity_id]) for row in rows]
        ids = [str(e) for e in parsed]
        if config.online is None:
            detail = "this server has no online feature store: send full rows, or set serving.redis in the spec"
            raise _Rejected(422, [{"loc": ["body", "entity_ids"], "msg": detail, "type": "no_online_features"}])
        fetched = config.online.fetch(ids)
        missing = [entity for entity, row in zip(ids, fetched, strict=True) if row is None]
        if missing:
            raise _Rejected(
                404,
                f"no online features for {config.entity_id} {', '.join(missing[:10])} (expired or never materialized)",
            )
        rows = [{**row, config.entity_id: entity} for entity, row in zip(ids, fetched, strict=True)]  # type: ignore[dict-item]
        try:
            schema.validate_rows(rows)
        except ValidationError as error:  # the store holds rows the model cannot take: say which
            raise _Rejected(422, error_details(error, ("online_features",))) from None
        return shape, rows, ids

    def score(deployment: Deployment, rows: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
        """Each row answered by its arm's version, in that version's task's words and at its own threshold."""
        frame = request_frame(rows, schema.columns)
        has_challenger = deployment.challenger is not None
        arms = [route(e, config.challenger_share, config.name, has_challenger=has_challenger) for e in ids]
        answers: list[dict[str, Any]] = [{} for _ in rows]
        for arm in set(arms):
            chosen = [i for i, a in enumerate(arms) if a == arm]
            part = frame if len(chosen) == len(rows) else frame.iloc[chosen]
            for i, answer in zip(chosen, deployment.arm(arm).respond(part, [ids[i] for i in chosen]), strict=True):
                answers[i] = answer
        return answers

    batcher = _MicroBatcher(lambda rows, ids: score(watcher.current, rows, ids))
    body_schema, components = schema.openapi_schemas()

    @app.post(
        "/predict",
        summary="Score one row, a batch, or entity ids (features from Redis)",
        responses={200: {"model": PredictResponse, "description": "One answer, or {'predictions': [...]}"}},
    )
    async def predict(request: Request) -> Any:
        started = time.perf_counter()
        if not watcher.task.answers_rows:  # a forecaster answers series and horizons, not rows
            metrics.error(404)
            return JSONResponse({"detail": f"the served model is a {watcher.task.name} model: use /forecast"}, 404)
        try:
            try:
                body = json.loads(await request.body())
            except ValueError as error:
                raise _Rejected(
                    422, [{"loc": ["body"], "msg": f"invalid JSON: {error}", "type": "json_invalid"}]
                ) from None
            shape, rows, ids = rows_and_ids(body)
            answers = await batcher.submit(rows, ids)
        except _Rejected as rejected:
            metrics.error(rejected.status)
            return JSONResponse({"detail": rejected.detail}, status_code=rejected.status)
        except RetrainerError as error:  # e.g. Redis unreachable: the service, not the request, is at fault
            metrics.error(503)
            return JSONResponse({"detail": error.message}, status_code=503)
        except Exception as error:  # noqa: BLE001 - a bug: count it and answer 500 with the error's type
            metrics.error(500)
            logger.exception("%s: prediction failed", config.name)
            return JSONResponse({"detail": f"{type(error).__name__}: {error}"}, status_code=500)
        seconds = time.perf_counter() - started
        used: dict[tuple[str, int], int] = {}
        for answer in answers:
            key = (answer["alias"], answer["version"])
            used[key] = used.get(key, 0) + 1
        for (alias, version), count in used.items():
            metrics.observe(alias, version, count, seconds)
        if writer:
            writer.append(
                log_rows(
                    ids,
                    [a["alias"] for a in answers],
                    [a["version"] for a in answers],
                    [a["prediction"] for a in answers],
                    [a.get("probability") for a in answers],
                )
            )
        versions = ",".join(f"{alias}=v{version}" for alias, version in sorted(used))
        content = answers[0] if shape == "single" else {"predictions": answers}
        return JSONResponse(content, headers={"X-Model-Versions": versions})

    @app.post("/forecast", summary="A forecaster's points and intervals for one series (task: forecast)")
    async def forecast(request: Request) -> Any:
        from retrainer.serving import forecasts

        started = time.perf_counter()
        deployment = watcher.current
        task = deployment.champion.task
        if task.answers_rows:
            return JSONResponse({"detail": f"the served model is a {task.name} model: use /predict"}, 404)
        try:
            series, horizon, future = forecasts.parse(json.loads(await request.body()))
            # one series (no id sent) is routed as the series of a spec without series_id
            key = series if series is not None else SINGLE
            arm = route(key, config.challenger_share, config.name, has_challenger=deployment.challenger is not None)
            model = deployment.arm(arm)
            content = await asyncio.to_thread(forecasts.answer, model, series, horizon, future)
        except forecasts.ForecastRefused as refused:  # a ValueError too: before the invalid JSON
            metrics.error(refused.status)
            return JSONResponse({"detail": refused.detail}, status_code=refused.status)
        except ValueError as error:  # invalid JSON
            metrics.error(422)
            return JSONResponse({"detail": f"invalid request: {error}"}, status_code=422)
        metrics.observe(model.alias, model.version, 1, time.perf_counter() - started)
        return JSONResponse(content, headers={"X-Model-Versions": f"{model.alias}=v{model.version}"})

    @app.get("/health", summary="The process is up")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="A champion is loaded and answering")
    async def ready() -> Any:
        current = watcher.current
        return {
            "ready": True,
            "champion": current.champion.version,
            "challenger": current.challenger.version if current.challenger else None,
        }

    @app.get("/metadata", summary="What is served: versions, split, inputs, logging")
    async def metadata() -> dict[str, Any]:
        current = watcher.current
        return {
            "name": config.name,
            "tracking_uri": registry.safe_uri,
            "task": watcher.task.info(),
            "champion": current.champion.describe(),
            "challenger": current.challenger.describe() if current.challenger else None,
            "challenger_share": config.challenger_share if current.challenger else 0.0,
            "entity_id": config.entity_id,
            "inputs": [{"name": name, "type": kind} for name, kind in watcher.schema],
            "decision_threshold": current.champion.describe()["threshold"],  # kept for older clients
            "prediction_log": config.prediction_log.where if config.prediction_log else None,
            "online_features": {"prefix": config.online.prefix, "version": config.online.version()}
            if config.online
            else None,
            "alias_swaps": watcher.swaps,
            "last_refresh_error": watcher.last_error,
        }

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics per alias and version")
    async def prometheus() -> str:
        text = metrics.render()
        if writer:
            text += (
                "# TYPE retrainer_logged_predictions_total counter\n"
                f"retrainer_logged_predictions_total {writer.written}\n"
                f"retrainer_prediction_log_failures_total {writer.failed_writes}\n"
            )
        return text

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            document.setdefault("components", {}).setdefault("schemas", {}).update(components)
            document["paths"]["/predict"]["post"]["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class _MicroBatcher:
    """Scores the requests that are waiting together, in one model call per arm.

    Scoring runs on the event loop; requests that arrive meanwhile are parsed on the next turn of
    the loop and queued, and the next scoring pass takes them all. One row costs the scikit-learn
    pipeline about as much as a hundred, so concurrent clients share that cost; a lone request is
    scored on the very next turn, without waiting. Each pass reads the current models once.
    """

    def __init__(self, score: Any) -> None:
        self.score = score
        self.pending: list[tuple[list[dict[str, Any]], list[str], asyncio.Future[list[dict[str, Any]]]]] = []

    async def submit(self, rows: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[dict[str, Any]]] = loop.create_future()
        self.pending.append((rows, ids, future))
        if len(self.pending) == 1:
            loop.call_soon(self._run)
        return await future

    def _run(self) -> None:
        batch, self.pending = self.pending, []
        try:
            answers = self.score([r for rows, _, _ in batch for r in rows], [i for _, ids, _ in batch for i in ids])
        except Exception as error:  # noqa: BLE001 - every waiting request gets the error
            for _, _, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_exception(error)
            return
        start = 0
        for rows, _, future in batch:
            if not future.done():
                future.set_result(answers[start : start + len(rows)])
            start += len(rows)
