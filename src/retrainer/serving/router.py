"""The A/B split as pure functions: an entity's bucket comes from a stable hash of its id.

The same entity always lands in the same bucket (across processes, restarts and machines, unlike
Python's salted `hash`), so a customer sees one model for the life of an experiment, and raising
the challenger's share only moves entities from the champion to the challenger, never back.

    >>> route("C00042", challenger_share=0.1, salt="telco")
    'champion'
"""

from __future__ import annotations

import hashlib
from typing import Literal

BUCKETS = 10_000
Arm = Literal["champion", "challenger"]


def bucket(entity_id: str, salt: str = "") -> int:
    """A bucket in [0, BUCKETS) for this entity: blake2b of salt and id, so it never changes."""
    digest = hashlib.blake2b(f"{salt}\x1f{entity_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def challenger_buckets(challenger_share: float) -> int:
    """How many of the BUCKETS go to the challenger for this share (0.1 -> 1,000)."""
    if not 0.0 <= challenger_share <= 1.0:
        raise ValueError(f"challenger_share must be between 0 and 1, got {challenger_share}")
    return round(challenger_share * BUCKETS)


def route(entity_id: str, challenger_share: float, salt: str = "", *, has_challenger: bool = True) -> Arm:
    """Which arm answers this entity: the challenger owns the lowest buckets, when there is one."""
    if not has_challenger:
        return "champion"
    return "challenger" if bucket(entity_id, salt) < challenger_buckets(challenger_share) else "champion"
