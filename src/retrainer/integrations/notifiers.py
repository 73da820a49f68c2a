"""Sending a message to a Slack-compatible webhook or by SMTP email, with retries, never failing the run.

Webhook URLs and passwords are secrets: they come from the environment through the spec, and every
text that leaves this module (log lines, delivery reports) passes through `redact` first.

    >>> redact("POST https://hooks.example/T0/B1/XyZ failed", ["https://hooks.example/T0/B1/XyZ"])
    'POST *** failed'
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrainer.spec import EmailSpec, NotifySpec, SlackSpec

logger = logging.getLogger("retrainer")


@dataclass(frozen=True)
class Message:
    """One notification: `event` picks the channels that want it; `text` is the body, plain words."""

    event: str
    subject: str
    text: str


class PermanentFailure(Exception):
    """A delivery that retrying cannot fix (a 4xx answer, a refused login)."""


def secret_values(notify: NotifySpec) -> list[str]:
    """Every secret in the notify section, longest first (so a URL is masked before a part of it)."""
    found = []
    if notify.slack is not None:
        found.append(notify.slack.webhook_url.get_secret_value())
    if notify.email is not None and notify.email.password is not None:
        found.append(notify.email.password.get_secret_value())
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def redact_value(value: Any, secrets: list[str]) -> Any:
    """The same, through the strings of a JSON-like value (a run summary)."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value


def deliver(notify: NotifySpec, message: Message) -> dict[str, str]:
    """Send `message` to every channel that wants its event; return channel -> "sent" | "failed: why".

    Never raises: a channel that stays down after its retries is logged (redacted) and skipped.
    """
    secrets = secret_values(notify)
    senders: list[tuple[str, list[str], Callable[[], None]]] = []
    if notify.slack is not None:
        slack = notify.slack
        senders.append(("slack", list(slack.on), lambda: post_webhook(slack, message)))
    if notify.email is not None:
        email = notify.email
        senders.append(("email", list(email.on), lambda: send_email(email, message)))
    report: dict[str, str] = {}
    for channel, events, send in senders:
        if message.event not in events:
            continue
        try:
            attempts = _with_retries(send, notify.retries, notify.backoff)
            report[channel] = "sent"
            logger.info("notified %s of %s (attempt %d)", channel, message.event, attempts)
        except Exception as error:  # noqa: BLE001 - a notifier that is down never fails the run
            why = redact(f"{type(error).__name__}: {error}", secrets)
            report[channel] = f"failed: {why}"
            logger.warning("could not notify %s of %s: %s", channel, message.event, why)
    return report


def _with_retries(send: Callable[[], None], retries: int, backoff: float) -> int:
    """Call `send` until it works, at most 1 + `retries` times, waiting backoff, 2*backoff, ...; return attempts."""
    for attempt in range(retries + 1):
        try:
            send()
            return attempt + 1
        except PermanentFailure:
            raise
        except Exception:
            if attempt == retries:
                raise
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


def post_webhook(slack: SlackSpec, message: Message) -> None:
    """POST `{"text": ...}` as JSON, the payload every Slack-compatible incoming webhook accepts."""
    import urllib.error
    import urllib.request

    body = json.dumps({"text": f"*{message.subject}*\n{message.text}"}).encode()
    request = urllib.request.Request(
        slack.webhook_url.get_secret_value(),
        data=body,
        headers={"Content-Type": "application/json", "User-Agent": "retrainer"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=slack.timeout) as response:
            response.read()
    except urllib.error.HTTPError as error:  # its str() holds no URL, but its .url does: never show it
        problem = f"the webhook answered HTTP {error.code} {error.reason}"
        if 400 <= error.code < 500 and error.code != 429:
            raise PermanentFailure(problem) from None
        raise ConnectionError(problem) from None
    except urllib.error.URLError as error:
        raise ConnectionError(f"the webhook is unreachable: {error.reason}") from None


def send_email(email: EmailSpec, message: Message) -> None:
    """Send a plain-text email; STARTTLS (verified against `ca_file` or the system CAs) before login."""
    import smtplib
    import ssl
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = email.sender
    mail["To"] = ", ".join(email.to)
    mail.set_content(message.text)
    with smtplib.SMTP(email.host, email.port, timeout=email.timeout) as smtp:
        smtp.ehlo()
        if email.starttls:
            smtp.starttls(context=ssl.create_default_context(cafile=email.ca_file))
            smtp.ehlo()
        if email.username:
            password = email.password.get_secret_value() if email.password else ""
            try:
                smtp.login(email.username, password)
            except smtplib.SMTPAuthenticationError as error:
                raise PermanentFailure(
                    f"the SMTP server refused the login of {email.username}: {error.smtp_code}"
                ) from None
        smtp.send_message(mail)
