"""The examples' own data loaders (examples/<name>/setup_data.py), for the benchmark scripts.

Each example's loader is a file of the same name, so each is imported under its own module name.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def example_setup(name: str) -> ModuleType:
    """examples/<name>/setup_data.py, imported as `<name>_setup`."""
    spec = importlib.util.spec_from_file_location(f"{name}_setup", ROOT / "examples" / name / "setup_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
