"""A test hook that kills the process at a named point, to prove a crash anywhere loses nothing.

With `RETRAINER_KILL_AT=<point>` set, the process sends itself SIGKILL when it reaches that point:
no `finally`, no cleanup, like an OOM kill or a pulled plug. The points are the stage boundaries
(`before:<stage>`) and the steps inside registration and alias moves that a crash could split
(`register:logged`, `register:versioned`, `alias:<name>:before`, `alias:<name>:after`).
Unset (always, outside tests), each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "RETRAINER_KILL_AT"


def kill_point(name: str) -> None:
    """Die here, at once, if the environment names this point."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
