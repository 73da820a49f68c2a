"""What a crash must never break, checked after every kill (tests/test_faults.py, the Airflow
scheduler test): every run record and cache manifest readable, every artifact a manifest names
present, and every registry alias on a version tagged validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def registry(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def assert_consistent(store: Path, tracking_uri: str, name: str) -> dict[str, Any]:
    """The invariants a crash must never break; returns the registry's aliases."""
    for record in store.glob("runs/*/run.json"):
        json.loads(record.read_text())
    for manifest_file in store.glob("cache/*/*/manifest.json"):
        manifest = json.loads(manifest_file.read_text())
        for artifact in manifest["artifacts"].values():
            assert Path(artifact["path"]).exists(), f"{manifest_file} names a missing artifact {artifact['path']}"
    client = registry(tracking_uri)
    aliases = dict(client.get_registered_model(name).aliases)
    aliases = {alias: str(version) for alias, version in aliases.items()}
    for alias, version in aliases.items():
        tags = client.get_model_version(name, version).tags
        assert tags.get("retrainer.validated") == "true", f"alias {alias} points at unvalidated v{version}"
    assert "champion" in aliases
    return aliases
