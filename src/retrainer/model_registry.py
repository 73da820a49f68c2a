"""What the pipeline asks of a model registry: the `ModelRegistry` protocol and the versions it returns.

The core names the registry by this protocol only; `integrations/mlflow_registry.py` implements it
(`Registry`), and whoever builds a `RunContext` (the executor, an Airflow task) says how to open one
(`RunContext.open_registry`), so the contract module never reaches an integration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from retrainer.tasks import Task

TASK_TAG = "retrainer.task"  # json of `Task.info()`: what the version predicts
THRESHOLD_TAG = "retrainer.decision_threshold"  # binary versions: the threshold chosen at evaluation


@dataclass(frozen=True)
class VersionInfo:
    version: int
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created_ms: int

    @property
    def metrics_text(self) -> str:
        return self.tags.get("retrainer.metrics", "")

    @property
    def task(self) -> Task:
        """What the version predicts, from its task tag (versions registered before tasks existed: binary)."""
        import json

        from retrainer.tasks import from_info

        raw = self.tags.get(TASK_TAG)
        return from_info(json.loads(raw) if raw else None)

    def decision_threshold(self, default: float) -> float:
        """The threshold the version was evaluated at; `default` (the spec's) where none was stored."""
        try:
            return float(self.tags[THRESHOLD_TAG])
        except (KeyError, ValueError):
            return default


class ModelRegistry(Protocol):
    """The registry operations the stages, promotion and the file export use (`ctx.registry`)."""

    tracking_uri: str

    @property
    def safe_uri(self) -> str: ...

    def version(self, name: str, version: int | str) -> VersionInfo: ...
    def by_alias(self, name: str, alias: str) -> VersionInfo | None: ...
    def versions(self, name: str) -> list[VersionInfo]: ...
    def validated_version_with_key(self, name: str, model_key: str) -> VersionInfo | None: ...
    def load_model(self, name: str, version: int | str) -> Any: ...
    def input_columns(self, name: str, version: int | str) -> list[str] | None: ...
    def run_json_artifact(self, run_id: str, path: str) -> Any | None: ...
    def run_params(self, run_id: str) -> dict[str, str]: ...
    def log_and_register(
        self,
        name: str,
        *,
        experiment: str,
        model: Any,
        input_example: Any,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str],
        artifacts: dict[str, str],
        datasets: dict[str, tuple[Any, str, str]] | None = None,
        training_rows: Any = None,
    ) -> VersionInfo: ...
    def set_alias(self, name: str, alias: str, version: int | str) -> None: ...
    def delete_alias(self, name: str, alias: str) -> None: ...
    def tag_version(self, name: str, version: int | str, tags: dict[str, str]) -> None: ...
    def check(self) -> None:
        """Raise RegistryError when the store is unusable (damaged); cheap, asked before a run trains."""
