"""The sections around a run: notifications, the report, orchestration and serving."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from retrainer.metrics import METRICS
from retrainer.spec.common import _did_you_mean, _Section, parse_duration

NotifyEvent = Literal["promoted", "kept_champion", "registered", "unchanged", "rejected", "failed", "drift", "summary"]
DEFAULT_EVENTS: list[NotifyEvent] = [
    "promoted",
    "kept_champion",
    "registered",
    "rejected",
    "failed",
    "drift",
    "summary",
]


SECRET_KEYS = {"webhook_url", "password", "lock_url"}  # never echoed in a validation error


class SlackSpec(_Section):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): a JSON POST with `text`."""

    webhook_url: SecretStr = Field(description="Secret: write ${SLACK_WEBHOOK_URL}, never the URL itself.")
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), description="Events to send.")
    timeout: float = Field(10.0, gt=0, description="Seconds per HTTP attempt.")

    @model_validator(mode="after")
    def _http_url(self) -> SlackSpec:
        # the message never repeats the URL: it is a secret
        if not self.webhook_url.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("webhook_url must start with http:// or https:// (is the environment variable set?)")
        return self


class EmailSpec(_Section):
    """SMTP email, optionally upgraded with STARTTLS; the password comes from the environment."""

    host: str = Field(description="SMTP server host name.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 for STARTTLS, 25 for plain).")
    starttls: bool = Field(True, description="Upgrade the connection with STARTTLS before logging in.")
    ca_file: str | None = Field(None, description="CA bundle to verify the server (default: the system's).")
    username: str | None = Field(None, description="SMTP login, when the server asks for one.")
    password: SecretStr | None = Field(None, description="Secret: write ${SMTP_PASSWORD}.")
    sender: str = Field(description="The From address.")
    to: list[str] = Field(min_length=1, description="Recipients.")
    on: list[NotifyEvent] = Field(default_factory=lambda: list(DEFAULT_EVENTS), description="Events to send.")
    timeout: float = Field(10.0, gt=0, description="Seconds per SMTP attempt.")


class ReportSpec(_Section):
    """The HTML report written at the end of every run (also `retrainer report RUN_ID`)."""

    auto: bool = Field(True, description="Write runs/<id>/report.html when a run ends.")
    explain_rows: int = Field(500, ge=10, le=5000, description="Test rows explained with SHAP (bounded for speed).")


class NotifySpec(_Section):
    """Who hears about each run's outcome. A notifier that is down never fails the run."""

    console: bool = Field(True, description="Print the outcome line.")
    slack: SlackSpec | None = None
    email: EmailSpec | None = None
    retries: int = Field(3, ge=0, le=10, description="Extra attempts per message after a failure.")
    backoff: float = Field(1.0, ge=0, description="Seconds before the first retry; doubled after each.")


class OrchestrationSpec(_Section):
    """How an orchestrator (Airflow) schedules and retries the pipeline; `schedule` sits at the top level."""

    start_date: str = Field("2026-01-01", description="First logical date (ISO) of the schedule.")
    catchup: bool = Field(False, description="Run the intervals missed since start_date.")
    retries: int = Field(2, ge=0, description="Retries of a task that crashed (a rejection is never retried).")
    retry_delay: str = Field("5m", description="Wait between retries, e.g. 30s, 5m.")
    execution_timeout: str = Field("2h", description="A task running longer than this fails.")
    pool: str | None = Field(None, description="Airflow pool the tasks run in.")
    queue: str | None = Field(None, description="Executor queue (Celery) the tasks go to.")
    max_active_runs: int = Field(1, ge=1, description="DAG runs of this pipeline at once.")
    owner: str = Field("retrainer", description="Owner shown in Airflow.")
    tags: list[str] = Field(default_factory=list, description="DAG tags in Airflow.")

    @field_validator("retry_delay", "execution_timeout")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("start_date")
    @classmethod
    def _valid_date(cls, value: str) -> str:
        from datetime import datetime

        datetime.fromisoformat(value)
        return value


class PredictionLogSpec(_Section):
    """Where served predictions are logged (off the request path), for the online A/B comparison."""

    path: str | None = Field(None, description="Parquet directory; default <store>/predictions/<name>.")
    url: str | None = Field(None, description="PostgreSQL URL (instead of path), e.g. postgresql+psycopg://u@h/db.")
    table: str = Field("predictions", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Table when url is set.")
    flush_seconds: float = Field(1.0, gt=0, description="Write a batch at least this often.")

    @model_validator(mode="after")
    def _one_target(self) -> PredictionLogSpec:
        if self.path and self.url:
            raise ValueError("give 'path' (Parquet) or 'url' (PostgreSQL), not both")
        return self


class RedisSpec(_Section):
    """The online feature store: latest feature values per entity, with a TTL."""

    url: str = Field("redis://127.0.0.1:6379/0", description="Redis URL.")
    ttl: str = Field("1d", description="How long materialized values live, e.g. 12h, 1d.")
    prefix: str | None = Field(None, description="Key prefix; default retrainer:<pipeline name>.")

    @field_validator("ttl")
    @classmethod
    def _valid_ttl(cls, value: str) -> str:
        if parse_duration(value) < 1:
            raise ValueError("ttl must be at least 1s")
        return value


class CanarySpec(_Section):
    """When the online comparison may move aliases: `retrainer ab-report` applies it."""

    min_labelled: int = Field(200, ge=1, description="Labelled predictions each version needs before deciding.")
    metric: str | None = Field(None, description="Metric compared online; default the ranking metric.")
    max_regression: float = Field(0.0, ge=0, description="How much worse than the champion the challenger may be.")
    action: Literal["promote", "rollback", "report"] = Field(
        "rollback",
        description="promote: a passing challenger becomes champion, a failing one loses its alias; "
        "rollback: only a failing challenger loses its alias; report: decide, move nothing.",
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str | None) -> str | None:
        if value is not None and value not in METRICS:
            raise ValueError(f"unknown metric {value!r}{_did_you_mean(value, METRICS)}")
        return value


class ServingSpec(_Section):
    """`retrainer serve`: the champion, a challenger on a share of entities, and the prediction log."""

    challenger_share: float = Field(0.1, ge=0, le=1, description="Share of entities routed to @challenger.")
    entity_id: str | None = Field(None, description="Request field that routes a row; defaults to id_column.")
    poll_seconds: float = Field(5.0, gt=0, description="How often the server checks for alias moves.")
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    redis: RedisSpec | None = Field(None, description="Online features: requests may send only the entity id.")
    canary: CanarySpec | None = None
