"""The `readiness:` section: what a registered version must show in a fresh process before it may serve.

Loading it, scoring the test rows through the serving code and getting the evaluated answers back,
and finding every requirement it declares installed are always required. The figures (size, load
time, latency, memory, slowdown against the champion) are measured and reported on every run; a bound
is a gate only where the spec writes it.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from retrainer.spec.common import _Section

PERCENTILES = ("p50", "p95", "p99")


class LatencyBounds(_Section):
    """Milliseconds per request (one row, or a batch of `batch_rows`), at each percentile written."""

    p50: float | None = Field(None, gt=0, description="Median request, in milliseconds.")
    p95: float | None = Field(None, gt=0, description="95th percentile request, in milliseconds.")
    p99: float | None = Field(None, gt=0, description="99th percentile request, in milliseconds.")


class ReadinessSpec(_Section):
    """Load the registered version as `retrainer serve` will (a fresh process, by its `models:/` URI),
    score the test rows through the serving code, and measure it; a failure keeps the champion."""

    enabled: bool = Field(
        True,
        description="false: promote without loading the version back (then `retrainer serve` is the first to "
        "load it); for a development loop, not production.",
    )
    max_model_mb: float | None = Field(None, gt=0, description="Largest model directory on disk, in MB.")
    max_load_s: float | None = Field(None, gt=0, description="Longest load of the version in a fresh process, s.")
    max_latency_ms: LatencyBounds = Field(
        default_factory=LatencyBounds, description="Bounds on one-row requests' latency, e.g. {p95: 50}."
    )
    max_batch_latency_ms: LatencyBounds = Field(
        default_factory=LatencyBounds, description="Bounds on batch requests (`batch_rows` rows) latency."
    )
    max_memory_mb: float | None = Field(None, gt=0, description="Highest peak resident memory of the process, MB.")
    max_slowdown_vs_champion: float | None = Field(
        None, gt=0, description="Highest one-row p95 latency as a multiple of the champion's (e.g. 2.0)."
    )
    batch_rows: int = Field(100, ge=1, le=100_000, description="Rows per batch request.")
    requests: int = Field(200, ge=10, le=100_000, description="One-row requests timed.")
    batches: int = Field(20, ge=3, le=10_000, description="Batch requests timed.")
    check_rows: int = Field(5000, ge=1, description="Test rows scored and compared with the evaluated answers.")
    tolerance: float = Field(
        1e-6,
        gt=0,
        le=0.01,
        description="Relative difference allowed between a number evaluated and served (labels must be equal): "
        "float32 models (the MLP) answer a batch of 100 and the whole test set about 1e-7 apart.",
    )
    timeout: float = Field(600.0, gt=0, description="Seconds the fresh process may take; longer is a failure.")

    @field_validator("check_rows")
    @classmethod
    def _bounded(cls, value: int) -> int:
        if value > 1_000_000:
            raise ValueError("check_rows above 1,000,000 would send every row as a JSON request; 5000 is plenty")
        return value
