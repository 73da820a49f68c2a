"""CSV and Parquet files: read whole with pandas, or (Parquet) copied chunk by chunk into the run store.

The state of a file is the SHA-256 of its bytes (and the `as_of` it is read at, when it has a time
column). A row whose time is missing is not kept after an `as_of` cut: a file has no query to say
otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import SourceError, first_line
from retrainer.sources import as_of as cut

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import SourceSpec

_NOT_FOUND_HINT = "check source.path (relative paths are relative to the spec file)"


def read_file(path: str) -> pd.DataFrame:
    """A Parquet (`.parquet`, `.pq`) or CSV file as one DataFrame; SourceError when it cannot be read."""
    import pandas as pd

    try:
        if path.lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        frame = pd.read_csv(path)
        header = [str(name) for name in pd.read_csv(path, header=None, nrows=1, dtype=str).iloc[0]]
    except FileNotFoundError:
        raise SourceError(f"source file {path} not found", hint=_NOT_FOUND_HINT) from None
    except Exception as error:  # noqa: BLE001 - pyarrow and the csv parser raise many kinds
        raise SourceError(
            f"cannot read {path}: {first_line(error)}", hint="check the file is valid Parquet/CSV"
        ) from None
    refuse_repeated_columns(header, path)  # pandas renamed the second `tenure` to `tenure.1` without a word
    return frame


def refuse_repeated_columns(columns: list[str], where: str) -> None:
    """SourceError naming every column that appears more than once: which of two `tenure`s is the real
    one cannot be guessed, and the second silently became a feature of its own."""
    from collections import Counter

    repeated = {name: count for name, count in Counter(columns).items() if count > 1}
    if repeated:
        listed = ", ".join(f"'{name}' ({count} times)" for name, count in repeated.items())
        raise SourceError(
            f"{where}: column names repeat: {listed}",
            hint="rename or drop the copies (in SQL: select each column once, or alias it with AS)",
        )


class CsvSource:
    """A CSV file (or any file `read_file` reads): read whole."""

    def __init__(
        self, spec: SourceSpec, *, time_column: str | None, as_of: datetime | None, logger: logging.Logger
    ) -> None:
        assert spec.path is not None
        self.spec, self.path, self.time_column, self.as_of, self.logger = spec, spec.path, time_column, as_of, logger

    def describe(self) -> str:
        return self.path

    def lineage(self) -> dict[str, Any]:
        return {"kind": "file", "path": self.path}

    def check(self) -> str:
        path = Path(self.path)
        if not path.is_file():
            raise SourceError(f"{path} does not exist", hint="check source.path (relative to the spec)")
        if not os.access(path, os.R_OK):
            raise SourceError(f"{path} is not readable", hint=f"chmod +r {path}")
        return f"{path} ({path.stat().st_size:,} bytes)"

    def count(self) -> int:
        return len(read_file(self.path))

    def state(self) -> str:
        as_of = self.as_of.isoformat() if self.as_of and self.time_column else ""
        return f"file:{self._digest()}:{as_of}"

    def fingerprint(self) -> str:
        return self.state()

    def read(self) -> pd.DataFrame:
        frame, _ = cut.drop_after(read_file(self.path), self.time_column, self.as_of, untimed_after=True)
        return frame

    def stream(self, destination: Callable[[], str]) -> str | None:
        return None

    def _digest(self) -> str:
        hasher = hashlib.sha256()
        try:
            with open(self.path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    hasher.update(block)
        except FileNotFoundError:
            raise SourceError(f"source file {self.path} not found", hint=_NOT_FOUND_HINT) from None
        return hasher.hexdigest()[:16]


class ParquetSource(CsvSource):
    """A Parquet file: counted from its metadata, streamed one row group at a time."""

    def count(self) -> int:
        parquet = self._open()
        try:
            return int(parquet.metadata.num_rows)
        finally:
            parquet.close()

    def stream(self, destination: Callable[[], str]) -> str | None:
        """The file copied chunk by chunk (rows after `as_of` dropped); None for a file whose pandas
        index is stored as columns (the whole-frame reader drops that index)."""
        import json

        import pyarrow as pa
        import pyarrow.parquet as pq

        parquet = self._open()
        schema = parquet.schema_arrow
        pandas_meta = schema.pandas_metadata or {}
        if any(isinstance(index, str) for index in pandas_meta.get("index_columns", [])):
            parquet.close()
            return None
        if pandas_meta:  # the stored RangeIndex would not match the rows kept
            meta = dict(schema.metadata or {})
            meta[b"pandas"] = json.dumps({**pandas_meta, "index_columns": []}).encode()
            schema = schema.with_metadata(meta)
        chunk_rows = self.spec.chunk_rows
        keep = cut.batch_filter(self.time_column, self.as_of, untimed_after=True, dropped=[])
        out = destination()
        with pq.ParquetWriter(out, schema) as writer:
            for group in range(parquet.metadata.num_row_groups):  # one at a time: iter_batches reads ahead
                for batch in self._batches(parquet, group, chunk_rows):
                    batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                    writer.write_batch(keep(batch) if keep else batch, row_group_size=chunk_rows)
        parquet.close()
        return out

    def _batches(self, parquet: Any, group: int, chunk_rows: int) -> Iterator[Any]:
        """One row group's batches; a page that does not decode (a valid footer over damaged data: pyarrow's
        ArrowInvalid or a codec's OSError, neither naming the file) is a SourceError naming the file."""
        batches = parquet.iter_batches(batch_size=chunk_rows, row_groups=[group])
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 - pyarrow and its codecs raise many kinds
                parquet.close()
                raise SourceError(
                    f"cannot read {self.path}: row group {group} is damaged: {first_line(error)}",
                    hint="the footer is valid but the data pages are not: write the file again",
                ) from None
            yield batch

    def _open(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path)
        except FileNotFoundError:
            raise SourceError(f"source file {self.path} not found", hint=_NOT_FOUND_HINT) from None
        except Exception as error:  # noqa: BLE001 - pyarrow raises many kinds
            raise SourceError(
                f"cannot read {self.path}: {first_line(error)}", hint="check the file is valid Parquet"
            ) from None
