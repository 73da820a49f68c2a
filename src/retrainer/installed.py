"""Which installed distribution provides a top-level module, without reading every package's file list.

`importlib.metadata.packages_distributions()` reads the RECORD of every installed distribution:
about 2.3 s in an environment with Airflow and MLflow, paid by every registration (the model's pinned
requirements) and by every custom candidate. Most modules are provided by the distribution of their
own name (xgboost, lightgbm, torch, statsforecast), and a few by a known other name; the full scan
runs only for an installed module that is neither, once per process. A leaf: it imports nothing of retrainer.
"""

from __future__ import annotations

import functools
import importlib.metadata

# modules whose distribution has another name
KNOWN = {"sklearn": "scikit-learn", "yaml": "PyYAML", "dateutil": "python-dateutil", "skimage": "scikit-image"}


def providers(module: str) -> list[str]:
    """The installed distributions providing the top-level module of `module` (`[]` when none is)."""
    top = module.split(".")[0]
    name = KNOWN.get(top, top)
    try:
        return [importlib.metadata.distribution(name).metadata["Name"] or name]
    except importlib.metadata.PackageNotFoundError:
        pass
    if not _installed(top):  # a module on PYTHONPATH (your own estimator's, say): no distribution has it
        return []
    return _scanned().get(top, [])


def _installed(top: str) -> bool:
    """Whether the module lives where installed packages do (site-packages), so a distribution may hold it."""
    import importlib.util

    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    places = [found.origin or "", *(found.submodule_search_locations or [])] if found is not None else []
    return any("site-packages" in place or "dist-packages" in place for place in places)


@functools.cache
def _scanned() -> dict[str, list[str]]:
    """Top-level module -> the distributions providing it, from every distribution's files (slow: once)."""
    return dict(importlib.metadata.packages_distributions())
