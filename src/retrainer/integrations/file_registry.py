"""A plain file registry for users without an MLflow server: one directory per version.

    <root>/<model>/v3/model.pkl        the fitted scikit-learn pipeline, pickled (load with joblib or pickle)
    <root>/<model>/v3/metadata.json    version, aliases, metrics, lineage tags, input columns, who/when
    <root>/<model>/latest              "v3": the last exported champion

A version directory is written under a temporary name and renamed into place, and `latest` is
replaced atomically, so a reader never sees half an export.
"""

from __future__ import annotations

import json
import platform
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import RegistryError

if TYPE_CHECKING:
    from retrainer.model_registry import ModelRegistry


def export_version(
    registry: ModelRegistry,
    name: str,
    version: int | None,
    root: str,
    *,
    alias: str = "champion",
    latest: bool | None = None,
) -> str:
    """Export `version` (default: the version under `alias`) to `root`; return its directory.

    `latest` moves the `latest` pointer; by default it moves when the exported version is the champion.
    """
    import joblib

    info = registry.version(name, version) if version is not None else registry.by_alias(name, alias)
    if info is None:
        raise RegistryError(f"{name} has no version with alias {alias!r} to export", hint="pass --version N")
    aliases = next((v.aliases for v in registry.versions(name) if v.version == info.version), ())
    model = registry.load_model(name, info.version)
    model_dir = Path(root) / _safe(name)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / f"v{info.version}"
    staging = Path(tempfile.mkdtemp(prefix=f".v{info.version}-", dir=model_dir))
    try:
        joblib.dump(model, staging / "model.pkl")
        columns = registry.input_columns(name, info.version)
        metadata: dict[str, Any] = {
            "name": name,
            "version": info.version,
            "aliases": list(aliases),
            "mlflow_run_id": info.run_id,
            "registry": registry.safe_uri,
            "metrics": json.loads(info.metrics_text or "{}"),
            "input_columns": columns,
            "tags": {k: v for k, v in info.tags.items() if k.startswith("retrainer.")},
            "exported_at": datetime.now(UTC).isoformat(),
            "python": platform.python_version(),
            "load_with": "joblib.load('model.pkl')",
        }
        (staging / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
        if target.exists():
            shutil.rmtree(target)
        staging.replace(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if latest if latest is not None else "champion" in aliases:
        pointer = model_dir / ".latest.tmp"
        pointer.write_text(f"v{info.version}\n")
        pointer.replace(model_dir / "latest")
    return str(target)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
