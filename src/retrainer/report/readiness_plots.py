"""The readiness check's latency histogram: one-row and batch requests, their p95 and any bound."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrainer.report.figures import BAD, CHALLENGER, figure, png


def latency_histogram(samples: Mapping[str, list[float]], bounds: Mapping[str, Any]) -> bytes | None:
    """Milliseconds per request, one panel per kind of request timed (None when none was)."""
    import numpy as np

    kinds = [(kind, title) for kind, title in (("one_row", "one row"), ("batch", "batch")) if samples.get(kind)]
    if not kinds:
        return None
    drawn, axes = figure(4.5 * len(kinds), 3.2, columns=len(kinds))
    axes = list(axes) if len(kinds) > 1 else [axes]
    limits = {"one_row": bounds.get("max_latency_ms") or {}, "batch": bounds.get("max_batch_latency_ms") or {}}
    for ax, (kind, title) in zip(axes, kinds, strict=True):
        values = np.asarray(samples[kind], dtype=float)
        ax.hist(values, bins=min(40, max(5, len(values) // 5)), color=CHALLENGER)
        p95 = float(np.percentile(values, 95))
        ax.axvline(p95, color="black", linestyle="--", label=f"p95 {p95:.2f} ms")
        if limits[kind].get("p95"):
            ax.axvline(float(limits[kind]["p95"]), color=BAD, label=f"bound {float(limits[kind]['p95']):g} ms")
        ax.set_title(f"{title} requests ({len(values)})")
        ax.set_xlabel("milliseconds")
        ax.legend(fontsize=8)
    return png(drawn)
