"""The MLflow Model Registry, seen through the few operations retrainer needs.

Everything goes through an `MlflowClient` bound to an explicit tracking URI; the fluent API is used
only where MLflow offers nothing else (logging a model), inside `_active_uri`, which restores the
global URI after. Versions carry `retrainer.*` tags; `retrainer.validated=true` is the last tag
written, so a version whose registration was cut short is never treated as a real one.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import RegistryError
from retrainer.faults import kill_point
from retrainer.model_registry import TASK_TAG, THRESHOLD_TAG, VersionInfo

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from retrainer.spec import Spec
    from retrainer.store import RunStore

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
VALIDATED_TAG = "retrainer.validated"
MODEL_KEY_TAG = "retrainer.model_key"


SCHEMA_ROWS = 10_000  # rows MLflow infers a logged dataset's column types from


def default_tracking_uri(store: RunStore) -> str:
    return f"sqlite:///{store.local_path('mlflow.db')}"


class Registry:
    """One registered model name space on one MLflow tracking server or store (a `ModelRegistry`)."""

    def __init__(self, tracking_uri: str, artifact_root: str | None = None) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._client: MlflowClient | None = None

    @classmethod
    def for_spec(cls, spec: Spec, store: RunStore) -> Registry:
        if spec.tracking.uri:
            return cls(spec.tracking.uri)
        if not store.is_local:
            raise RegistryError(
                f"the run store {store.url} is not local, so it cannot hold the default SQLite MLflow store",
                hint="set tracking.uri (an MLflow server, or a database URL) in the spec",
            )
        return cls(default_tracking_uri(store), artifact_root=str(store.local_path("mlartifacts", ".keep").parent))

    def check(self) -> None:
        """Raise RegistryError, naming the file, when the local SQLite store is damaged: asked before any
        training, so a corrupt `mlflow.db` stops a run at its start, not at register."""
        from retrainer.integrations.sqlite_health import sqlite_damage, sqlite_fix
        from retrainer.urls import sqlite_file

        path = sqlite_file(self.tracking_uri)
        problem = sqlite_damage(Path(path)) if path else None
        if problem:
            raise RegistryError(
                f"the MLflow store {path} {problem}",
                hint=sqlite_fix(problem),
            )

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
            import logging

            from mlflow import MlflowClient

            logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines drown our progress
            # its store logs a failed statement with the whole traceback (90 lines) before raising what
            # `_errors` turns into one RegistryError line
            logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

    # ------------------------------------------------------------------ reading
    def version(self, name: str, version: int | str) -> VersionInfo:
        """One version; a missing one is an error that lists those that exist (not MLflow's server hint)."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"read {name} v{version}"):
            try:
                return _info(self.client.get_model_version(name, str(version)))
            except MlflowException as error:
                if error.error_code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                    raise
            raise self._no_such_version(name, version)

    def _no_such_version(self, name: str, version: int | str) -> RegistryError:
        existing = self.versions(name)
        if not existing:
            return RegistryError(
                f"{name} has no registered versions at {self.safe_uri}",
                hint="check the model name and --store / --tracking-uri; `retrainer models NAME` lists versions",
            )
        shown = ", ".join(f"v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else "") for v in existing)
        return RegistryError(f"{name} has no version {version}; it has {shown}", hint=f"retrainer models {name}")

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        from mlflow.exceptions import MlflowException

        try:
            return _info(self.client.get_model_version_by_alias(name, alias))
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise RegistryError(f"cannot read alias {alias} of {name} at {self.safe_uri}: {error.message}") from None

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of `name`, newest first (empty when the model was never registered)."""
        from mlflow.exceptions import MlflowException

        with self._errors(f"list versions of {name}"):
            found = self.client.search_model_versions(f"name = '{name}'", max_results=10_000)
            if not found:
                return []
            try:  # search results carry no aliases: read them from the registered model
                aliases = self.client.get_registered_model(name).aliases or {}
            except MlflowException:
                aliases = {}
        by_version: dict[int, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(int(version), []).append(alias)
        infos = (_info(v, tuple(sorted(by_version.get(int(v.version), [])))) for v in found)
        return sorted(infos, key=lambda v: v.version, reverse=True)

    def validated_version_with_key(self, name: str, model_key: str) -> VersionInfo | None:
        """The registered, fully validated version of exactly this model, if there is one."""
        for info in self.versions(name):
            if info.tags.get(MODEL_KEY_TAG) == model_key and info.tags.get(VALIDATED_TAG) == "true":
                return info
        return None

    def load_model(self, name: str, version: int | str) -> Any:
        import mlflow.sklearn

        with self._errors(f"load {name} v{version}"), self._active_uri():
            return mlflow.sklearn.load_model(f"models:/{name}/{version}")

    def input_columns(self, name: str, version: int | str) -> list[str] | None:
        """The columns the model's signature expects (None when it was logged without one)."""
        import mlflow.models

        with self._errors(f"read the signature of {name} v{version}"), self._active_uri():
            signature = mlflow.models.get_model_info(f"models:/{name}/{version}").signature
        return None if signature is None else [str(c) for c in signature.inputs.input_names()]

    def model_directory(self, name: str, version: int | str) -> Path:
        """The version's model files (MLmodel, the model, requirements.txt) as a local directory: where
        they are, for a local store; else a copy under a temporary directory."""
        import tempfile

        import mlflow.artifacts

        with self._errors(f"read the files of {name} v{version}"), self._active_uri():
            uri = self.client.get_model_version_download_uri(name, str(version))
            if uri.startswith("file://") or "://" not in uri:
                local = Path(uri.removeprefix("file://"))
                if local.is_dir():
                    return local
            target = tempfile.mkdtemp(prefix="retrainer-model-")
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=target))

    def run_json_artifact(self, run_id: str, path: str) -> Any | None:
        """A JSON artifact of an MLflow run (e.g. a version's `retrainer/reference_profile.json`), or None."""
        import tempfile

        from mlflow.exceptions import MlflowException

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per small JSON file
        with tempfile.TemporaryDirectory(prefix="retrainer-artifact-") as directory:
            try:
                local = self.client.download_artifacts(run_id, path, directory)
            except (MlflowException, OSError):
                return None
            return json.loads(Path(local).read_text())

    def run_params(self, run_id: str) -> dict[str, str]:
        """The params an MLflow run logged (a champion's, for a warm start)."""
        return dict(self.client.get_run(run_id).data.params)

    def input_schema(self, name: str, version: int | str) -> list[tuple[str, str]]:
        """(column, MLflow type) of the version's signature: what serving checks requests against."""
        from mlflow.models import get_model_info

        with self._errors(f"read the signature of {name} v{version}"), self._active_uri():
            signature = get_model_info(f"models:/{name}/{version}").signature
        if signature is None or signature.inputs is None:
            raise RegistryError(
                f"{name} v{version} was logged without an input signature; serving cannot check requests"
            )
        return [(str(column["name"]), str(column["type"])) for column in signature.inputs.to_dict()]

    def optional_inputs(self, name: str, version: int | str) -> set[str]:
        """The columns the version's signature lets a row leave out (they had missing values in training)."""
        from mlflow.models import get_model_info

        with self._errors(f"read the signature of {name} v{version}"), self._active_uri():
            signature = get_model_info(f"models:/{name}/{version}").signature
        columns = signature.inputs.to_dict() if signature is not None and signature.inputs is not None else []
        return {str(column["name"]) for column in columns if column.get("required") is False}

    # ------------------------------------------------------------------ writing
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
    ) -> VersionInfo:
        """Log an MLflow run with the model and its evidence, and register it as a new version.

        The model is logged with two flavors (`retrainer.pyfunc`): its signature is that of
        `training_rows` (the input columns of the rows it learnt from; else `input_example`), or the
        task's request (a forecaster: series_id, horizon, with an example request), its task and
        threshold (read from `tags`) are its metadata, so MLflow's own tools answer as `retrainer
        serve` does.

        `datasets` maps a context ("train", "test") to (frame, source, digest): logged with
        `mlflow.log_input`, so the version links to the exact rows it learned from and was tested on.
        """
        import mlflow
        import mlflow.data
        import skops.io
        from mlflow.models import Model

        from retrainer import pyfunc
        from retrainer.column_types import source_columns

        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
        # what the model predicts and its threshold, from the tags serving reads them from
        task_info = json.loads(tags[TASK_TAG]) if tags.get(TASK_TAG) else None
        metadata = pyfunc.model_metadata(task_info, float(tags[THRESHOLD_TAG]) if tags.get(THRESHOLD_TAG) else None)
        task, threshold = pyfunc.model_task(metadata)
        # the rows as the source gives them: integers long, columns with missing values optional; a
        # forecaster takes requests instead (series_id, horizon...), and its example is one
        columns = task.request_columns(model)
        if columns is None:
            columns = source_columns(input_example if training_rows is None else training_rows)
        else:
            input_example = task.request_example(model)
        answers = pyfunc.answer(model, task, threshold, [(c, kind) for c, kind, _ in columns], input_example)
        # with a tracking server MLflow prints "View run ... at" to stdout: keep stdout for `--json`
        with self._errors(f"register {name}"), self._active_uri(), contextlib.redirect_stdout(sys.stderr):
            experiment_id = self._experiment_id(experiment)
            with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
                mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
                mlflow.log_metrics(metrics)
                for context, (frame, source, digest) in (datasets or {}).items():
                    # MLflow resolves only file/http sources; a SQL source is recorded as a tag instead
                    # the same integer-column hint, for the dataset schema (inferred lazily, in log_input)
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
                        dataset = mlflow.data.from_pandas(frame, name=f"{experiment}-{context}", digest=digest)
                        if len(frame) > SCHEMA_ROWS:
                            # MLflow types a text column by checking each of its cells (300 s of the
                            # register stage at 1 M rows); its first rows give the same types.
                            # `schema` is a functools.cached_property: this is its cached value.
                            dataset.__dict__["schema"] = mlflow.data.from_pandas(frame.head(SCHEMA_ROWS)).schema
                        mlflow.log_input(dataset, context=context, tags={"retrainer.source": source})
                for artifact_path, local_dir in artifacts.items():
                    mlflow.log_artifacts(local_dir, artifact_path)
                # one model file, two flavors: sklearn (retrainer's scoring) and python_function
                # (retrainer.pyfunc: what `retrainer serve` answers, for MLflow's own tools)
                logged = Model.log(
                    artifact_path=None,
                    name="model",
                    flavor=pyfunc,
                    sk_model=model,
                    signature=pyfunc.signature(columns, input_example, answers),
                    input_example=input_example,
                    metadata=metadata,
                    pip_requirements=pyfunc.pip_requirements(trusted),
                    serialization_format="skops",
                    skops_trusted_types=trusted,
                )
            kill_point("register:logged")
            with contextlib.suppress(Exception):  # exists already
                self.client.create_registered_model(name, tags={"retrainer.pipeline": name})
            # the model id lets an MLflow server check a `models:/m-...` source (it refuses it without one)
            created = self.client.create_model_version(
                name, logged.model_uri, run_id=run.info.run_id, tags=tags, model_id=logged.model_id
            )
            self._wait_ready(name, created.version)
            kill_point("register:versioned")
            self.client.set_model_version_tag(name, created.version, VALIDATED_TAG, "true")
            return self.version(name, created.version)

    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        kill_point(f"alias:{alias}:before")
        with self._errors(f"set alias {alias} of {name} to v{version}"):
            self.client.set_registered_model_alias(name, alias, str(version))
        kill_point(f"alias:{alias}:after")

    def delete_alias(self, name: str, alias: str) -> None:
        with self._errors(f"delete alias {alias} of {name}"):
            self.client.delete_registered_model_alias(name, alias)

    def tag_version(self, name: str, version: int | str, tags: dict[str, str]) -> None:
        with self._errors(f"tag {name} v{version}"):
            for key, value in tags.items():
                self.client.set_model_version_tag(name, str(version), key, value)

    # ------------------------------------------------------------------ helpers
    @property
    def safe_uri(self) -> str:
        from retrainer.urls import safe_url

        return safe_url(self.tracking_uri) if "://" in self.tracking_uri else self.tracking_uri

    def _experiment_id(self, experiment: str) -> str:
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            return str(found.experiment_id)
        location = None
        if self.artifact_root:
            location = Path(self.artifact_root, experiment).as_uri()
        return str(self.client.create_experiment(experiment, artifact_location=location))

    def _wait_ready(self, name: str, version: str) -> None:
        import time

        for _ in range(600):
            status = self.client.get_model_version(name, version).status
            if status == "READY":
                return
            if status == "FAILED_REGISTRATION":
                raise RegistryError(f"MLflow failed to register {name} v{version}")
            time.sleep(0.1)
        raise RegistryError(f"{name} v{version} did not become READY within 60 s")

    @contextlib.contextmanager
    def _active_uri(self) -> Iterator[None]:
        import mlflow

        previous, previous_registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)
            mlflow.set_registry_uri(previous_registry)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        try:
            yield
        except RegistryError:
            raise
        except MlflowException as error:
            raise RegistryError(  # its first line: the rest is SQL and a link, not what the user must read
                f"cannot {action} at {self.safe_uri}: {_cause_line(error.message)}",
                hint="check tracking.uri and that the MLflow server is reachable",
            ) from None
        except OSError as error:
            raise RegistryError(
                f"cannot {action} at {self.safe_uri}: {error}", hint="check tracking.uri and disk space"
            ) from None


def _cause_line(message: str) -> str:
    """The line of an MLflow error that says what failed: SQLAlchemy puts a note on autoflush first and the
    statement and a link after the driver's own line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    noise = ("(raised as a result of", "[SQL:", "[parameters:", "(Background on this error")
    useful = [line for line in lines if not line.startswith(noise)]
    return (useful or lines or [message])[0]


def _info(version: ModelVersion, aliases: tuple[str, ...] | None = None) -> VersionInfo:
    return VersionInfo(
        version=int(version.version),
        run_id=version.run_id,
        aliases=aliases if aliases is not None else tuple(getattr(version, "aliases", ()) or ()),
        tags=dict(version.tags or {}),
        created_ms=int(version.creation_timestamp or 0),
    )
