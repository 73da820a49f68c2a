"""The run store: where every stage's outputs, every run's record and the stage cache live.

The store is a directory or any fsspec URL (`s3://bucket/retrainer`), so workers on other machines
can share it. Layout:

    <store>/cache/<stage>/<key>/manifest.json     written last: an entry without it is incomplete
    <store>/cache/<stage>/<key>/<artifact>.parquet|.json|.joblib
    <store>/work/<stage>-<key>/                   scratch that survives a crash (the Optuna study)
    <store>/runs/<run_id>/run.json                the run's record, rewritten after every stage
    <store>/runs/<run_id>/logs/<stage>.log
    <store>/runs.jsonl                            one summary line per finished run
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import fsspec

from retrainer.errors import StoreError

MANIFEST = "manifest.json"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, set | tuple):
        return list(value)
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=_json_default)


@dataclass(frozen=True)
class ParquetFile:
    """A data artifact a stage wrote itself, chunk by chunk, to a local Parquet file.

    Saving it moves the file into the store instead of encoding a DataFrame, so a table larger than
    memory never has to be one DataFrame; `digest` must be `parquet_digest(path)`.
    """

    path: str
    digest: str


@dataclass(frozen=True)
class ArtifactRef:
    """Where one artifact lives in the store, and how it is encoded."""

    path: str
    kind: str  # "frame" | "json" | "object"
    digest: str


class RunStore:
    """Reads and writes artifacts, manifests and run records under one root URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            raise StoreError(
                f"run store {url!r} cannot be opened: {exc}", hint="install the fsspec backend for that URL scheme"
            ) from exc
        self.is_local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        if self.is_local:
            self.root = str(Path(self.root).resolve())

    # ---------------------------------------------------------------- paths
    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def local_path(self, *parts: str) -> Path:
        """A local filesystem path inside the store (for SQLite files: the MLflow DB, Optuna study)."""
        if not self.is_local:
            raise StoreError(f"run store {self.url} is not local; {'/'.join(parts)} needs a local path")
        path = Path(self.path(*parts))
        self.makedirs(str(path.parent))  # a StoreError naming the folder, not a bare OSError
        return path

    def cache_dir(self, stage: str, key: str) -> str:
        return self.path("cache", stage, key)

    def work_dir(self, stage: str, key: str) -> str:
        """Local scratch for a stage (SQLite needs a local file): in the store, or in /tmp for remote stores."""
        if self.is_local:
            directory = self.path("work", f"{stage}-{key}")
        else:
            import tempfile

            store_id = hashlib.sha256(self.url.encode()).hexdigest()[:12]
            directory = str(Path(tempfile.gettempdir(), "retrainer-work", store_id, f"{stage}-{key}"))
        Path(directory).mkdir(parents=True, exist_ok=True)
        return directory

    def discard_work_dir(self, stage: str, key: str) -> bool:
        """Drop a stage's scratch (what a crashed run left to resume from); True if there was any.

        A forced stage recomputes: `--force` must not resume the work of the run it replaces."""
        directory = Path(self.work_dir(stage, key))
        had_work = any(directory.iterdir())
        shutil.rmtree(directory, ignore_errors=True)
        return had_work

    def run_dir(self, run_id: str) -> str:
        return self.path("runs", run_id)

    # ---------------------------------------------------------------- low-level io
    def makedirs(self, directory: str) -> None:
        try:
            self.fs.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create {directory} in the run store: {exc.strerror or exc}",
                hint="check the store path and its permissions",
            ) from exc

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a whole file. Locally through a temporary file and a rename, so that a reader (the
        serving poller, `retrainer runs`, a resumed run after a kill) sees the old file or the new one,
        never half of one; object stores replace an object atomically on their own."""
        self.makedirs(posixpath.dirname(path))
        try:
            if self.is_local:
                partial = Path(f"{path}.{os.getpid()}.partial")
                partial.write_bytes(data)
                partial.replace(path)
            else:
                with self.fs.open(path, "wb") as handle:
                    handle.write(data)
        except OSError as exc:
            raise StoreError(
                f"cannot write {path}: {exc.strerror or exc}", hint="check free disk space and permissions"
            ) from exc

    def read_bytes(self, path: str) -> bytes:
        try:
            with self.fs.open(path, "rb") as handle:
                data: bytes = handle.read()
                return data
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def write_json(self, path: str, value: Any) -> None:
        self.write_bytes(path, dumps(value).encode())

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def append_line(self, path: str, line: str) -> None:
        if self.is_local:
            local = Path(path)
            local.parent.mkdir(parents=True, exist_ok=True)
            with local.open("a") as handle:
                handle.write(line.rstrip("\n") + "\n")
        else:  # object stores cannot append: rewrite
            old = self.read_bytes(path) if self.exists(path) else b""
            self.write_bytes(path, old + line.rstrip("\n").encode() + b"\n")

    # ---------------------------------------------------------------- artifacts
    def save_artifact(self, directory: str, name: str, value: Any) -> ArtifactRef:
        """Encode one artifact by type: DataFrame -> Parquet, dict/list -> JSON, else joblib."""
        if isinstance(value, ParquetFile):
            return self._move_in(value, posixpath.join(directory, f"{name}.parquet"))
        if isinstance(value, dict | list):  # checked first: JSON artifacts must not cost a pandas import
            data, kind, suffix = dumps(value).encode(), "json", "json"
            digest = hashlib.sha256(data).hexdigest()[:16]
        elif type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas"):
            buffer = io.BytesIO()
            value.to_parquet(buffer, index=False)
            data, kind, suffix = buffer.getvalue(), "frame", "parquet"
            digest = frame_digest(value)
        else:
            import joblib

            buffer = io.BytesIO()
            joblib.dump(value, buffer)
            data, kind, suffix = buffer.getvalue(), "object", "joblib"
            digest = hashlib.sha256(data).hexdigest()[:16]
        path = posixpath.join(directory, f"{name}.{suffix}")
        self.write_bytes(path, data)
        return ArtifactRef(path=path, kind=kind, digest=digest)

    def _move_in(self, value: ParquetFile, path: str) -> ArtifactRef:
        self.makedirs(posixpath.dirname(path))
        try:
            if self.is_local:
                shutil.move(value.path, path)
            else:
                self.fs.put_file(value.path, path)
                Path(value.path).unlink()
        except OSError as exc:
            raise StoreError(
                f"cannot write {path}: {exc.strerror or exc}", hint="check free disk space and permissions"
            ) from exc
        return ArtifactRef(path=path, kind="frame", digest=value.digest)

    def load_frame(self, ref: ArtifactRef, columns: list[str] | None = None) -> Any:
        """A data artifact as a DataFrame, only `columns` when given; read from the file, not a copy of
        its bytes, and without keeping the Arrow table alive next to the frame (peak memory)."""
        import pandas as pd

        options = {"split_blocks": True, "self_destruct": True}
        try:
            if self.is_local:
                return pd.read_parquet(ref.path, columns=columns, to_pandas_kwargs=options)
            with self.fs.open(ref.path, "rb") as handle:
                return pd.read_parquet(handle, columns=columns, to_pandas_kwargs=options)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise StoreError(f"cannot read {ref.path}: {exc.strerror or exc}") from exc

    def load_artifact(self, ref: ArtifactRef) -> Any:
        if ref.kind == "frame":
            return self.load_frame(ref)
        data = self.read_bytes(ref.path)
        if ref.kind == "json":
            return json.loads(data)
        import joblib

        return joblib.load(io.BytesIO(data))

    # ---------------------------------------------------------------- cache manifests
    def read_manifest(self, stage: str, key: str) -> dict[str, Any] | None:
        path = posixpath.join(self.cache_dir(stage, key), MANIFEST)
        try:
            return self.read_json(path)  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def write_manifest(self, stage: str, key: str, manifest: dict[str, Any]) -> None:
        self.write_json(posixpath.join(self.cache_dir(stage, key), MANIFEST), manifest)

    # ---------------------------------------------------------------- decisions
    def decision_path(self, registry_name: str, model_key: str) -> str:
        return self.path("decisions", registry_name, f"{model_key}.json")

    def read_decision(self, registry_name: str, model_key: str) -> dict[str, Any] | None:
        """What was decided for this exact model before (written once promotion finished)."""
        try:
            return self.read_json(self.decision_path(registry_name, model_key))  # type: ignore[no-any-return]
        except FileNotFoundError:
            return None

    def write_decision(self, registry_name: str, model_key: str, record: dict[str, Any]) -> None:
        self.write_json(self.decision_path(registry_name, model_key), record)

    # ---------------------------------------------------------------- runs
    def write_run(self, run_id: str, record: dict[str, Any]) -> None:
        self.write_json(posixpath.join(self.run_dir(run_id), "run.json"), record)

    def read_run(self, run_id: str) -> dict[str, Any]:
        try:
            return self.read_json(posixpath.join(self.run_dir(run_id), "run.json"))  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise StoreError(f"no run {run_id!r} in {self.url}", hint="list runs with `retrainer runs`") from None

    def find_run(self, prefix: str) -> str:
        """The one run id starting with `prefix` (`retrainer runs` ids are long): a StoreError naming
        the candidates when several match, or when none does."""
        if self.exists(posixpath.join(self.run_dir(prefix), "run.json")):
            return prefix
        found = sorted(
            posixpath.basename(posixpath.dirname(str(path)))
            for path in self.fs.glob(posixpath.join(self.root, "runs", f"{glob_escape(prefix)}*", "run.json"))
        )
        if len(found) == 1:
            return found[0]
        if not found:
            raise StoreError(f"no run {prefix!r} in {self.url}", hint="list runs with `retrainer runs`")
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise StoreError(f"run id {prefix!r} is ambiguous in {self.url}: {shown}", hint="give more of the id")

    def iter_runs(self) -> Iterator[dict[str, Any]]:
        """Every run record, newest first."""
        pattern = posixpath.join(self.root, "runs", "*", "run.json")
        records = []
        for path in self.fs.glob(pattern):
            try:
                records.append(self.read_json(path))
            except (ValueError, FileNotFoundError):  # a run being written right now
                continue
        # run ids start with the second they began: runs within one second are ordered by start time
        yield from sorted(records, key=lambda r: (str(r.get("started_at", "")), r.get("run_id", "")), reverse=True)


def glob_escape(text: str) -> str:
    """`text` with glob's special characters matched literally."""
    import glob

    return glob.escape(text)


def frame_digest(frame: Any) -> str:
    """Content hash of a DataFrame: column names, dtypes and every value, row order included."""
    import pandas as pd

    hasher = hashlib.sha256()
    hasher.update(_dtypes_text(frame))
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()[:16]


def _dtypes_text(frame: Any) -> bytes:
    """The column names and dtypes, as hashed into a frame's digest (the same rows as text differ)."""
    return json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode()


def parquet_digest(path: str) -> str:
    """`frame_digest` of `pandas.read_parquet(path)`, computed one record batch at a time.

    The row hashes do not depend on the other rows, but a batch's dtypes may: an integer column with
    NULLs somewhere in the file is float64 in the whole frame, yet int64 in a batch without them.
    Batches are cast to the whole frame's dtypes first, so the digest is the same either way.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    has_nulls = _columns_with_nulls(parquet)
    widen = {
        field.name: ("float64" if pa.types.is_integer(field.type) else "object")
        for field in schema
        if field.name in has_nulls and (pa.types.is_integer(field.type) or pa.types.is_boolean(field.type))
    }
    hasher = hashlib.sha256()
    dtypes_hashed = False
    for group in range(parquet.metadata.num_row_groups):  # one at a time: iter_batches reads ahead
        frame = parquet.read_row_group(group).to_pandas()
        for column, dtype in widen.items():
            if str(frame[column].dtype) != dtype:
                frame[column] = frame[column].astype(dtype)
        if not dtypes_hashed:
            hasher.update(_dtypes_text(frame))
            dtypes_hashed = True
        hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    if not dtypes_hashed:  # no rows: the dtypes of the empty frame
        frame = schema.empty_table().to_pandas()
        hasher.update(_dtypes_text(frame))
    return hasher.hexdigest()[:16]


def _columns_with_nulls(parquet: Any) -> set[str]:
    """Columns holding a NULL anywhere in the file, from the row groups' statistics when written."""
    found: set[str] = set()
    metadata = parquet.metadata
    names = parquet.schema_arrow.names
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            column = row_group.column(index)
            name = column.path_in_schema
            stats = column.statistics
            if stats is None or not stats.has_null_count:
                nulls = parquet.read_row_group(group, columns=[name]).column(0).null_count
            else:
                nulls = stats.null_count
            if nulls and name in names:
                found.add(name)
    return found


def work_generation(directory: str) -> str:
    """A token born with a work directory and gone with it (`RunStore.discard_work_dir`).

    Things kept outside the directory but owned by its work (Optuna studies in a shared PostgreSQL
    storage) put it in their names, so discarding the directory also starts them afresh. Created
    once, by whichever process comes first; the others read it."""
    import secrets
    import time

    path = Path(directory) / "generation"
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        for _ in range(100):  # the creator writes right after creating
            token = path.read_text().strip()
            if token:
                return token
            time.sleep(0.01)
        raise StoreError(f"{path} is empty; remove it to start this stage's work afresh") from None
    token = secrets.token_hex(4)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token)
    return token
