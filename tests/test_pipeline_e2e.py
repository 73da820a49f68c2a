"""End to end on the real Telco data, a real MLflow store (SQLite in tmp) and real Optuna studies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import retrainer
from retrainer.errors import RegistryError
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.store import RunStore

pytestmark = pytest.mark.slow

CACHEABLE = ("extract", "validate", "split", "features", "tune", "train", "evaluate")


def registry_for(spec: retrainer.Spec) -> Registry:
    return Registry(default_tracking_uri(RunStore(spec.store)))


def statuses(result: retrainer.RunResult) -> dict[str, str]:
    return {stage.name: stage.status for stage in result.stages}


def test_first_run_promotes_and_unchanged_rerun_is_a_cache_hit(
    telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    spec = retrainer.load_spec(write_spec())

    first = retrainer.run(spec)

    assert first.outcome == "promoted", first.reason
    assert first.model_version == 1
    assert all(status == "ran" for status in statuses(first).values())
    assert 0.75 < first.metrics["test_roc_auc"] < 0.95  # real Telco data: published models reach ~0.84
    registry = registry_for(spec)
    champion = registry.by_alias("telco-test", "champion")
    assert champion is not None and champion.version == 1
    for tag in (
        "retrainer.data_digest",
        "retrainer.spec_digest",
        "retrainer.git_commit",
        "retrainer.model_key",
        "retrainer.run_id",
    ):
        assert champion.tags.get(tag), f"missing lineage tag {tag}"
    assert champion.tags["retrainer.validated"] == "true"
    assert champion.tags["retrainer.outcome"] == "promoted"
    run = registry.client.get_run(champion.run_id)  # type: ignore[arg-type]
    contexts = {
        next(t.value for t in d.tags if t.key == "mlflow.data.context"): d.dataset for d in run.inputs.dataset_inputs
    }
    assert set(contexts) == {"train", "test"}
    assert '"num_rows": 5634' in contexts["train"].profile  # the exact training rows are linked

    second = retrainer.run(spec)

    assert second.outcome == "unchanged"
    assert [statuses(second)[name] for name in CACHEABLE] == ["cached"] * len(CACHEABLE)
    assert [v.version for v in registry.versions("telco-test")] == [1]
    assert registry.by_alias("telco-test", "champion").version == 1  # type: ignore[union-attr]
    # the champion's model, loaded back from MLflow, scores the raw test rows (preprocessing inside)
    model = registry.load_model("telco-test", 1)
    sample = pd.DataFrame(first_rows(spec), columns=None)
    assert model.predict_proba(sample).shape == (len(sample), 2)


def first_rows(spec: retrainer.Spec) -> pd.DataFrame:
    from sqlalchemy import create_engine

    engine = create_engine(str(spec.source.url))
    frame = pd.read_sql("SELECT * FROM customers LIMIT 5", engine)
    engine.dispose()
    return frame.drop(columns=["churn", "customer_id"])


def test_weak_challenger_is_registered_but_does_not_replace_the_champion(
    telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    strong = retrainer.run(retrainer.load_spec(write_spec()))
    assert strong.outcome == "promoted"
    weak_models = {
        "candidates": ["random_forest"],
        "n_trials": 1,
        "cv_folds": 2,
        "params": {"random_forest": {"n_estimators": 3, "max_depth": 1, "max_features": 1}},
    }
    weak_spec = retrainer.load_spec(write_spec("weak.yaml", models=weak_models))

    weak = retrainer.run(weak_spec)

    assert weak.outcome == "kept_champion", weak.reason
    assert "not better than the champion" in weak.reason
    registry = registry_for(weak_spec)
    assert registry.by_alias("telco-test", "champion").version == 1  # type: ignore[union-attr]
    loser = registry.version("telco-test", 2)
    assert loser.tags["retrainer.outcome"] == "kept_champion"
    assert loser.tags["retrainer.compared_with"] == "1"
    assert "not better" in loser.tags["retrainer.reason"]


def test_bad_batch_is_rejected_and_the_champion_stays(
    telco: pd.DataFrame, telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    spec = retrainer.load_spec(write_spec())
    assert retrainer.run(spec).outcome == "promoted"
    bad = telco.copy()
    bad.loc[bad.sample(frac=0.3, random_state=1).index, "monthly_charges"] = None  # a null burst
    bad = pd.concat([bad, bad.head(300)], ignore_index=True)  # and duplicated rows
    telco_db(bad)

    result = retrainer.run(spec)

    assert result.outcome == "rejected"
    assert result.exit_code == 5
    failures = " | ".join(result.error.failures)  # type: ignore[union-attr]
    assert "monthly_charges: max_null_fraction" in failures
    assert "duplicated rows" in failures and "duplicated ids" in failures
    assert statuses(result)["validate"] == "rejected"
    registry = registry_for(spec)
    assert [v.version for v in registry.versions("telco-test")] == [1]
    assert registry.by_alias("telco-test", "champion").version == 1  # type: ignore[union-attr]


def test_evaluation_gate_rejects_without_registering(
    telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    telco_db()
    spec = retrainer.load_spec(write_spec(evaluation={"metric": "roc_auc", "thresholds": {"roc_auc": 0.99}}))

    result = retrainer.run(spec)

    assert result.outcome == "rejected"
    assert result.exit_code == 6
    assert "roc_auc" in result.reason and "< minimum 0.99" in result.reason
    assert registry_for(spec).versions("telco-test") == []


@pytest.mark.postgres
def test_new_rows_in_a_postgres_table_invalidate_the_extract_cache(
    telco: pd.DataFrame, pg_table: Callable[..., str], pg_url: str, write_spec: Callable[..., Path]
) -> None:
    table = pg_table(telco.iloc[:6000])
    spec = retrainer.load_spec(write_spec(source={"url": pg_url, "table": table}))
    first = retrainer.run(spec)
    assert first.outcome == "promoted"
    assert first.metrics["rows"] == 6000

    unchanged = retrainer.run(spec)
    assert statuses(unchanged)["extract"] == "cached"
    assert unchanged.outcome == "unchanged"

    pg_table(telco.iloc[6000:], if_exists="append")  # 1,043 new customers arrive
    refreshed = retrainer.run(spec)

    assert statuses(refreshed)["extract"] == "ran"
    assert refreshed.metrics["rows"] == len(telco)
    assert statuses(refreshed)["tune"] == "ran"
    assert refreshed.outcome in ("promoted", "kept_champion")
    assert refreshed.model_version == 2


def test_failed_run_leaves_no_trace_in_the_registry_and_resumes(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    telco_db()
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    broken = retrainer.load_spec(write_spec(tracking={"uri": "http://127.0.0.1:9"}))  # nothing listens there
    with pytest.raises(RegistryError, match=r"127\.0\.0\.1:9"):
        retrainer.run(broken)
    record = next(RunStore(broken.store).iter_runs())
    assert record["status"] == "failed"
    assert "run again to resume" in record["reason"]

    fixed = retrainer.load_spec(write_spec())
    result = retrainer.run(fixed)

    assert result.outcome == "promoted"
    assert all(statuses(result)[name] == "cached" for name in CACHEABLE)


def trials_finished(store: Path) -> int:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    total = 0
    for journal in store.glob("work/tune-*/optuna.journal"):
        storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
        for study in storage.get_all_studies():
            total += len(storage.get_all_trials(study._study_id, deepcopy=False, states=done))
    return total


def tune_key(result: retrainer.RunResult) -> str:
    return next(stage.key for stage in result.stages if stage.name == "tune")


def test_run_killed_mid_tune_resumes_with_its_finished_trials(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    telco_db()
    models: dict[str, Any] = {"candidates": ["random_forest"], "n_trials": 6, "cv_folds": 3}
    path = write_spec(models=models)
    process = subprocess.Popen(
        [sys.executable, "-m", "retrainer.cli", "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while trials_finished(tmp_path / "store") < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = trials_finished(tmp_path / "store")
    assert 2 <= finished_before < 6, "the kill should land mid-tune"
    spec = retrainer.load_spec(path)
    assert registry_for(spec).versions("telco-test") == []  # killed before register: nothing registered

    result = retrainer.run(spec)

    assert result.outcome == "promoted"
    assert [statuses(result)[name] for name in ("extract", "validate", "split", "features")] == ["cached"] * 4
    assert statuses(result)["tune"] == "ran"
    assert trials_finished(tmp_path / "store") == 6  # the finished trials were kept, only the rest ran
    tune_log = (Path(spec.store) / "runs" / result.run_id / "logs" / "tune.log").read_text()
    assert "already finished" in tune_log

    # forcing tune recomputes it under the same cache key: a fresh study runs every trial again,
    # none is taken from the old one (`--force` forces every stage the same way)
    forced = retrainer.run(spec, from_stage="tune")

    assert statuses(forced)["tune"] == "ran"
    assert tune_key(forced) == tune_key(result)
    assert trials_finished(tmp_path / "store") == 6  # the old journal went with the work directory
    forced_log = (Path(spec.store) / "runs" / forced.run_id / "logs" / "tune.log").read_text()
    assert "(0 already finished)" in forced_log
    assert forced.metrics["test_roc_auc"] == result.metrics["test_roc_auc"]  # the same seed, the same search


@pytest.mark.postgres
def test_the_example_runs_from_postgresql_with_the_env_overlay(
    telco: pd.DataFrame, postgres_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/telco_churn with `--env postgres`, reading the customers table the example's setup loads."""
    import setup_data

    from retrainer.spec import ModelsSpec

    table = f"customers_{tmp_path.name[-8:].replace('-', '_')}".lower()
    url = postgres_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("TELCO_DATABASE_URL", url)
    setup_data.load(url, telco, table=table)
    try:
        example = Path(__file__).resolve().parents[1] / "examples" / "telco_churn" / "pipeline.yaml"
        spec = retrainer.load_spec(example, env="postgres")
        assert spec.source.url is not None and spec.source.url.startswith("postgresql+psycopg://")
        spec = spec.model_copy(
            update={
                "store": str(tmp_path / "store"),
                "source": spec.source.model_copy(update={"query": f"SELECT * FROM {table}"}),
                "models": ModelsSpec(candidates=["logistic_regression"], n_trials=1),
            }
        )

        result = retrainer.run(spec)

        assert result.outcome == "promoted", result.reason
        assert result.metrics["rows"] == 7043
        assert result.metrics["test_roc_auc"] > 0.80  # the example's own gate
    finally:
        from sqlalchemy import text

        with postgres_engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))


def test_the_run_store_can_be_any_fsspec_url(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], tmp_path: Path
) -> None:
    """fsspec's in-memory filesystem stands in for s3:// or gs://: nothing may assume a local path."""
    import fsspec

    telco_db()
    store = f"memory://retrainer-{tmp_path.name}"
    spec = retrainer.load_spec(write_spec(store=store, tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}))

    first = retrainer.run(spec)
    second = retrainer.run(spec)

    assert first.outcome == "promoted"
    assert second.outcome == "unchanged"
    memory = fsspec.filesystem("memory")
    assert memory.exists(f"/retrainer-{tmp_path.name}/runs/{first.run_id}/run.json")
    assert memory.glob(f"/retrainer-{tmp_path.name}/cache/train/*/model.joblib")
    assert not (tmp_path / "store").exists()


def test_stage_by_stage_with_one_run_id_matches_a_whole_run_and_retries_are_idempotent(
    telco_db: Callable[..., str], write_spec: Callable[..., Path]
) -> None:
    """What an orchestrator does: one process per stage, one run id, a task retried after success."""
    from retrainer.stages import default_pipeline

    telco_db()
    spec = retrainer.load_spec(write_spec())
    run_id = "orchestrated-1"
    for name in default_pipeline().names:
        step = retrainer.run(spec, until=name, run_id=run_id)
        assert statuses(step)[name] == "ran"
    assert step.outcome == "promoted" and step.model_version == 1

    retried = retrainer.run(spec, until="promote", run_id=run_id)  # e.g. Airflow retrying the last task

    assert set(statuses(retried).values()) == {"cached"}
    assert retried.outcome == "promoted"
    assert [v.version for v in registry_for(spec).versions("telco-test")] == [1]
    record = RunStore(spec.store).read_run(run_id)
    assert [s["name"] for s in record["stages"]] == default_pipeline().names
