"""retrainer: retrain models on fresh data on a schedule; replace production only when proven better.

import retrainer
spec = retrainer.load_spec("pipeline.yaml", env="staging")
result = retrainer.run(spec, as_of="2026-11-01")
print(result.outcome, result.reason, result.model_version)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from retrainer._version import __version__

# LightGBM and XGBoost use OpenMP; on small machines spinning worker threads slow fits ~30x.
# It must be set before the OpenMP runtime loads, so it is set at import, and only as a default.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# spec.py must not import the tasks (they import it): the tasks add their load-time check of a spec
# to `spec_checks.SPEC_CHECKS` when imported, and every import of retrainer.spec runs this first.
import retrainer.tasks  # noqa: F401

if TYPE_CHECKING:
    from retrainer.errors import RetrainerError
    from retrainer.executor import RunResult, run
    from retrainer.spec import Spec, load_spec, spec_from_dict

__all__ = ["RetrainerError", "RunResult", "Spec", "__version__", "load_spec", "run", "spec_from_dict"]

_LAZY = {
    "RetrainerError": "retrainer.errors",
    "RunResult": "retrainer.executor",
    "run": "retrainer.executor",
    "Spec": "retrainer.spec",
    "load_spec": "retrainer.spec",
    "spec_from_dict": "retrainer.spec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrainer' has no attribute {name!r}")
