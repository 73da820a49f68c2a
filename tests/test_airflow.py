"""Real Airflow 3: generated DAGs load in a DagBag, and `dag.test()` runs the pipeline end to end.

Airflow reads its configuration when first imported, so the fixture sets AIRFLOW_HOME (a temp dir
with a SQLite metadata DB, migrated by the real `airflow db migrate`) before anything imports it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import retrainer
from retrainer.exporters.airflow import dag_id_for, export_dags
from retrainer.faults import FAIL_AT, KILL_ONCE
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.stages import default_pipeline
from retrainer.store import RunStore

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("airflow")
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail("airflow was imported before its test configuration was set")
    old = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    (home / "dags").mkdir()
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True, env=os.environ.copy(), timeout=300)
    yield home
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_generated_dag_loads_in_a_dagbag_with_the_specs_schedule_and_retries(
    airflow_home: Path, write_spec: Callable[..., Path]
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    spec_path = write_spec(
        schedule="@weekly",
        orchestration={"retries": 3, "retry_delay": "90s", "pool": "training"},
        models={"candidates": ["logistic_regression"], "n_trials": 4, "workers": 2},
    )
    [dag_file] = export_dags([spec_path], airflow_home / "dags")
    started = time.perf_counter()
    bag = DagBag(dag_folder=str(dag_file))
    parse_seconds = time.perf_counter() - started
    print(f"DagBag parse of {dag_file.name}: {parse_seconds:.3f}s")

    assert bag.import_errors == {}
    dag = bag.get_dag("retrainer_telco-test".replace("-", "_"))
    assert dag is not None
    assert dag.schedule == "@weekly"
    names = default_pipeline().names
    # the readiness gate is a task of its own, between register and promote (issue 26)
    assert names.index("register") + 1 == names.index("readiness") == names.index("promote") - 1
    assert dag.get_task("promote").upstream_task_ids == {"readiness"}
    tune = names.index("tune")
    order = ["prerequisites", *names[:tune], "tune_worker", *names[tune:]]
    assert [t.task_id for t in dag.topological_sort()] == order
    for upstream, downstream in itertools.pairwise(order):
        assert dag.get_task(downstream).upstream_task_ids == {upstream}
    assert type(dag.get_task("tune_worker")).__name__.endswith("MappedOperator")  # fans out over the workers
    extract = dag.get_task("extract")
    assert extract.retries == 3 and extract.retry_delay.total_seconds() == 90
    assert extract.pool == "training"
    source = dag_file.read_text()
    assert "import retrainer" not in source.split("def _stage")[0]  # parse time imports only the Task SDK


def test_dag_test_runs_the_pipeline_and_promotes_like_retrainer_run(
    airflow_home: Path, telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    models = {"candidates": ["logistic_regression", "lightgbm"], "n_trials": 2, "cv_folds": 3, "workers": 2}
    spec_path = write_spec(name="airflow.yaml", models=models)
    [dag_file] = export_dags([spec_path], airflow_home / "dags")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dag_file)).get_dag("retrainer_telco_test")
    assert dag is not None
    started = time.perf_counter()
    dag_run = dag.test(run_conf={"as_of": "2026-11-01"})
    print(f"dag.test() wall time: {time.perf_counter() - started:.1f}s")

    assert str(dag_run.state) in ("success", "DagRunState.SUCCESS")
    spec = retrainer.load_spec(spec_path)
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    champion = registry.by_alias("telco-test", "champion")
    assert champion is not None and champion.version == 1
    assert champion.tags["retrainer.as_of"].startswith("2026-11-01")
    record = next(RunStore(spec.store).iter_runs())
    assert record["status"] == "promoted"
    assert [s["name"] for s in record["stages"]] == default_pipeline().names

    tuning = next(s for s in record["stages"] if s["name"] == "tune")
    assert tuning["status"] == "ran"

    again = retrainer.run(spec, as_of="2026-11-01")  # the CLI path sees exactly what the DAG made
    assert again.outcome == "unchanged"

    # nothing new in the source since the champion was trained: the prerequisites skip the run
    skipped = dag.test(run_conf={"as_of": "2026-11-01"})
    states = {ti.task_id: str(ti.state) for ti in skipped.get_task_instances()}
    assert states["prerequisites"].endswith("success") and states["extract"].endswith("skipped")
    forced = dag.test(run_conf={"as_of": "2026-11-01", "force": True})
    assert str(forced.state).endswith("success")
    assert [v.version for v in registry.versions("telco-test")] == [1]  # same data, same model: nothing new


def test_several_specs_get_a_master_dag_that_triggers_each_pipeline_and_summarises(
    airflow_home: Path, write_spec: Callable[..., Path]
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    churn = write_spec(name="churn.yaml", schedule="@daily")
    other = write_spec(name="other.yaml", schedule="@daily")
    other.write_text(other.read_text().replace("name: telco-test", "name: telco-other"))
    written = export_dags([churn, other], airflow_home / "dags" / "master")

    assert sorted(p.name for p in written) == [
        "retrainer_master.py",
        "retrainer_telco_other.py",
        "retrainer_telco_test.py",
    ]
    bag = DagBag(dag_folder=str(airflow_home / "dags" / "master"))
    assert bag.import_errors == {}
    master = bag.get_dag("retrainer_master")
    assert master is not None and master.schedule == "@daily"
    triggers = {t.task_id: t for t in master.tasks if t.task_id.startswith("trigger_")}
    assert set(triggers) == {"trigger_retrainer_telco_test", "trigger_retrainer_telco_other"}
    assert all(t.wait_for_completion for t in triggers.values())
    assert master.get_task("summary").upstream_task_ids == set(triggers)
    for dag_id in ("retrainer_telco_test", "retrainer_telco_other"):
        assert bag.get_dag(dag_id).schedule is None  # the master's schedule triggers them, never twice


def test_a_rejected_run_fails_its_task_once_without_retries_and_leaves_no_champion(
    airflow_home: Path, telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    spec_path = write_spec(
        name="gated.yaml",
        evaluation={"metric": "roc_auc", "thresholds": {"roc_auc": 0.99}},
        orchestration={"retries": 3},
    )
    spec_path.write_text(spec_path.read_text().replace("name: telco-test", "name: telco-gated"))
    [dag_file] = export_dags([spec_path], airflow_home / "dags")
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dag_file)).get_dag("retrainer_telco_gated")
    assert dag is not None

    dag_run = dag.test()

    assert str(dag_run.state).endswith("failed")
    tasks = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert str(tasks["evaluate"].state).endswith("failed")
    assert tasks["evaluate"].try_number == 1  # a rejection is not retried as if it were a crash
    assert not str(tasks["compare"].state).endswith("success")
    spec = retrainer.load_spec(spec_path)
    assert Registry(default_tracking_uri(RunStore(spec.store))).versions("telco-gated") == []
    record = next(RunStore(spec.store).iter_runs())
    assert record["status"] == "rejected" and "roc_auc" in record["reason"]
    summary = (Path(spec.store) / "runs.jsonl").read_text().splitlines()[-1]
    assert '"outcome": "rejected"' in summary  # the notify stage ran for the rejection


def test_a_failed_attempt_that_is_retried_notifies_no_one(
    airflow_home: Path,
    telco_db: Callable[..., str],
    write_spec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The train task raises on its first try (an injected fault); the retry succeeds. People hear of
    the run once, with its real outcome, not of the attempt Airflow retried."""
    from airflow.dag_processing.dagbag import DagBag

    from notify_servers import webhook_server

    telco_db()
    with webhook_server() as hook:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hook.url)
        monkeypatch.setenv(FAIL_AT, "before:train")
        monkeypatch.setenv(KILL_ONCE, str(tmp_path / "fired"))
        spec_path = write_spec(
            name="retried.yaml",
            orchestration={"retries": 1, "retry_delay": "1s"},
            notify={"slack": {"webhook_url": "${SLACK_WEBHOOK_URL}"}},
            models={"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2},
        )
        spec_path.write_text(spec_path.read_text().replace("name: telco-test", "name: telco-retried"))
        [dag_file] = export_dags([spec_path], airflow_home / "dags")
        dag = DagBag(dag_folder=str(dag_file)).get_dag("retrainer_telco_retried")
        assert dag is not None

        dag_run = dag.test()

    assert str(dag_run.state).endswith("success")
    tasks = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert tasks["train"].try_number == 2  # failed once, retried
    assert (tmp_path / "fired" / "before_train").exists()
    texts = [post["json"]["text"] for post in hook.posts]
    assert len(texts) == 1 and "promoted" in texts[0], texts  # the outcome, once; no word of the retried failure
    record = next(RunStore(retrainer.load_spec(spec_path).store).iter_runs())
    assert record["status"] == "promoted"


def test_a_project_file_exports_every_listed_pipeline_and_a_master(
    airflow_home: Path, write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from retrainer.cli import app

    first = write_spec(name="first.yaml")
    second = write_spec(name="second.yaml")
    second.write_text(second.read_text().replace("name: telco-test", "name: telco-second"))
    project = tmp_path / "project.yaml"
    project.write_text("pipelines: [first.yaml, second.yaml]\n")
    out = airflow_home / "dags" / "project"

    result = CliRunner().invoke(app, ["airflow", "export", str(project), "--out", str(out)])

    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "retrainer_master.py",
        "retrainer_telco_second.py",
        "retrainer_telco_test.py",
    ]
    assert first.exists()


def example_spec(tmp_path: Path, example: str, loader: str, **overrides: Any) -> Path:
    """An example's own spec and data in `tmp_path`, with cheap models so the test trains in seconds."""
    from conftest import example_setup

    setup = example_setup(example)
    spec = yaml.safe_load((ROOT / "examples" / example / "pipeline.yaml").read_text())
    database = tmp_path / f"{example}.db"
    setup.load(f"sqlite:///{database}", getattr(setup, loader)(), setup.TABLE)
    spec |= {"source": {**spec["source"], "url": f"sqlite:///{database}"}, "store": str(tmp_path / "store")}
    spec |= {"report": {"auto": False}, **overrides}
    path = tmp_path / f"{example}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def csv_example_spec(tmp_path: Path, example: str, **overrides: Any) -> Path:
    """An example whose source is a file (forecasts, anomalies): its data written as CSV in `tmp_path`."""
    from conftest import example_setup

    data = example_setup(example).write(tmp_path / f"{example}.csv")
    spec = yaml.safe_load((ROOT / "examples" / example / "pipeline.yaml").read_text())
    spec |= {"source": {"path": str(data)}, "store": str(tmp_path / "store"), "report": {"auto": False}}
    path = tmp_path / f"{example}.yaml"
    path.write_text(yaml.safe_dump(spec | overrides, sort_keys=False))
    return path


def champion_after_dag_test(path: Path, folder: Path) -> tuple[Registry, Any]:
    """Export `path` alone into `folder`, run its DAG with `dag.test()` (it must succeed) and return
    the registry and the champion it left."""
    from airflow.dag_processing.dagbag import DagBag

    [dag_file] = export_dags([path], folder)
    spec = retrainer.load_spec(path)
    dag = DagBag(dag_folder=str(dag_file)).get_dag(dag_id_for(spec))
    assert dag is not None
    assert str(dag.test().state).endswith("success")
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    champion = registry.by_alias(spec.name, "champion")
    assert champion is not None
    return registry, champion


def test_the_multiclass_and_regression_examples_run_as_dags_under_one_master_with_telco(
    airflow_home: Path, tmp_path: Path, write_spec: Callable[..., Path], telco_db: Callable[..., str]
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    telco_db()
    cheap = {"candidates": ["logistic_regression", "lightgbm"], "n_trials": 1, "cv_folds": 3}
    routing = example_spec(tmp_path, "workflow_routing", "jobs_frame", models=cheap)
    prices = example_spec(
        tmp_path, "house_prices", "sales_frame", models={**cheap, "candidates": ["ridge", "lightgbm"]}
    )
    out = airflow_home / "dags" / "tasks"

    written = export_dags([write_spec(), routing, prices], out)

    assert sorted(p.name for p in written) == [
        "retrainer_house_prices.py",
        "retrainer_master.py",
        "retrainer_telco_test.py",
        "retrainer_workflow_routing.py",
    ]
    bag = DagBag(dag_folder=str(out))
    assert bag.import_errors == {}
    master = bag.get_dag("retrainer_master")
    assert master is not None
    assert {t.task_id for t in master.tasks if t.task_id.startswith("trigger_")} == {
        "trigger_retrainer_telco_test",
        "trigger_retrainer_workflow_routing",
        "trigger_retrainer_house_prices",
    }
    dag = bag.get_dag("retrainer_workflow_routing")
    assert dag is not None

    dag_run = dag.test()

    assert str(dag_run.state).endswith("success")
    spec = retrainer.load_spec(routing)
    champion = Registry(default_tracking_uri(RunStore(spec.store))).by_alias("workflow-routing", "champion")
    assert champion is not None and champion.version == 1
    assert json.loads(champion.tags["retrainer.task"]) == {"task": "multiclass", "labels": ["F", "L", "M", "VF"]}
    metrics = json.loads(champion.tags["retrainer.metrics"])
    assert metrics["accuracy"] >= 0.78 and metrics["f1_macro"] >= 0.72  # the example's own gates

    prices_dag = bag.get_dag("retrainer_house_prices")
    assert prices_dag is not None and str(prices_dag.test().state).endswith("success")
    prices_spec = retrainer.load_spec(prices)
    prices_champion = Registry(default_tracking_uri(RunStore(prices_spec.store))).by_alias("house-prices", "champion")
    assert prices_champion is not None
    assert json.loads(prices_champion.tags["retrainer.task"]) == {"task": "regression", "transform": "log"}
    assert json.loads(prices_champion.tags["retrainer.metrics"])["rmse"] <= 40_000  # dollars: the example's gate


@pytest.mark.parametrize(
    ("example", "series_id", "horizon", "candidate"),
    [("spending", None, 12, "auto_theta"), ("arrivals", "origin", 8, "auto_ets")],
    ids=["one", "panel"],
)
def test_the_forecast_examples_run_as_dags(
    example: str, series_id: str | None, horizon: int, candidate: str, airflow_home: Path, tmp_path: Path
) -> None:
    """task: forecast through the same exported DAG, one series (examples/spending) and a panel of four
    (examples/arrivals, one model per origin): the backtested forecaster is promoted."""
    path = csv_example_spec(tmp_path, example, models={"candidates": [candidate], "n_trials": 1})

    _, champion = champion_after_dag_test(path, airflow_home / "dags" / example)

    assert json.loads(champion.tags["retrainer.task"]) == {
        "task": "forecast",
        "horizon": horizon,
        "series_id": series_id,
    }
    assert json.loads(champion.tags["retrainer.metrics"])["naive_ratio"] < 1  # it beat the seasonal-naive forecast


def test_the_anomaly_example_runs_as_a_dag_and_keeps_its_cut_off_in_the_model(
    airflow_home: Path, tmp_path: Path
) -> None:
    """task: anomaly through the exported DAG (examples/spam_filter: real e-mails, spam the known anomaly):
    the detector is fitted without the labels, gated on them, promoted, and keeps its cut-off in the model."""
    models = {"candidates": ["isolation_forest"], "n_trials": 1, "cv_folds": 3}
    path = csv_example_spec(tmp_path, "spam_filter", models=models, readiness={"requests": 20, "batches": 3})

    registry, champion = champion_after_dag_test(path, airflow_home / "dags" / "anomaly")

    assert json.loads(champion.tags["retrainer.task"]) == {"task": "anomaly", "positive": "yes", "labelled": True}
    assert json.loads(champion.tags["retrainer.metrics"])["average_precision"] >= 0.2  # the example's gate
    detector = registry.load_model("spam-filter", champion.version)[-1]
    assert type(detector).__name__ == "AnomalyDetector" and math.isfinite(detector.cutoff_)  # the fitted cut-off


def test_your_own_estimator_runs_as_a_dag_in_the_deployments_store(
    airflow_home: Path,
    telco_db: Callable[..., str],
    write_spec: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One DAG run, two deployment properties: the worked example's own estimator
    (HistGradientBoostingClassifier) is tuned and promoted by Airflow's tasks, and the run store is
    the deployment's Airflow Variable, not the absolute path of the machine that exported the DAG."""
    telco_db()
    own = yaml.safe_load((ROOT / "examples" / "telco_churn" / "own_model.yaml").read_text())["models"]["candidates"][1]
    models = {"candidates": [own], "n_trials": 2, "cv_folds": 2}
    spec_path = write_spec(name="own.yaml", models=models)
    [dag_file] = export_dags([spec_path], airflow_home / "dags")
    assert "retrainer_telco_test_store" in dag_file.read_text()
    deployed = tmp_path / "deployed-store"
    monkeypatch.setenv("AIRFLOW_VAR_RETRAINER_TELCO_TEST_STORE", str(deployed))  # an Airflow Variable
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(dag_file)).get_dag("retrainer_telco_test")
    assert dag is not None

    dag_run = dag.test()

    assert str(dag_run.state).endswith("success")
    assert next(RunStore(str(deployed)).iter_runs())["status"] == "promoted"
    assert not (tmp_path / "store" / "runs").exists()  # the exported default was not used
    champion = Registry(default_tracking_uri(RunStore(str(deployed)))).by_alias("telco-test", "champion")
    assert champion is not None and champion.tags["retrainer.candidate"] == "hist_gb"


def test_the_text_example_runs_as_a_dag_with_tfidf_inside_the_promoted_model(
    airflow_home: Path, tmp_path: Path
) -> None:
    """Free text (examples/course_routing: course titles to departments) through the exported DAG:
    the TF-IDF fitted in the train task is inside the promoted model, and its profile holds the vocabulary."""
    cheap = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 3}
    path = example_spec(tmp_path, "course_routing", "courses_frame", models=cheap)

    registry, champion = champion_after_dag_test(path, airflow_home / "dags" / "text")

    assert champion.run_id is not None
    assert json.loads(champion.tags["retrainer.metrics"])["f1_macro"] >= 0.80
    model = registry.load_model("course-routing", champion.version)
    assert "TextTfidf" in {type(step).__name__ for _, step, _ in model["preprocess"]["columns"].transformers_}
    profile = registry.run_json_artifact(champion.run_id, "retrainer/reference_profile.json")
    assert profile["columns"]["title"]["kind"] == "text"
