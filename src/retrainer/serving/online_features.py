"""Online features in Redis: the latest feature values per entity, so a request can send only an id.

Layout under a prefix (default `retrainer:<pipeline>`):

    <prefix>:e:<entity id>   hash: column -> JSON value, plus `__version__`; expires after the TTL
    <prefix>:version         the materialization version, written after every entity (readers see
                             a new version only once all its rows are in)

`materialize` reads the spec's source, keeps each entity's latest row (by time_column when the spec
has one, else the last row read) and writes it with one pipelined round trip per 1,000 entities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrainer.errors import SourceError, SpecError

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import RedisSpec, Spec

VERSION_FIELD = "__version__"


@dataclass(frozen=True)
class Materialized:
    entities: int
    columns: list[str]
    version: str
    prefix: str
    ttl_seconds: int


class OnlineFeatures:
    """Reads and writes one pipeline's feature hashes in Redis."""

    def __init__(self, url: str, prefix: str, ttl_seconds: int) -> None:
        import redis

        self.url, self.prefix, self.ttl_seconds = url, prefix, ttl_seconds
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=10)

    @classmethod
    def from_spec(cls, spec: Spec) -> OnlineFeatures:
        from retrainer.spec import parse_duration

        config = redis_config(spec)
        return cls(config.url, config.prefix or f"retrainer:{spec.name}", int(parse_duration(config.ttl)))

    def entity_key(self, entity_id: str) -> str:
        return f"{self.prefix}:e:{entity_id}"

    @property
    def version_key(self) -> str:
        return f"{self.prefix}:version"

    def write(self, rows: dict[str, dict[str, Any]], version: str, batch: int = 1_000) -> None:
        """Write each entity's row (column -> plain JSON value) with the TTL, then the version key."""
        with self._errors("write to"):
            items = list(rows.items())
            for start in range(0, len(items), batch):
                pipe = self.client.pipeline(transaction=False)
                for entity, row in items[start : start + batch]:
                    key = self.entity_key(entity)
                    mapping: dict[str | bytes, str] = {column: json.dumps(value) for column, value in row.items()}
                    mapping[VERSION_FIELD] = version
                    pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                    pipe.expire(key, self.ttl_seconds)
                pipe.execute()
            self.client.set(self.version_key, version, ex=self.ttl_seconds)

    def fetch(self, entity_ids: list[str]) -> list[dict[str, Any] | None]:
        """Each entity's feature row (None where it expired or was never materialized)."""
        with self._errors("read from"):
            pipe = self.client.pipeline(transaction=False)
            for entity in entity_ids:
                pipe.hgetall(self.entity_key(entity))
            found = pipe.execute()
        rows: list[dict[str, Any] | None] = []
        for raw in found:
            if not raw:
                rows.append(None)
                continue
            rows.append({k.decode(): json.loads(v) for k, v in raw.items() if k != VERSION_FIELD.encode()})
        return rows

    def version(self) -> str | None:
        with self._errors("read from"):
            value = self.client.get(self.version_key)
        return value.decode() if isinstance(value, bytes) else value

    def delete_all(self) -> int:
        """Remove every key under the prefix (tests and re-materialization from scratch)."""
        with self._errors("delete from"):
            keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1_000))
            return int(self.client.delete(*keys)) if keys else 0

    def close(self) -> None:
        self.client.close()

    def _errors(self, action: str) -> Any:
        import contextlib

        import redis

        @contextlib.contextmanager
        def wrapped() -> Any:
            try:
                yield
            except redis.RedisError as error:
                raise SourceError(
                    f"cannot {action} Redis at {_safe(self.url)}: {error}",
                    hint="check serving.redis.url and that Redis is running",
                ) from None

        return wrapped()


def redis_config(spec: Spec) -> RedisSpec:
    if spec.serving.redis is None:
        raise SpecError(
            f"{spec.spec_path or spec.name}: serving.redis is not set, so there is no online feature store",
            hint="add `serving: {redis: {url: redis://127.0.0.1:6379/0}}` to the spec",
        )
    return spec.serving.redis


def latest_rows(frame: pd.DataFrame, spec: Spec, columns: list[str]) -> dict[str, dict[str, Any]]:
    """Each entity's latest row, as plain JSON values (NaN -> null, times -> ISO text)."""
    entity = spec.serving.entity_id or spec.id_column
    if not entity or entity not in frame.columns:
        raise SpecError(
            f"online features need an entity id column; {entity or 'id_column'} is not in the source",
            hint="set id_column (or serving.entity_id) to a column of the source",
        )
    if spec.time_column and spec.time_column in frame.columns:
        frame = frame.sort_values(spec.time_column, kind="stable")
    latest = frame.drop_duplicates(subset=[entity], keep="last")
    records = json.loads(latest[[entity, *columns]].to_json(orient="records", date_format="iso"))
    return {str(record.pop(entity)): record for record in records}


def materialize(spec: Spec, frame: pd.DataFrame | None = None) -> Materialized:
    """Write the latest feature values per entity from the spec's source (or `frame`) into Redis."""
    from retrainer.serving.source import read_source
    from retrainer.stages.features import feature_columns

    redis_config(spec)  # a spec without serving.redis fails before the source is read
    frame = read_source(spec) if frame is None else frame
    columns = feature_columns(frame, spec)
    rows = latest_rows(frame, spec, columns)
    version = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{len(rows)}"
    store = OnlineFeatures.from_spec(spec)
    try:
        store.write(rows, version)
    finally:
        store.close()
    return Materialized(len(rows), columns, version, store.prefix, store.ttl_seconds)


def _safe(url: str) -> str:
    from retrainer.urls import safe_url

    return safe_url(url)
