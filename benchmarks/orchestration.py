"""Orchestration overhead: the same spec run by `retrainer run`, by Airflow's `dag.test()` and by `dvc repro`.

    .venv/bin/python benchmarks/orchestration.py

Prints, from one invocation on the Telco churn data (examples/telco_churn), each in a fresh store:
the DagBag parse time of the generated DAG, the wall time of `retrainer run` and of `dag.test()` on
the same spec, and the wall time of a first and a no-op `dvc repro` of the exported DVC pipeline.
Airflow's metadata DB is a SQLite file in a temporary AIRFLOW_HOME, made by `airflow db migrate`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "examples" / "telco_churn"))

HOME = Path(tempfile.mkdtemp(prefix="retrainer-bench-airflow-"))
os.environ.update(  # before anything imports airflow
    AIRFLOW_HOME=str(HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(HOME / "dags"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
    DVC_NO_ANALYTICS="1",
)


def write_spec(directory: Path, store: str) -> Path:
    spec = {
        "name": "bench-orchestration",
        "source": {"url": "sqlite:///telco.db", "table": "customers"},
        "target": {"column": "churn", "positive": "Yes"},
        "id_column": "customer_id",
        "store": str(directory / store),
        "models": {"candidates": ["logistic_regression", "lightgbm"], "n_trials": 3, "cv_folds": 3},
    }
    path = directory / f"{store}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        command, cwd=cwd, check=True, capture_output=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    )
    return time.perf_counter() - started


def main() -> None:
    from setup_data import TABLE, load, telco_frame

    work = Path(tempfile.mkdtemp(prefix="retrainer-bench-"))
    load(f"sqlite:///{work / 'telco.db'}", telco_frame(), TABLE)
    (HOME / "dags").mkdir()
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True)

    run_seconds = timed([str(BIN / "retrainer"), "-q", "run", str(write_spec(work, "store-run"))], work)

    from airflow.dag_processing.dagbag import DagBag

    from retrainer.exporters.airflow import export_dags

    [dag_file] = export_dags([write_spec(work, "store-airflow")], HOME / "dags")
    parse_seconds = []
    for _ in range(2):  # the first parse also imports Airflow's parsing machinery
        started = time.perf_counter()
        dag = DagBag(dag_folder=str(dag_file)).get_dag("retrainer_bench_orchestration")
        parse_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    state = dag.test().state
    dag_test_seconds = time.perf_counter() - started

    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run([str(BIN / "dvc"), "init", "-q"], cwd=work, check=True)
    subprocess.run([str(BIN / "retrainer"), "dvc", "export", str(write_spec(work, "store-dvc"))], cwd=work, check=True)
    first_repro = timed([str(BIN / "dvc"), "repro"], work)
    noop_repro = timed([str(BIN / "dvc"), "repro"], work)

    print("\norchestration overhead, Telco churn, logistic_regression + lightgbm, 3 trials each, 3-fold CV")
    print(
        f"  DagBag parse of the generated DAG      {parse_seconds[1]:8.3f} s  (first, cold: {parse_seconds[0]:.3f} s)"
    )
    print(f"  retrainer run (whole pipeline)          {run_seconds:8.1f} s")
    print(f"  dag.test() (same spec, state {state}) {dag_test_seconds:8.1f} s  ({dag_test_seconds / run_seconds:.2f}x)")
    print(f"  dvc repro, first                        {first_repro:8.1f} s")
    print(f"  dvc repro, nothing changed              {noop_repro:8.2f} s")


if __name__ == "__main__":
    main()
