"""A user's estimator by its `package.module:ClassOrFactory` path, built with the run's seed and threads.

A leaf of `models/`: `custom.py` (the catalogue entry) and `anomaly.py` (a user's own detector inside
`AnomalyDetector`, rebuilt by path for each seed copy) both build through it.
"""

from __future__ import annotations

import difflib
import functools
import importlib
from typing import Any


@functools.lru_cache(maxsize=64)
def load_object(path: str) -> Any:
    """The class or factory `path` names (`package.module:attribute`), imported once per process."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"estimator {path!r} must be 'package.module:ClassOrFactory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        missing = getattr(error, "name", None) or module_name
        raise ValueError(
            f"cannot import {path!r}: no module named {missing!r} "
            "(install its package where retrainer runs, or put it on PYTHONPATH)"
        ) from None
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            close = difflib.get_close_matches(part, [n for n in dir(found) if not n.startswith("_")], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"cannot import {path!r}: {module_name} has no attribute {part!r}{hint}")
        found = getattr(found, part)
    if not callable(found):
        raise ValueError(f"estimator {path!r} is not a class or a factory function")
    return found


def build_imported(path: str, given: dict[str, Any], seed: int, n_jobs: int = 1) -> Any:
    """The estimator at `path` built with `given`, plus the run's seed and threads where it takes them
    and `given` does not fix them."""
    estimator = load_object(path)(**given)
    own = estimator.get_params() if hasattr(estimator, "get_params") else {}
    # threads only when asked for: some estimators warn that n_jobs is deprecated (LogisticRegression)
    offered = (("random_state", seed), *((("n_jobs", n_jobs),) if n_jobs != 1 else ()))
    extra = {k: v for k, v in offered if k in own and k not in given}
    return estimator.set_params(**extra) if extra else estimator
