"""A test hook that kills the process at a named point, to prove a crash anywhere loses nothing.

With `RETRAINER_KILL_AT=<point>` set, the process sends itself SIGKILL when it reaches that point:
no `finally`, no cleanup, like an OOM kill or a pulled plug. The points are the stage boundaries
(`before:<stage>`) and the steps inside registration and alias moves that a crash could split
(`register:logged`, `register:versioned`, `alias:<name>:before`, `alias:<name>:after`); several may
be named, comma-separated.

An orchestrator retries a killed task in the same environment, so it would die at the same point
forever. `RETRAINER_KILL_ONCE=<directory>` makes each point kill only once: it leaves a marker file
there before dying, and a point whose marker exists does nothing; the retry then goes past it.
Unset (always, outside tests), each point costs one dictionary lookup.

`RETRAINER_FAIL_AT=<point>` raises `InjectedFault` there instead: a crash the process survives
(a dropped connection, a full disk), so the run records its failure and notifies as it would.
`RETRAINER_KILL_ONCE` makes these fire once too.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

KILL_AT = "RETRAINER_KILL_AT"
KILL_ONCE = "RETRAINER_KILL_ONCE"
FAIL_AT = "RETRAINER_FAIL_AT"


class InjectedFault(RuntimeError):
    """What a `RETRAINER_FAIL_AT` point raises."""


def kill_point(name: str) -> None:
    """Die here, at once, if the environment names this point (and, with KILL_ONCE, it has not yet)."""
    killed, failed = (name in (os.environ.get(variable) or "").split(",") for variable in (KILL_AT, FAIL_AT))
    if not (killed or failed) or not _first_time(name):
        return
    if failed:
        raise InjectedFault(f"injected failure at {name} ({FAIL_AT})")
    os.kill(os.getpid(), signal.SIGKILL)


def _first_time(name: str) -> bool:
    """False when KILL_ONCE is set and this point already fired."""
    once = os.environ.get(KILL_ONCE)
    if not once:
        return True
    Path(once).mkdir(parents=True, exist_ok=True)
    try:  # exclusive create: of two processes reaching the point, only one fires
        Path(once, name.replace(":", "_")).touch(exist_ok=False)
    except FileExistsError:
        return False
    return True
