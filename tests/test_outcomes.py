"""The outcome line names the right versions everywhere it is shown (issue 25: "kept champion v2"
named the losing challenger while v1 stayed champion)."""

from __future__ import annotations

import pytest

from retrainer.outcomes import headline
from retrainer.stages.notify import run_messages, summary_message


@pytest.mark.parametrize(
    ("outcome", "version", "champion", "words"),
    [
        ("kept_champion", 2, 1, "kept champion v1 (challenger v2)"),
        ("promoted", 2, 1, "promoted v2 (replacing v1)"),
        ("promoted", 1, None, "promoted v1"),
        ("unchanged", 1, 1, "unchanged v1"),
        ("unchanged", 2, 1, "unchanged v2 (champion v1)"),
        ("registered", 3, 1, "registered v3 (champion v1)"),
        ("rejected", None, 1, "rejected"),
    ],
)
def test_headline_names_the_champion_and_the_challenger(
    outcome: str, version: int | None, champion: int | None, words: str
) -> None:
    assert headline(outcome, version, champion) == words


def test_notifications_name_the_champion_kept_not_the_challenger() -> None:
    summary = {"outcome": "kept_champion", "pipeline": "churn", "model_version": 2, "champion_version": 1}
    (message,) = run_messages({**summary, "reason": "not better", "run_id": "r", "store": "s"})
    assert message.subject == "[retrainer] churn: kept champion v1 (challenger v2)"
    master = summary_message({"churn": {**summary, "outcome": "kept_champion", "reason": "not better"}}, "m")
    assert "- churn: kept champion v1 (challenger v2): not better" in master.text
