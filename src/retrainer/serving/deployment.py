"""The models being served, and the poller that follows alias moves without dropping a request.

A request reads `watcher.current` once: an immutable `Deployment` (champion, optional challenger).
The poller loads any newly aliased version *first*, then replaces that reference in one assignment,
so a request in flight finishes on the models it started with and the next one sees the new ones.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from retrainer.errors import RegistryError
from retrainer.integrations.mlflow_registry import CHALLENGER, CHAMPION
from retrainer.pyfunc import answer

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.tasks import Task

logger = logging.getLogger("retrainer.serving")


@dataclass(frozen=True)
class LoadedModel:
    """One served version with what it predicts and the threshold it was evaluated at (both from its tags)."""

    alias: str
    version: int
    run_id: str | None
    model: Any
    inputs: tuple[tuple[str, str], ...]  # (column, MLflow type) of its signature
    task: Task
    threshold: float

    def answer(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """The task's answer for each row of `frame`: the code of the version's `python_function`
        flavor too, so MLflow's tools (`mlflow models serve`, `mlflow.pyfunc`) answer the same."""
        return answer(self.model, self.task, self.threshold, self.inputs, frame)

    def respond(self, frame: pd.DataFrame, ids: list[str]) -> list[dict[str, Any]]:
        """What `/predict` answers for each row: its entity id, this alias and version, and `answer`'s fields."""
        return [
            {"entity_id": entity, "alias": self.alias, "version": self.version, **answered}
            for entity, answered in zip(ids, self.answer(frame), strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        """For /metadata: the version, its run and the threshold it decides at (tasks that have one)."""
        threshold = self.threshold if self.task.has_decision_threshold else None
        return {"version": self.version, "run_id": self.run_id, "threshold": threshold}


@dataclass(frozen=True)
class Deployment:
    champion: LoadedModel
    challenger: LoadedModel | None

    def arm(self, alias: str) -> LoadedModel:
        return self.challenger if alias == CHALLENGER and self.challenger is not None else self.champion


class ModelWatcher:
    """Holds the current Deployment of registered model `name` and refreshes it from its aliases.

    The champion found at start fixes the inputs (`schema`) and the kind of model (`task`): a version
    with other inputs or of another task is refused, with the error logged, and the models already
    loaded keep serving. `default_threshold` decides binary versions registered without one.
    """

    def __init__(
        self, registry: Registry, name: str, poll_seconds: float = 5.0, default_threshold: float = 0.5
    ) -> None:
        self.registry, self.name, self.poll_seconds = registry, name, poll_seconds
        self.default_threshold = default_threshold
        self.swaps = 0
        self.last_error: str | None = None
        self._cache: dict[int, LoadedModel] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        champion = registry.by_alias(name, CHAMPION)
        if champion is None:
            raise RegistryError(
                f"{name} has no '{CHAMPION}' alias at {registry.safe_uri}: nothing to serve",
                hint=f"run the pipeline first, or `retrainer promote {name} VERSION`",
            )
        self.schema = registry.input_schema(name, champion.version)
        self.optional = registry.optional_inputs(name, champion.version)  # a row may leave these out, as in MLflow
        self.task = champion.task
        self.current = Deployment(self._load(CHAMPION, champion.version), None)
        self.refresh()

    def refresh(self) -> bool:
        """Follow the aliases once; True when the deployment changed. Errors keep the old models."""
        try:
            aliases = self._aliases()
            current = self.current
            wanted = (aliases.get(CHAMPION, current.champion.version), aliases.get(CHALLENGER))
            have = (current.champion.version, current.challenger.version if current.challenger else None)
            if wanted == have:
                return False
            new = Deployment(
                self._load(CHAMPION, wanted[0]),
                None if wanted[1] is None else self._load(CHALLENGER, wanted[1]),
            )
        except Exception as error:  # noqa: BLE001 - a registry hiccup must not stop serving
            self.last_error = f"{type(error).__name__}: {error}"
            logger.error("%s: alias refresh failed, still serving %s: %s", self.name, self.describe(), error)
            return False
        self.current = new  # the swap: one reference assignment, atomic for readers
        self.swaps += 1
        self.last_error = None
        logger.info("%s: now serving %s", self.name, self.describe())
        return True

    def _aliases(self) -> dict[str, int]:
        """Every alias of the model in one registry call (the poller runs often; keep it cheap)."""
        model = self.registry.client.get_registered_model(self.name)
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def describe(self) -> str:
        current = self.current
        text = f"champion v{current.champion.version}"
        return text + (f", challenger v{current.challenger.version}" if current.challenger else "")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def _load(self, alias: str, version: int) -> LoadedModel:
        cached = self._cache.get(version)
        if cached is None:
            inputs = self.registry.input_schema(self.name, version)
            columns = [name for name, _ in inputs]
            expected = [name for name, _ in self.schema]
            if sorted(columns) != sorted(expected):
                raise RegistryError(
                    f"{self.name} v{version} takes columns {columns}, the served schema has {expected}",
                    hint="restart `retrainer serve` to serve a model with different inputs",
                )
            info = self.registry.version(self.name, version)
            task = info.task
            if task.name != self.task.name:  # one /predict answers one shape, the log and ab-report read one
                raise RegistryError(
                    f"{self.name} v{version} is a {task.name} model, the served one a {self.task.name} model",
                    hint="restart `retrainer serve` to serve a model of another task",
                )
            cached = load_version(self.registry, self.name, version, alias, self.default_threshold, inputs)
            self._cache = {**{v: m for v, m in self._cache.items() if v in self._live()}, version: cached}
        return replace(cached, alias=alias)

    def _live(self) -> set[int]:
        current = self.current if hasattr(self, "current") else None
        if current is None:
            return set()
        return {current.champion.version} | ({current.challenger.version} if current.challenger else set())


def load_version(
    registry: Registry,
    name: str,
    version: int,
    alias: str,
    default_threshold: float = 0.5,
    inputs: list[tuple[str, str]] | None = None,
) -> LoadedModel:
    """One registered version loaded as `retrainer serve` loads it: its model by its `models:/` URI, its
    signature, task and threshold from the registry (the readiness check loads a candidate this way too)."""
    inputs = registry.input_schema(name, version) if inputs is None else inputs
    info = registry.version(name, version)
    model = registry.load_model(name, version)
    threshold = info.decision_threshold(default_threshold)
    return LoadedModel(alias, version, info.run_id, model, tuple(inputs), info.task, threshold)
