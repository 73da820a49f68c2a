"""The prediction log: every served prediction with its version and entity id, written in batches.

Requests only append to an in-memory list; a background thread writes the batch every
`flush_seconds` (Parquet part files in a directory, or rows appended to a PostgreSQL table), so
logging never adds a disk or database round trip to a request. Labels that arrive later are joined
on the entity id by `retrainer ab-report`.

`prediction` is text, whatever the task: "0"/"1" (binary), the class label (multiclass), or the
value as Python writes a float, which reads back exactly (regression): one column type for every
kind of model, in Parquet and in SQL. `probability` is a nullable float: the positive class's
(binary), the predicted class's (multiclass), null for regression.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import PredictionLogSpec

LOG_COLUMNS = ("ts", "request_id", "entity_id", "alias", "version", "prediction", "probability")
logger = logging.getLogger("retrainer.serving")


class PredictionLog:
    """Where predictions go: a Parquet directory (`path`) or a PostgreSQL table (`url` + `table`)."""

    def __init__(self, *, path: str | None = None, url: str | None = None, table: str = "predictions") -> None:
        if bool(path) == bool(url):
            raise StoreError("a prediction log needs exactly one of a Parquet path or a database URL")
        self.path, self.url, self.table = path, url, table
        self._engine: Any = None

    @classmethod
    def from_spec(cls, spec: PredictionLogSpec, default_path: str) -> PredictionLog:
        return cls(path=spec.path or (None if spec.url else default_path), url=spec.url, table=spec.table)

    @property
    def where(self) -> str:
        if self.path:
            return self.path
        from retrainer.urls import safe_url

        return f"{safe_url(str(self.url))} table {self.table}"

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=list(LOG_COLUMNS))
        # fixed types, so a batch of nulls (regression) still writes a float column, not text
        frame = frame.astype({"prediction": str, "probability": "float64"})
        if self.path:
            directory = Path(self.path)
            directory.mkdir(parents=True, exist_ok=True)
            name = f"part-{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
            frame.to_parquet(directory / f".{name}.tmp", index=False)
            (directory / f".{name}.tmp").rename(directory / name)  # readers never see half a file
        else:
            frame.to_sql(self.table, self._connect(), if_exists="append", index=False)

    def read(self) -> pd.DataFrame:
        """Every logged prediction (empty frame with the log's columns when nothing was logged yet)."""
        import pandas as pd

        if self.path:
            parts = sorted(Path(self.path).glob("part-*.parquet"))
            if not parts:
                return pd.DataFrame(columns=list(LOG_COLUMNS))
            return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        from sqlalchemy import inspect

        engine = self._connect()
        if not inspect(engine).has_table(self.table):
            return pd.DataFrame(columns=list(LOG_COLUMNS))
        return pd.read_sql_table(self.table, engine)

    def _connect(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(str(self.url), pool_pre_ping=True)
        return self._engine


class BatchingWriter:
    """Collects prediction rows from requests and writes them from one background thread."""

    def __init__(self, log: PredictionLog, flush_seconds: float = 1.0) -> None:
        self.log = log
        self.flush_seconds = flush_seconds
        self.written = 0
        self.failed_writes = 0
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="prediction-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def append(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._pending.extend(rows)

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self.log.write(batch)
            self.written += len(batch)
        except Exception as error:  # noqa: BLE001 - a log outage must not take serving down
            self.failed_writes += 1
            logger.error("prediction log %s: dropped %d rows: %s", self.log.where, len(batch), error)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()


def log_rows(
    entity_ids: list[str],
    arms: list[str],
    versions: list[int],
    predictions: list[Any],
    probabilities: list[float | None],
) -> list[dict[str, Any]]:
    """One log row per answered row (the prediction as text); one request id ties the rows of a batch together."""
    now = datetime.now(UTC)
    request_id = uuid.uuid4().hex
    return [
        {
            "ts": now,
            "request_id": request_id,
            "entity_id": entity,
            "alias": arm,
            "version": version,
            "prediction": str(prediction),
            "probability": probability,
        }
        for entity, arm, version, prediction, probability in zip(
            entity_ids, arms, versions, predictions, probabilities, strict=True
        )
    ]
