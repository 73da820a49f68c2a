"""Request counts and latency per served version, rendered in the Prometheus text format."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

LATENCY_WINDOW = 10_000  # quantiles over the latest requests per version, in bounded memory


class ServingMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = {}
        self.rows: dict[tuple[str, int], int] = {}
        self.errors: dict[int, int] = {}
        self._latency: dict[tuple[str, int], deque[float]] = {}

    def observe(self, alias: str, version: int, rows: int, seconds: float) -> None:
        key = (alias, version)
        with self._lock:
            self.requests[key] = self.requests.get(key, 0) + 1
            self.rows[key] = self.rows.get(key, 0) + rows
            self._latency.setdefault(key, deque(maxlen=LATENCY_WINDOW)).append(seconds)

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def error(self, status: int) -> None:
        with self._lock:
            self.errors[status] = self.errors.get(status, 0) + 1

    def quantiles(self, alias: str, version: int) -> dict[str, float]:
        with self._lock:
            window = list(self._latency.get((alias, version), ()))
        if not window:
            return {}
        p50, p99 = np.quantile(window, [0.5, 0.99])
        return {"0.5": float(p50), "0.99": float(p99)}

    def render(self) -> str:
        lines = [
            "# HELP retrainer_requests_total Prediction requests answered, per alias and version.",
            "# TYPE retrainer_requests_total counter",
        ]
        with self._lock:
            requests, rows, errors = dict(self.requests), dict(self.rows), dict(self.errors)
        for (alias, version), count in sorted(requests.items()):
            lines.append(f'retrainer_requests_total{{alias="{alias}",version="{version}"}} {count}')
        lines += [
            "# HELP retrainer_rows_total Rows scored, per alias and version.",
            "# TYPE retrainer_rows_total counter",
        ]
        for (alias, version), count in sorted(rows.items()):
            lines.append(f'retrainer_rows_total{{alias="{alias}",version="{version}"}} {count}')
        lines += [
            "# HELP retrainer_request_latency_seconds Request latency over the latest requests.",
            "# TYPE retrainer_request_latency_seconds summary",
        ]
        for alias, version in sorted(requests):
            for quantile, value in self.quantiles(alias, version).items():
                labels = f'alias="{alias}",version="{version}",quantile="{quantile}"'
                lines.append(f"retrainer_request_latency_seconds{{{labels}}} {value:.6f}")
        lines += [
            "# HELP retrainer_errors_total Rejected or failed requests, per status.",
            "# TYPE retrainer_errors_total counter",
        ]
        for status, count in sorted(errors.items()):
            lines.append(f'retrainer_errors_total{{status="{status}"}} {count}')
        return "\n".join(lines) + "\n"
