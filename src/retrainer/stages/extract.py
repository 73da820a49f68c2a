"""Extract: the spec's source (`retrainer.sources`) into the `data` artifact, with its lineage.

The source decides how: PostgreSQL (through COPY) and Parquet files stream `source.chunk_rows` rows
at a time into a Parquet file that the store moves in as the `data` artifact, so extract holds one
chunk, not the table; other sources are read whole into a DataFrame. Either way the data digest is
that of the frame later stages read, so it does not depend on the chunk size. The stage's cache key
carries the source's fingerprint (`Source.fingerprint`: how each kind is fingerprinted is in its module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrainer.pipeline import RunContext, Stage, StageOutput


def fingerprint(ctx: RunContext) -> str:
    """The extract stage's contribution to its cache key: the source's state and the bound parameters."""
    return ctx.source.fingerprint()


def extract(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    from retrainer.sources.files import refuse_repeated_columns
    from retrainer.store import ParquetFile, frame_digest, parquet_digest

    source = ctx.source
    streamed = source.stream(lambda: _chunk_file(ctx))
    if streamed is not None:
        import pyarrow.parquet as pq

        data: Any = ParquetFile(streamed, parquet_digest(streamed))
        rows, columns = pq.ParquetFile(streamed).metadata.num_rows, pq.read_schema(streamed).names
        digest = data.digest
    else:
        data = source.read()
        rows, columns, digest = len(data), list(map(str, data.columns)), frame_digest(data)
    refuse_repeated_columns(columns, source.describe())  # SQL keeps both `tenure`s of `SELECT *, tenure`
    ctx.logger.info("extracted %d rows x %d columns", rows, len(columns))
    lineage = {
        **source.lineage(),
        "source_state": source.state(),
        "rows": rows,
        "columns": columns,
        "data_digest": digest,
        "as_of": ctx.as_of,
    }
    return StageOutput(
        artifacts={"data": data, "source_info": lineage},
        metrics={"rows": float(rows), "columns": float(len(columns))},
        summary=f"{rows:,} rows x {len(columns)} columns",
    )


def _chunk_file(ctx: RunContext) -> str:
    """Where a chunked extract writes its Parquet before the store moves it in (local scratch)."""
    import posixpath

    return posixpath.join(ctx.work_dir(), "data.parquet")


STAGE = Stage(
    name="extract",
    func=extract,
    makes=("data", "source_info"),
    spec_sections=("source", "time_column"),
    code=("retrainer.sources",),  # the package: every source module
    fingerprint=fingerprint,
)
