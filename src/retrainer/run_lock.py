"""One run of a pipeline at a time per run store, and telling a live run from a killed one.

Two runs of one pipeline on one store share its cache entries and its Optuna studies (named by the
tune stage's cache key): run side by side, the second would tell trials the first has finished, and
both would register the same model. So a run holds `<store>/locks/pipeline-<name>.lock` from its
first stage to its last; a second run waits for it (saying which run it waits for) or, told not to
wait, refuses in one line (`PipelineBusy`). The lock is an OS file lock (`flock`), which the kernel
drops when its holder dies, even by SIGKILL: a killed run never blocks the next one.

The same lock tells a live run from a dead one: a run record still marked "running" whose pipeline
lock nobody holds belongs to a process that is gone, and `settled` shows it as "interrupted".
A remote store (no local file to lock) is not locked; there the process id and host in the record
tell, where the reader is on the run's host.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from retrainer.errors import PipelineBusy
from retrainer.store import RunStore

POLL_SECONDS = 0.5


def _paths(store: RunStore, pipeline: str) -> tuple[Path, Path]:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline)
    return store.local_path("locks", f"pipeline-{safe}.lock"), store.local_path("locks", f"pipeline-{safe}.json")


def holder(store: RunStore, pipeline: str) -> dict[str, Any]:
    """Who holds the pipeline's lock (run id, pid, host), as its holder last wrote it; {} if unknown."""
    try:
        found: dict[str, Any] = json.loads(_paths(store, pipeline)[1].read_text())
    except (OSError, ValueError):
        return {}
    return found


def describe_holder(found: dict[str, Any]) -> str:
    """'run 20261205-101010-abcdef (pid 123 on host)', or 'another run' when the holder is unknown."""
    if not found.get("run_id"):
        return "another run"
    return f"run {found['run_id']} (pid {found.get('pid')} on {found.get('host')})"


@contextlib.contextmanager
def pipeline_lock(
    store: RunStore,
    pipeline: str,
    run_id: str,
    *,
    wait: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the pipeline's run lock for the block; wait for it (calling `on_wait` once with a line
    naming the run waited for) or, with `wait=False`, raise `PipelineBusy`. No-op on a remote store."""
    if not store.is_local:
        yield
        return
    from filelock import FileLock, Timeout

    lock_path, holder_path = _paths(store, pipeline)
    lock = FileLock(str(lock_path))
    said = False
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            found = holder(store, pipeline)
            if not wait:
                raise PipelineBusy(
                    f"pipeline {pipeline} is already running in {describe_holder(found)}; not waiting",
                    hint="run again when it has finished, or leave out --no-wait to wait for it",
                ) from None
            if not said and on_wait is not None:
                on_wait(f"waiting for {describe_holder(found)} of pipeline {pipeline} to finish")
                said = True
            time.sleep(POLL_SECONDS)
    try:
        me = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname()}
        holder_path.write_text(json.dumps(me))
        yield
    finally:
        lock.release()


def is_held(store: RunStore, pipeline: str) -> bool:
    """Whether some process holds the pipeline's run lock right now (a probe: taken and released at once)."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(_paths(store, pipeline)[0]))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def settled(store: RunStore, record: dict[str, Any]) -> dict[str, Any]:
    """The record as it stands: "running" only while its process lives, else "interrupted".

    A run writes its final status before it lets go of the lock, so a "running" record whose lock is
    free was killed (SIGKILL, power loss) before it could write one. Records from before runs kept
    their pid are left as they are.
    """
    if record.get("status") != "running" or "pid" not in record:
        return record
    if _alive(store, record):
        return record
    gone = dict(record)
    gone["status"] = "interrupted"
    gone["reason"] = (
        f"process {record.get('pid')} on {record.get('host')} ended without finishing the run (killed?); "
        "finished stages are cached: run again to resume"
    )
    return gone


def _alive(store: RunStore, record: dict[str, Any]) -> bool:
    if store.is_local and record.get("pipeline"):
        return is_held(store, str(record["pipeline"])) and holder(store, str(record["pipeline"])).get(
            "run_id"
        ) == record.get("run_id")
    if record.get("host") != socket.gethostname():
        return True  # another machine's process: we cannot tell, so we do not guess
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


def process_identity() -> dict[str, Any]:
    """What a run record keeps so that readers can tell whether the run's process still lives."""
    return {"pid": os.getpid(), "host": socket.gethostname()}
