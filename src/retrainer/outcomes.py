"""A run's outcome in words, naming the right versions: one rule for the CLI, notifications and the report.

"kept champion v2" once named the losing challenger while v1 stayed champion. The outcome's version
is the model this run trained; the champion is the one serving after the decision:

    >>> headline("kept_champion", 2, 1)
    'kept champion v1 (challenger v2)'
"""

from __future__ import annotations


def headline(outcome: str, version: int | None, champion_before: int | None) -> str:
    """'promoted v2 (replacing v1)', 'kept champion v1 (challenger v2)', 'unchanged v1', 'rejected'..."""
    words = outcome.replace("_", " ")
    if version is None:
        return words
    if outcome == "kept_champion" and champion_before is not None and champion_before != version:
        return f"kept champion v{champion_before} (challenger v{version})"
    if outcome == "promoted" and champion_before is not None and champion_before != version:
        return f"promoted v{version} (replacing v{champion_before})"
    if outcome in ("registered", "unchanged") and champion_before is not None and champion_before != version:
        return f"{words} v{version} (champion v{champion_before})"
    return f"{words} v{version}"
