"""Two runs of one pipeline on one store, and runs that die: real `retrainer` processes, a real
MLflow store and the real Optuna journal (issue 25).

Before the pipeline lock, the second of two runs started together died with Optuna's
`UpdateFinishedTrialError` and failed the first run's trials in the shared study; a run killed with
SIGKILL stayed "running" in `retrainer runs` forever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from retrainer.store import RunStore

SRC = str(Path(__file__).resolve().parents[1] / "src")
pytestmark = pytest.mark.slow


def start(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`retrainer ARGS` as its own process (this checkout's code), output captured."""
    environment = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200", **(env or {})}
    command = [sys.executable, "-c", "from retrainer.cli import entrypoint; entrypoint()", *args]
    return subprocess.Popen(
        command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_two_runs_of_one_pipeline_wait_for_each_other_and_leave_the_study_and_registry_consistent(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    telco_db()
    spec = write_spec()
    first, second = (start("run", "--json", str(spec), cwd=tmp_path) for _ in range(2))
    results = [finish(first), finish(second)]
    for code, _out, err in results:
        assert code == 0, err
        assert "Traceback" not in err and "UpdateFinishedTrialError" not in err
    outcomes = sorted(json.loads(out)["outcome"] for _, out, _ in results)
    assert outcomes == ["promoted", "unchanged"]  # the second waited, then found the first's model
    waited = [err for _, _, err in results if "waiting for run" in err]
    assert len(waited) == 1
    winner = next(json.loads(out)["run_id"] for _, out, _ in results if json.loads(out)["outcome"] == "promoted")
    assert f"waiting for run {winner} (pid " in waited[0] and "of pipeline telco-test to finish" in waited[0]

    journals = list((tmp_path / "store" / "work").glob("tune-*/optuna.journal"))
    assert journals
    for journal in journals:
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        for summary in optuna.get_all_study_summaries(storage):
            states = {t.state for t in optuna.load_study(study_name=summary.study_name, storage=storage).trials}
            assert states == {optuna.trial.TrialState.COMPLETE}, (summary.study_name, states)

    from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri

    registry = Registry(default_tracking_uri(RunStore(str(tmp_path / "store"))))
    assert [v.version for v in registry.versions("telco-test")] == [1]


def test_no_wait_refuses_in_one_line_while_the_other_run_shows_as_running(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    from retrainer.run_lock import holder, is_held

    telco_db()
    spec = write_spec()
    store = RunStore(str(tmp_path / "store"))
    first = start("-q", "run", str(spec), cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not (is_held(store, "telco-test") and holder(store, "telco-test")):
        assert first.poll() is None and time.monotonic() < deadline, "the first run never took its lock"
        time.sleep(0.1)
    running = holder(store, "telco-test")["run_id"]
    code, out, err = finish(start("run", "--no-wait", str(spec), cwd=tmp_path), timeout=120)
    assert code == 10
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[0].startswith(f"error (PipelineBusy): pipeline telco-test is already running in run {running} (pid")
    assert "not waiting" in lines[0] and len(lines) == 2 and lines[1].startswith("hint:")

    code, out, _ = finish(start("runs", "--json", "--store", str(store.root), cwd=tmp_path))
    assert code == 0
    assert {r["run_id"]: r["status"] for r in json.loads(out)} == {running: "running"}
    assert finish(first)[0] == 0


def test_a_run_killed_with_sigkill_shows_as_interrupted_in_runs_and_its_report(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    telco_db()
    spec = write_spec()
    store = str(tmp_path / "store")
    code, _, _ = finish(start("-q", "run", str(spec), cwd=tmp_path, env={"RETRAINER_KILL_AT": "before:split"}))
    assert code == -9
    (record,) = RunStore(store).iter_runs()
    assert record["status"] == "running"  # what the killed process left on disk

    code, out, _ = finish(start("runs", "--json", "--store", store, cwd=tmp_path))
    (shown,) = json.loads(out)
    assert shown["status"] == "interrupted" and "ended without finishing the run" in shown["reason"]
    code, out, _ = finish(start("runs", "--store", store, cwd=tmp_path))
    assert record["run_id"] in out and "interrupted" in out and "running" not in out

    code, out, err = finish(start("report", record["run_id"][:17], "--store", store, cwd=tmp_path))
    assert code == 0, err
    page = (Path(store) / "runs" / record["run_id"] / "report.html").read_text()
    assert "interrupted" in page

    # the next run is not held up by the dead one, and resumes after what it finished
    code, out, err = finish(start("run", "--json", str(spec), cwd=tmp_path))
    assert code == 0 and "waiting" not in err
    assert json.loads(out)["outcome"] == "promoted"
