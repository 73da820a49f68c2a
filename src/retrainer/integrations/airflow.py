"""Moved to `retrainer.exporters.airflow`; this name stays so DAG files exported before keep running.

A DAG file written by an earlier `retrainer airflow export` imports its task functions from here when
each task runs. They are looked up in the exporter on first use, with a DeprecationWarning asking to
re-export; the lookup is by name (importlib), so the integrations package does not depend on the
exporters, which build on the stages. Remove in 0.3.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_MOVED_TO = "retrainer.exporters.airflow"


def __getattr__(name: str) -> Any:
    warnings.warn(
        f"retrainer.integrations.airflow.{name} moved to {_MOVED_TO}: re-export this DAG with "
        "`retrainer airflow export` (the old path goes in retrainer 0.3)",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(_MOVED_TO), name)
