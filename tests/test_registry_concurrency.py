"""The registry on a real `mlflow server` backed by PostgreSQL, and two runs racing to promote.

Two `retrainer run` processes (different seeds, so different models) train at the same time against
one MLflow server and one registered model. The test holds the PostgreSQL advisory lock that guards
promotion until both have registered their version, then lets go: both race for the lock. The one
that loses the race must see that the champion moved and compare again with the new champion.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import retrainer
from notify_servers import free_port
from retrainer.errors import RegistryError, SpecError
from retrainer.integrations.locks import advisory_lock, lock_description
from retrainer.integrations.mlflow_registry import Registry
from retrainer.promotion import read_audit
from retrainer.spec import spec_from_dict
from retrainer.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}


@pytest.fixture
def mlflow_server(scratch_database: str, tmp_path: Path) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a PostgreSQL backend store and local artifacts; its URL."""
    port = free_port()
    log = (tmp_path / "mlflow-server.log").open("wb")
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        scratch_database,
        "--artifacts-destination",
        (tmp_path / "mlflow-artifacts").as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start:\n{(tmp_path / 'mlflow-server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def registered_runs(store: Path) -> list[dict[str, Any]]:
    """Runs whose register stage finished (they are at promotion now)."""
    records = []
    for path in store.glob("runs/*/run.json"):
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError:  # being rewritten right now: look again next time
            continue
    return [r for r in records if any(s["name"] == "register" and s["status"] == "ran" for s in r["stages"])]


@pytest.mark.slow
@pytest.mark.postgres
def test_two_runs_racing_on_a_postgres_backed_mlflow_server_end_with_one_champion(
    mlflow_server: str,
    scratch_database: str,
    telco_db: Callable[..., str],
    write_spec: Callable[..., Path],
    tmp_path: Path,
) -> None:
    telco_db()
    # two pipelines racing for one registered model: two runs of the *same* pipeline on one store
    # would not race, the second waits for the first (tests/test_run_concurrency.py)
    promotion = {"lock_url": scratch_database, "registry_name": "telco-test"}
    common = {"tracking": {"uri": mlflow_server}, "promotion": promotion, "models": MODELS}
    specs = [write_spec(f"racer{i}.yaml", seed=seed, **common) for i, seed in enumerate((1, 2))]
    for i, spec in enumerate(specs):  # `name` is write_spec's file name: set the pipeline's name here
        spec.write_text(spec.read_text().replace("name: telco-test", f"name: telco-racer-{i}", 1))
    registry = Registry(mlflow_server)
    registry._experiment_id("telco-test")  # created once here: two runs creating it at once would collide
    retrainer.run(retrainer.load_spec(specs[0]), until="validate")  # the stages both share, cached once
    store = tmp_path / "store"
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}

    with advisory_lock(scratch_database, "telco-test"):  # both runs will queue on it at promotion
        racers = [
            subprocess.Popen(
                [sys.executable, "-m", "retrainer.cli", "run", "--json", str(spec)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=environment,
                cwd=ROOT,
            )
            for spec in specs
        ]
        deadline = time.monotonic() + 400
        while len(registered_runs(store)) < 2:
            assert all(r.poll() is None for r in racers), [r.communicate() for r in racers]
            assert time.monotonic() < deadline, "the two runs did not both reach promotion"
            time.sleep(0.5)
        time.sleep(1)  # both are polling for the lock now
        assert all(r.poll() is None for r in racers)  # neither moved anything while the lock was held
    outputs = [racer.communicate(timeout=300) for racer in racers]

    results = [json.loads(stdout) for stdout, _ in outputs]
    assert [racer.returncode for racer in racers] == [0, 0], [stderr.decode()[-2000:] for _, stderr in outputs]
    audit = read_audit(RunStore(str(store)), "telco-test")
    assert len(audit) == 2 and {e["run_id"] for e in audit} == {r["run_id"] for r in results}
    first, second = audit
    assert first["action"] == "promoted" and first["champion_before"] is None
    assert second["champion_before"] == first["version"]  # it saw the winner of the race...
    assert "the champion moved to" in second["reason"] and "compared again" in second["reason"]  # ...and compared again
    assert second["action"] in ("promoted", "kept_champion")
    assert all(e["lock"] == "postgresql advisory lock" for e in audit)
    champion = registry.by_alias("telco-test", "champion")
    assert champion is not None and champion.version == second["champion_after"]
    versions = {v.version: v for v in registry.versions("telco-test")}
    assert sorted(versions) == sorted(e["version"] for e in audit)
    assert sum("champion" in v.aliases for v in versions.values()) == 1
    other = next(v for v in versions.values() if "champion" not in v.aliases)
    assert other.aliases == (("previous",) if second["action"] == "promoted" else ("challenger",))
    assert versions[champion.version].tags["retrainer.decided_by"].startswith("retrainer run ")
    print(  # the outcome, for the record (pytest -s)
        f"race: v{first['version']} promoted first; v{second['version']} {second['action']} "
        f"({second['reason']}); champion v{champion.version}"
    )

    # the champion, exported from the server to a plain file registry
    subprocess.run(
        [
            *(sys.executable, "-m", "retrainer.cli", "export-model", "telco-test"),
            *("--to", str(tmp_path / "models"), "--tracking-uri", mlflow_server, "--store", str(store)),
        ],
        check=True,
        env=environment,
        cwd=ROOT,
        capture_output=True,
    )
    assert (tmp_path / "models" / "telco-test" / "latest").read_text().strip() == f"v{champion.version}"
    assert (tmp_path / "models" / "telco-test" / f"v{champion.version}" / "model.pkl").stat().st_size > 0


@pytest.mark.postgres
def test_the_advisory_lock_excludes_a_second_holder(scratch_database: str, tmp_path: Path) -> None:
    store = RunStore(str(tmp_path / "store"))
    assert lock_description(store, scratch_database) == "postgresql advisory lock"  # a PostgreSQL tracking URI
    assert lock_description(store, "http://127.0.0.1:5000") == "file lock"
    assert lock_description(store, "http://127.0.0.1:5000", lock_url=scratch_database) == "postgresql advisory lock"
    with advisory_lock(scratch_database, "churn"):
        with (
            pytest.raises(RegistryError, match="waited 1 s for the registry lock of churn"),
            advisory_lock(scratch_database, "churn", timeout=1),
        ):
            pass
        with advisory_lock(scratch_database, "another-model", timeout=1):  # one lock per model
            pass
    with advisory_lock(scratch_database, "churn", timeout=1):  # released on exit
        pass


def test_a_lock_url_must_be_postgresql_and_is_not_echoed() -> None:
    with pytest.raises(SpecError) as info:
        spec_from_dict(
            {"name": "t", "source": {"path": "x.csv"}, "target": "y", "promotion": {"lock_url": "mysql://u:pw@h/db"}}
        )
    assert "promotion.lock_url: must be a PostgreSQL URL" in info.value.message and "pw@" not in info.value.message
