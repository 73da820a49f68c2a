"""Notifications against a real HTTP server and a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import retrainer
from notify_servers import free_port, self_signed_certificate, smtp_server, webhook_server
from retrainer.errors import SpecError
from retrainer.integrations.notifiers import Message, deliver, redact
from retrainer.pipeline import RunContext
from retrainer.spec import NotifySpec, spec_from_dict
from retrainer.stages.notify import notify
from retrainer.store import RunStore

PASSWORD = "pa55-w0rd-never-logged"


def summary(**changes: Any) -> dict[str, Any]:
    base = {
        "run_id": "20261125-030000-abc123",
        "pipeline": "telco-test",
        "outcome": "promoted",
        "reason": "roc_auc 0.8450 vs champion 0.8400 (+0.0050) beats the required improvement (+0.0000)",
        "model_version": 3,
        "champion_version": 2,
        "metrics": {"test_roc_auc": 0.845, "test_f1": 0.6123, "rows": 7043.0},
        "as_of": "2026-11-01T00:00:00",
        "store": "/tmp/store",
        "drifted_features": ["monthly_charges", "tenure"],
    }
    return {**base, **changes}


def context(tmp_path: Path, notify_section: dict[str, Any]) -> RunContext:
    spec = spec_from_dict(
        {
            "name": "telco-test",
            "source": {"path": str(tmp_path / "x.csv")},
            "target": "churn",
            "store": str(tmp_path / "store"),
            "notify": notify_section,
        }
    )
    return RunContext(spec=spec, store=RunStore(spec.store), run_id="r1")


def test_the_notify_stage_sends_each_event_to_the_channels_that_want_it(tmp_path: Path) -> None:
    with webhook_server() as hook, smtp_server() as mailbox:
        ctx = context(
            tmp_path,
            {
                "slack": {"webhook_url": hook.url},
                "email": {
                    "host": "127.0.0.1",
                    "port": mailbox.port,
                    "starttls": False,
                    "sender": "retrainer@example.org",
                    "to": ["ml-team@example.org", "oncall@example.org"],
                    "on": ["promoted", "failed"],  # no drift mail
                },
            },
        )
        notify(ctx, {"summary": summary()})

    texts = [post["json"]["text"] for post in hook.posts]
    assert len(texts) == 2 and all(post["type"] == "application/json" for post in hook.posts)
    promoted, drift = texts
    assert "telco-test: promoted v3" in promoted
    assert "beats the required improvement" in promoted
    assert "champion before this run: v2" in promoted
    assert "roc_auc 0.8450, f1 0.6123" in promoted
    assert "20261125-030000-abc123" in promoted and "2026-11-01" in promoted
    assert "drift in 2 features" in drift and "monthly_charges, tenure" in drift
    [mail] = mailbox.messages
    assert mail["Subject"] == "[retrainer] telco-test: promoted v3 (replacing v2)"
    assert mail["To"] == "ml-team@example.org, oncall@example.org"
    assert "roc_auc 0.8450" in mail.get_payload()
    line = json.loads((tmp_path / "store" / "runs.jsonl").read_text())
    assert line["notified"] == {"slack:promoted": "sent", "email:promoted": "sent", "slack:drift": "sent"}


def test_rejected_and_failed_runs_are_announced_without_drift_when_none_drifted(tmp_path: Path) -> None:
    with webhook_server() as hook:
        ctx = context(tmp_path, {"slack": {"webhook_url": hook.url, "on": ["rejected", "failed", "drift"]}})
        notify(ctx, {"summary": summary(outcome="rejected", reason="3 validation checks failed", model_version=None)})
        notify(ctx, {"summary": summary(outcome="interrupted", reason="interrupted by the user", drifted_features=[])})
        notify(ctx, {"summary": summary(outcome="kept_champion", drifted_features=None)})  # not in `on`
    texts = [post["json"]["text"] for post in hook.posts]
    assert len(texts) == 3  # rejected, its drift, interrupted (as "failed"); nothing for kept_champion
    assert texts[0].startswith("*[retrainer] telco-test: rejected*") and "3 validation checks failed" in texts[0]
    assert "drift in 2 features" in texts[1]
    assert "interrupted by the user" in texts[2]


def test_a_webhook_that_fails_is_retried_with_backoff(tmp_path: Path) -> None:
    with webhook_server(fail_first=2) as hook:
        notify_spec = NotifySpec(slack={"webhook_url": hook.url}, retries=2, backoff=0.01)
        report = deliver(notify_spec, Message("promoted", "subject", "body"))
    assert report == {"slack": "sent"}
    assert hook.attempts == 3 and len(hook.posts) == 1


def test_a_notifier_that_is_down_is_logged_redacted_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    secret_url = f"http://127.0.0.1:{free_port()}/hooks/{PASSWORD}"  # nothing listens there
    notify_spec = NotifySpec(
        slack={"webhook_url": secret_url},
        email={
            "host": "127.0.0.1",
            "port": free_port(),
            "sender": "a@example.org",
            "to": ["b@example.org"],
            "username": "bot",
            "password": PASSWORD,
        },
        retries=1,
        backoff=0.01,
    )
    with caplog.at_level(logging.WARNING, logger="retrainer"):
        report = deliver(notify_spec, Message("failed", "subject", "body"))
    assert report["slack"].startswith("failed: ConnectionError: the webhook is unreachable")
    assert report["email"].startswith("failed: ConnectionRefusedError")
    assert "could not notify slack of failed" in caplog.text and "could not notify email" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in json.dumps(report)
    assert redact(f"POST {secret_url}", [secret_url]) == "POST ***"


def test_email_over_starttls_with_login(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    email = {
        "host": "127.0.0.1",
        "sender": "retrainer@example.org",
        "to": ["ml-team@example.org"],
        "username": "retrainer",
        "ca_file": str(cert),
        "starttls": True,
    }
    with smtp_server(tls_context=server_tls, password=PASSWORD) as mailbox:
        good = NotifySpec(email={**email, "port": mailbox.port, "password": PASSWORD}, retries=0)
        assert deliver(good, Message("promoted", "TLS subject", "over TLS")) == {"email": "sent"}
        wrong = NotifySpec(email={**email, "port": mailbox.port, "password": "wrong-" + PASSWORD}, retries=3)
        refused = deliver(wrong, Message("promoted", "subject", "body"))["email"]
        plain = NotifySpec(email={**email, "port": mailbox.port, "starttls": False}, retries=0)
        not_upgraded = deliver(plain, Message("promoted", "subject", "body"))["email"]
    assert mailbox.logins == [("retrainer", PASSWORD)]
    assert [m["Subject"] for m in mailbox.messages] == ["TLS subject"]
    assert refused.startswith("failed: PermanentFailure: the SMTP server refused the login") and PASSWORD not in refused
    assert not_upgraded.startswith("failed:")  # the server requires STARTTLS


def test_a_secret_never_appears_in_a_spec_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "hooks.example.org/" + PASSWORD)  # scheme missing
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "source": {"path": "x.csv"},
                "target": "y",
                "notify": {"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}, "email": {"host": "h", "password": 7}},
            }
        )
    )
    with pytest.raises(SpecError) as info:
        retrainer.load_spec(path)
    assert "notify.slack: webhook_url must start with http://" in info.value.message
    assert "notify.email.password" in info.value.message and "notify.email.sender" in info.value.message
    assert PASSWORD not in info.value.message and "(got 7)" not in info.value.message


@pytest.mark.slow
def test_a_run_notifies_and_a_dead_notifier_never_fails_it_nor_leaks_a_secret(
    telco: pd.DataFrame,
    pg_table: Callable[[pd.DataFrame], str],
    write_spec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # the database password too (the test server trusts any password, so any value connects)
    db_password = "pg-" + PASSWORD
    source = {"url": "postgresql+psycopg://postgres:${DB_PASSWORD}@127.0.0.1:5432/test", "table": pg_table(telco)}
    with webhook_server() as hook:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        monkeypatch.setenv("DB_PASSWORD", db_password)
        notify_section = {
            "slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"},
            "email": {  # nothing listens on this port: the notifier is down
                "host": "127.0.0.1",
                "port": free_port(),
                "starttls": False,
                "username": "bot",
                "password": "${SMTP_PASSWORD}",
                "sender": "retrainer@example.org",
                "to": ["ml-team@example.org"],
            },
            "retries": 1,
            "backoff": 0.01,
        }
        models = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}
        export = {"export_dir": str(tmp_path / "models")}  # and a plain file registry of champions
        report = {"auto": True}  # the HTML report is scanned too
        spec = retrainer.load_spec(
            write_spec(source=source, notify=notify_section, models=models, promotion=export, report=report)
        )
        with caplog.at_level(logging.INFO, logger="retrainer"):
            result = retrainer.run(spec)
            rejected = retrainer.run(
                retrainer.load_spec(
                    write_spec(source=source, notify=notify_section, models=models, validation={"min_rows": 10**6})
                )
            )

    assert result.outcome == "promoted", result.reason
    assert rejected.outcome == "rejected"
    texts = [post["json"]["text"] for post in hook.posts]
    assert len(texts) == 2
    assert "telco-test: promoted v1" in texts[0] and result.run_id in texts[0] and "roc_auc 0." in texts[0]
    assert "telco-test: rejected" in texts[1] and rejected.reason[:60] in texts[1]
    assert (tmp_path / "models" / "telco-test" / "latest").read_text() == "v1\n"
    assert json.loads((tmp_path / "models" / "telco-test" / "v1" / "metadata.json").read_text())["version"] == 1
    assert "could not notify email of promoted" in caplog.text
    lines = [json.loads(line) for line in (tmp_path / "store" / "runs.jsonl").read_text().splitlines()]
    assert lines[0]["notified"]["slack:promoted"] == "sent"
    assert lines[0]["notified"]["email:promoted"].startswith("failed: ConnectionRefusedError")
    # the secrets reach neither the logs, the reasons, nor any file of the store (run.json, runs.jsonl, logs,
    # the HTML report, MLflow's DB with its params and tags, the model artifacts) or of the file registry
    secrets = [hook.url.rsplit("/", 1)[1], PASSWORD, db_password]
    assert (tmp_path / "store" / "runs" / result.run_id / "report.html").exists()
    for text in (caplog.text, result.reason, rejected.reason, *texts):
        assert not [secret for secret in secrets if secret in text]
    for path in [*(tmp_path / "store").rglob("*"), *(tmp_path / "models").rglob("*")]:
        if path.is_file():
            data = path.read_bytes()
            assert not [secret for secret in secrets if secret.encode() in data], f"secret leaked into {path}"


def test_the_master_summary_goes_once_to_each_distinct_channel(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrainer.exporters.airflow import notify_summary

    with webhook_server() as hook:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hook.url)
        shared = {"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}", "on": ["summary"]}}
        pipelines = {
            f"retrainer_{name}": {"spec": str(write_spec(f"{name}.yaml", notify=shared)), "env": None}
            for name in ("churn", "credit")
        }
        for pipeline in pipelines.values():
            pipeline["store"] = str(tmp_path / "store")
        outcomes = {
            "retrainer_churn": {"outcome": "promoted", "model_version": 4, "reason": "roc_auc 0.85 vs 0.84"},
            "retrainer_credit": {"outcome": "rejected", "model_version": None, "reason": "2 validation checks failed"},
        }
        notify_summary(pipelines, outcomes, "scheduled__2026-11-25")
    [post] = hook.posts  # both pipelines share the webhook: one message
    text = post["json"]["text"]
    assert text.startswith("*[retrainer] 2 pipelines: 1 promoted, 1 rejected*")
    assert "- retrainer_churn: promoted v4: roc_auc 0.85 vs 0.84" in text
    assert "- retrainer_credit: rejected: 2 validation checks failed" in text
    assert "scheduled__2026-11-25" in text
