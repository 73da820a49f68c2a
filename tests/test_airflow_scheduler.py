"""A generated DAG runs under a real Airflow 3 deployment: scheduler, DAG processor and API server.

`tests/test_airflow.py` runs DAGs in-process with `dag.test()`; this test starts the real components
as separate processes on a fresh PostgreSQL metadata database, with the LocalExecutor, and drives
them only through the `airflow` CLI, as an operator would: wait for the DAG to be parsed, unpause,
trigger with conf, and poll the run until it finishes. Each task runs in its own process and talks to
the API server's execution API, exactly as in production. Everything listens on 127.0.0.1 only.

The first DAG run is also the fault test of the Airflow path: its tasks are SIGKILLed (once each, see
`retrainer.faults`) at a stage boundary, inside register and inside promote; Airflow's own retry
machinery must take each killed task up again, and the run must still succeed with the champion on a
validated version and nothing half-registered serving.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import retrainer
from crash_invariants import assert_consistent
from retrainer.errors import StoreError
from retrainer.exporters.airflow import dag_id_for, export_dags, run_id_for
from retrainer.faults import KILL_AT, KILL_ONCE
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.promotion import read_audit
from retrainer.store import RunStore

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

AIRFLOW = Path(sys.executable).parent / "airflow"
RUN_TIMEOUT = 300.0  # trigger to a finished run
# the task that reaches each point is SIGKILLed on its first attempt: train (a stage boundary),
# register (version created, not yet tagged validated), promote (champion moved, decision untagged)
KILLS = {"before:train": "train", "register:versioned": "register", "alias:champion:after": "promote"}
STARTUP_TIMEOUT = 240.0  # components up and the DAG parsed (slow on a busy 2-core machine)
CLI_TIMEOUT = 180.0  # one `airflow ...` command: importing Airflow alone takes seconds


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _airflow_env(home: Path, db_url: str, port: int) -> dict[str, str]:
    """The environment of every airflow process: the inherited one without any AIRFLOW* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), "127.0.0.1", "localhost"]))
    base_url = f"http://127.0.0.1:{port}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            # Airflow derives the async URL as postgresql+asyncpg, which is not installed; psycopg 3 is async too
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": db_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            # the simple auth manager (Airflow 3's default) without logins: everyone is admin
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API__WORKERS": "1",
            # the scheduler signs the tasks' tokens, the API server checks them: one shared secret
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


class Deployment:
    """The airflow components running as background processes, each in its own process group."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(AIRFLOW), *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.home,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stderr[-4000:]}")
        return result

    def cli_json(self, *args: str) -> Any:
        """The JSON a command prints; Airflow logs its warnings to stdout too, so skip lines before it."""
        stdout = self.cli(*args, "-o", "json").stdout
        lines = stdout.splitlines()
        for index, line in enumerate(lines):
            if line.startswith(("[{", "[]", "{")) or line in ("[", "{"):
                with contextlib.suppress(json.JSONDecodeError):
                    return json.loads("\n".join(lines[index:]))
        raise AssertionError(f"no JSON in the output of airflow {' '.join(args)}:\n{stdout[-4000:]}")

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        with open(self.home / f"{name}.log", "wb") as log:
            self.processes[name] = subprocess.Popen(
                [str(AIRFLOW), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self.env, **(env or {})},
                cwd=self.home,
                start_new_session=True,
            )

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"airflow {name} exited early with {process.returncode}")

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)  # also any task or worker left in the group
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def print_logs(self, lines: int = 80) -> None:
        logs = [self.home / f"{name}.log" for name in self.processes]
        logs += sorted((self.home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[-5:]
        for path in logs:
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                print(f"\n===== {path.relative_to(self.home)} (last {len(tail)} lines) =====")
                print("\n".join(tail))


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # start_new_session=True: the group id is the leader's pid


def _wait_for(what: str, condition: Callable[[], bool], deployment: Deployment, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployment.check_alive()
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _wait_for_runs(deployment: Deployment, dag_id: str) -> list[dict[str, Any]]:
    """The DAG's runs, once every one of them has finished (success or failed)."""
    runs: list[dict[str, Any]] = []

    def finished() -> bool:
        nonlocal runs
        runs = deployment.cli_json("dags", "list-runs", dag_id)
        return bool(runs) and all(run["state"] in ("success", "failed") for run in runs)

    _wait_for(f"the runs of {dag_id} to finish", finished, deployment, RUN_TIMEOUT)
    return runs


def _tries(db_url: str, dag_id: str, run_id: str) -> dict[str, list[tuple[str, Any]]]:
    """Each task's (state, start) try by try, from the metadata database (earlier tries in its history)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    query = """
        SELECT task_id, try_number, state, start_date FROM task_instance_history WHERE dag_id = :dag AND run_id = :run
        UNION ALL
        SELECT task_id, try_number, state, start_date FROM task_instance WHERE dag_id = :dag AND run_id = :run
        ORDER BY task_id, try_number
    """
    tries: dict[str, list[tuple[str, Any]]] = {}
    try:
        with engine.connect() as connection:
            for task_id, _, state, start in connection.execute(text(query), {"dag": dag_id, "run": run_id}):
                tries.setdefault(task_id, []).append((state, start))
    finally:
        engine.dispose()
    return tries


def _api_healthy(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never a proxy
    try:
        with opener.open(f"http://127.0.0.1:{port}/execution/health", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.timeout(900)  # the waits below add up to more than the default 600s on a slow machine
def test_generated_dag_runs_under_a_real_scheduler_and_promotes_a_champion(
    tmp_path: Path,
    scratch_database: str,
    telco_db: Callable[..., str],
    write_spec: Callable[..., Path],
) -> None:
    telco_db()
    models = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}
    # retried a second after a crash (the default waits 5 minutes)
    orchestration = {"retries": 1, "retry_delay": "1s"}
    spec_path = write_spec(name="scheduled.yaml", models=models, schedule=None, orchestration=orchestration)
    spec = retrainer.load_spec(spec_path)
    dag_id = dag_id_for(spec)
    home = tmp_path / "airflow"
    export_dags([spec_path], home / "dags")
    port = _free_port()
    deployment = Deployment(home, _airflow_env(home, scratch_database, port))

    passed = False
    try:
        deployment.cli("db", "migrate")
        deployment.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port))
        # the LocalExecutor's task processes inherit the scheduler's environment, retries included
        kills = tmp_path / "kills"
        kill_env = {KILL_AT: ",".join(KILLS), KILL_ONCE: str(kills)}
        deployment.start("scheduler", "scheduler", "--skip-serve-logs", env=kill_env)  # no log server on 0.0.0.0:8793
        deployment.start("dag-processor", "dag-processor")
        deployment.start("triggerer", "triggerer", "--skip-serve-logs")  # the master DAG waits deferred

        def parsed() -> bool:
            errors = deployment.cli_json("dags", "list-import-errors")
            assert not errors, f"import errors: {errors}"
            return any(row.get("dag_id") == dag_id for row in deployment.cli_json("dags", "list"))

        _wait_for(f"the DAG {dag_id} to be parsed", parsed, deployment, STARTUP_TIMEOUT)
        _wait_for("the API server's execution API", lambda: _api_healthy(port), deployment, STARTUP_TIMEOUT)
        deployment.cli("dags", "unpause", dag_id)

        triggered = time.monotonic()
        deployment.cli("dags", "trigger", dag_id, "--conf", json.dumps({"as_of": "2026-11-01"}))
        runs = _wait_for_runs(deployment, dag_id)
        elapsed = time.monotonic() - triggered
        print(f"\nairflow scheduler: trigger to {runs[0]['state']} in {elapsed:.1f}s")

        assert [run["state"] for run in runs] == ["success"], runs
        # every point killed its task once, and Airflow ran exactly those tasks a second time
        assert sorted(path.name for path in kills.iterdir()) == sorted(p.replace(":", "_") for p in KILLS)
        tries = _tries(scratch_database, dag_id, runs[0]["run_id"])
        assert {task for task, states in tries.items() if len(states) > 1} == set(KILLS.values()), tries
        for task in KILLS.values():  # the history keeps a retried try as failed
            assert [state for state, _ in tries[task]] == ["failed", "success"], (task, tries[task])
            (first_try,) = (home / "logs" / f"dag_id={dag_id}").glob(f"run_id=*/task_id={task}/attempt=1.log")
            assert "SIGKILL" in first_try.read_text(), f"{task}: no SIGKILL in the log of its first try"
        lost = sum((tries[task][1][1] - tries[task][0][1]).total_seconds() for task in KILLS.values())
        print(f"airflow scheduler: {len(KILLS)} tasks SIGKILLed, {lost:.1f}s from their first tries to their retries")
        tracking_uri = default_tracking_uri(RunStore(spec.store))
        aliases = assert_consistent(Path(spec.store), tracking_uri, spec.registry_name)
        registry = Registry(tracking_uri)
        champion = registry.by_alias(spec.registry_name, "champion")
        # v1 was killed before it was tagged validated: the retry registered v2, and v1 can never serve
        assert champion is not None and champion.version == 2 and aliases == {"champion": "2"}
        versions = {v.version: v.tags for v in registry.versions(spec.registry_name)}
        assert sorted(versions) == [1, 2] and versions[1].get("retrainer.validated") != "true"
        assert champion.tags["retrainer.as_of"].startswith("2026-11-01")
        # the promote task killed after the alias moved was finished by its retry: tagged and audited, once
        assert champion.tags["retrainer.outcome"] == "promoted"
        audit = [(entry["action"], entry["version"]) for entry in read_audit(RunStore(spec.store), spec.registry_name)]
        assert audit == [("promoted", 2)], audit
        assert champion.tags["retrainer.run_id"] == run_id_for({"run_id": runs[0]["run_id"]})
        record = RunStore(spec.store).read_run(run_id_for({"run_id": runs[0]["run_id"]}))  # the DAG run's id
        assert record["status"] == "promoted" and record["model_version"] == 2

        # A master DAG over two pipelines: the first has no new data (its prerequisites skip it), the
        # second has never been trained (it is promoted); the master waits for both and summarises.
        other_path = write_spec(name="other.yaml", models=models, schedule=None)
        other_path.write_text(other_path.read_text().replace("name: telco-test", "name: telco-other"))
        other = retrainer.load_spec(other_path)
        export_dags([spec_path, other_path], home / "dags")
        other_id, master_id = dag_id_for(other), "retrainer_master"

        def master_parsed() -> bool:
            return {other_id, master_id} <= {row.get("dag_id") for row in deployment.cli_json("dags", "list")}

        _wait_for("the master DAG to be parsed", master_parsed, deployment, STARTUP_TIMEOUT)
        for paused in (other_id, master_id):
            deployment.cli("dags", "unpause", paused)
        triggered = time.monotonic()
        deployment.cli("dags", "trigger", master_id, "--conf", json.dumps({"as_of": "2026-11-01"}))
        master_runs = _wait_for_runs(deployment, master_id)
        elapsed = time.monotonic() - triggered
        print(f"airflow scheduler: master over 2 pipelines, trigger to {master_runs[0]['state']} in {elapsed:.1f}s")

        assert [run["state"] for run in master_runs] == ["success"], master_runs
        master_run_id = master_runs[0]["run_id"]
        other_record = RunStore(other.store).read_run(run_id_for({"run_id": f"{master_run_id}__{other_id}"}))
        assert other_record["status"] == "promoted"
        assert registry.by_alias(other.registry_name, "champion") is not None
        assert [run["state"] for run in deployment.cli_json("dags", "list-runs", dag_id)] == ["success", "success"]
        with pytest.raises(StoreError):  # skipped before extract: nothing new for the first pipeline
            RunStore(spec.store).read_run(run_id_for({"run_id": f"{master_run_id}__{dag_id}"}))
        assert sorted(v.version for v in registry.versions(spec.registry_name)) == [1, 2]
        passed = True
    finally:
        deployment.stop()
        if not passed:
            deployment.print_logs()
