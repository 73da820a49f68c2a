"""Every error retrainer raises on purpose, and the exit code the CLI gives each.

    RetrainerError                  base; exit 1 if raised bare
    ├── PipelineError               the stages' graph is malformed (a bug)  exit 1
    ├── SpecError                   the pipeline spec is invalid            exit 3
    ├── SourceError                 the data source cannot be read          exit 4
    │   └── SourceUnavailable       the connection failed or was lost       exit 4 (retried per spec)
    ├── DataValidationError         the data failed a validation gate       exit 5
    │   ├── DriftBlocked            drift found, and drift.policy is block  exit 5
    │   └── LeakageFound            a feature leaks the target              exit 5
    ├── GateFailed                  the model failed an evaluation gate     exit 6
    │   └── NotReady                the registered version failed readiness exit 13
    ├── RegistryError               the model registry refused or failed    exit 7
    ├── StoreError                  the run store cannot be read or written exit 8
    ├── StageError                  a stage failed for another reason       exit 9
    ├── PipelineBusy                another run of the pipeline holds it    exit 10
    ├── StoreNotFound               no run store where a command looked     exit 11
    ├── PortUnavailable             `serve` cannot bind its address         exit 12
    └── ForecastRefused             a forecast request the model cannot answer (HTTP 422/404, a ValueError)

`DataValidationError` and `GateFailed` (and `NotReady`) are *rejections*, not crashes: the run ends with
outcome "rejected" and production is left as it was.
"""

from __future__ import annotations

from retrainer.urls import safe_url


class RetrainerError(Exception):
    """Root of retrainer's errors.

    `hint` says how to fix this one; `fix` (shown in the docs' troubleshooting) how to fix any of its kind.
    """

    exit_code = 1
    fix = "a bug: run again with `--debug` for the traceback and report it"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # keep `hint` and `failures` when errors cross process boundaries (Airflow, workers) or are copied
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[RetrainerError], message: str, state: dict[str, object]) -> RetrainerError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class PipelineError(RetrainerError, ValueError):
    """The pipeline's graph is malformed: a stage name used twice, an artifact made twice, or a need
    no earlier stage makes. Raised when the `Pipeline` is built; a `ValueError` too, as it was."""

    fix = "the message names each stage and artifact at fault; fix how the stages are wired"


class SpecError(RetrainerError):
    """The spec file is missing, malformed or has an invalid value."""

    exit_code = 3
    fix = "the message names the file and key path; `retrainer validate SPEC` lists every error at once"


class SourceError(RetrainerError):
    """The data source is unreachable, the query failed or the file is unreadable."""

    exit_code = 4
    fix = "check the URL, credentials, table or query, or the file path; `retrainer doctor SPEC` tries it"


class SourceUnavailable(SourceError):
    """The database could not be reached or dropped the connection: worth another try (`source.retries`)."""


def source_unreachable(url: str, error: BaseException, kind: type[SourceError] = SourceUnavailable) -> SourceError:
    """The one error for a source that could not be read (connection refused, lost, or the statement
    failed at the server): `SourceUnavailable` is retried per `source.retries`, a plain SourceError not."""
    return kind(
        f"cannot read from {safe_url(url)}: {first_line(error)}",
        hint="check that the database is running and the URL, user and password are right",
    )


def source_query_failed(url: str, error: BaseException) -> SourceError:
    """The one error for a query the database refused (bad SQL, missing table): never retried."""
    return SourceError(f"query failed on {safe_url(url)}: {first_line(error)}", hint="check the query and table names")


def first_line(error: BaseException) -> str:
    """The first line of an error's text (drivers add the statement and context below it)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class RejectedError(RetrainerError):
    """A gate said no: the run ends "rejected", nothing is registered or promoted.

    `failures` lists every failing check, so the user sees all of them at once.
    """

    def __init__(self, message: str, *, failures: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.failures = failures or [message]


class DataValidationError(RejectedError):
    """The extracted data failed one or more validation checks."""

    exit_code = 5
    fix = "every failing check is listed: fix the data, or relax `validation` if the data is right"


class DriftBlocked(DataValidationError):
    """The batch drifted from the champion's training data and the spec's drift policy is `block`.

    `report` is the drift artifact, so the run summary can name the drifted features.
    """

    def __init__(
        self,
        message: str,
        *,
        failures: list[str] | None = None,
        hint: str | None = None,
        report: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, failures=failures, hint=hint)
        self.report = report or {}

    @property
    def drifted_features(self) -> list[str]:
        names = self.report.get("drifted_features") or []
        return [str(name) for name in names] if isinstance(names, list) else []


class LeakageFound(DataValidationError):
    """A feature predicts the target almost perfectly on its own, or is timestamped after the label."""


class GateFailed(RejectedError):
    """The trained model missed a metric threshold."""

    exit_code = 6
    fix = "tune longer (`models.n_trials`, more candidates), add data, or revisit `evaluation.thresholds`"


class NotReady(GateFailed):
    """The registered version failed its readiness check: it does not load, answer as evaluated or
    install in a fresh process, or it is over a bound of `readiness` (size, load time, latency, memory)."""

    exit_code = 13
    fix = "each failing check is listed: install what the model needs, fix its saving, or revisit `readiness`"


class RegistryError(RetrainerError):
    """The MLflow registry could not be reached or refused an operation."""

    exit_code = 7
    fix = "check `tracking.uri` and that the MLflow server or database answers (`retrainer doctor SPEC`)"


class StoreError(RetrainerError):
    """The run store could not be read or written."""

    exit_code = 8
    fix = "check the `store` path or URL, its permissions and free disk (`retrainer doctor SPEC`)"


class StageError(RetrainerError):
    """A stage failed for a reason that is none of the above."""

    exit_code = 9
    fix = "the message names the stage; its log is in `<store>/runs/<run_id>/logs/<stage>.log`"


class PipelineBusy(RetrainerError):
    """Another run of the same pipeline holds the store's run lock, and this run was told not to wait."""

    exit_code = 10
    fix = "wait for the other run (leave out --no-wait), or look at it with `retrainer runs`"


class StoreNotFound(StoreError):
    """A command that reads a store found none: not in --store, RETRAINER_STORE, nor the folders up
    from here. Reading never creates a store, so a typo cannot show an empty registry."""

    exit_code = 11
    fix = "run it where the pipeline's `.retrainer/` is (or below), or pass --store / set RETRAINER_STORE"


class PortUnavailable(RetrainerError):
    """`retrainer serve` could not bind its host and port (in use, or not allowed)."""

    exit_code = 12
    fix = "pick another --port, or stop what listens there (`ss -ltnp` shows it)"


class ForecastRefused(RetrainerError, ValueError):
    """A forecaster was asked what it cannot answer: an unknown series, a horizon past its own, missing
    future values of an exogenous column. `POST /forecast` answers `status` (404: unknown series, else
    422) with the message; the `python_function` flavor raises it (a `ValueError`, as MLflow expects)."""

    fix = "the message says what the request lacks; a forecaster answers its own series up to its horizon"

    def __init__(self, message: str, *, status: int = 422, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status

    @property
    def detail(self) -> str:
        """What `POST /forecast` answers beside the status."""
        return self.message


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        RetrainerError,
        SpecError,
        SourceError,
        DataValidationError,
        GateFailed,
        NotReady,
        RegistryError,
        StoreError,
        StageError,
        PipelineBusy,
        StoreNotFound,
        PortUnavailable,
    )
}
