"""Contracts, drift and the leakage guard through real pipeline runs: the real Telco data in a real
PostgreSQL table, a real MLflow store (SQLite in tmp)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.errors import DataValidationError, DriftBlocked, LeakageFound
from retrainer.exporters.airflow import check_prerequisites
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.stages.drift import PROFILE_ARTIFACT
from retrainer.store import RunStore

FASTEST = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}


def pg_spec(
    write_spec: Callable[..., Path], pg_url: str, table: str, name: str = "pipeline.yaml", **sections: Any
) -> Path:
    return write_spec(name, source={"url": pg_url, "table": table}, models=FASTEST, **sections)


def statuses(result: retrainer.RunResult) -> dict[str, str]:
    return {stage.name: stage.status for stage in result.stages}


def test_contract_inferred_on_the_first_run_then_a_bad_batch_is_rejected_with_per_column_counts(
    pg_table: Callable[[pd.DataFrame], str],
    pg_url: str,
    write_spec: Callable[..., Path],
    telco: pd.DataFrame,
    tmp_path: Path,
) -> None:
    table = pg_table(telco)
    validation = {"min_rows": 1000, "max_null_fraction": 0.5, "contract": "infer"}
    spec = retrainer.load_spec(pg_spec(write_spec, pg_url, table, validation=validation))

    first = retrainer.run(spec, until="validate")

    contract = tmp_path / "pipeline.contract.yaml"
    assert first.outcome == "partial" and contract.exists()
    assert "contract written to pipeline.contract.yaml" in first.stages[-1].summary
    written = contract.read_text()
    highest = yaml.safe_load(written)["columns"]["total_charges"]["max"]
    batch = telco.sample(3_000, random_state=1).reset_index(drop=True)
    batch.loc[:24, "payment_method"] = "Crypto"  # a new category
    batch["total_charges"] = batch["total_charges"] + 20_000  # a shifted range
    batch.loc[:899, "online_security"] = None  # a null burst (30 %)
    pg_table(batch)

    second = retrainer.run(spec, until="validate")

    assert second.outcome == "rejected" and statuses(second)["validate"] == "rejected"
    assert isinstance(second.error, DataValidationError)
    failures = "\n".join(second.error.failures)
    print(failures)
    assert "payment_method: contract categories: 25 rows break categories (e.g. 'Crypto')" in failures
    outside = int((batch["total_charges"] > highest).sum())
    assert f"total_charges: contract range [0, {highest}]: {outside:,} rows break range [0, {highest}]" in failures
    assert "online_security: contract max_null_fraction: 900 nulls (30.0%" in failures
    assert contract.read_text() == written  # a rejected batch never rewrites the contract


@pytest.mark.slow
def test_drift_against_the_champion_report_block_and_retrain(
    pg_table: Callable[[pd.DataFrame], str],
    pg_url: str,
    write_spec: Callable[..., Path],
    telco: pd.DataFrame,
    tmp_path: Path,
) -> None:
    table = pg_table(telco)
    report_path = pg_spec(write_spec, pg_url, table)
    spec = retrainer.load_spec(report_path)
    first = retrainer.run(spec)
    assert first.outcome == "promoted", first.reason
    assert "no reference" in next(s.summary for s in first.stages if s.name == "drift")
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    champion = registry.by_alias("telco-test", "champion")
    assert champion is not None and champion.run_id
    profile = registry.run_json_artifact(champion.run_id, PROFILE_ARTIFACT)
    assert profile["rows"] == 5634 and profile["columns"]["monthly_charges"]["kind"] == "numeric"
    assert profile["score"]["kind"] == "numeric"

    # the same customers, prices raised 30 % in place: same row count, so the same source state
    shifted = telco.assign(monthly_charges=telco["monthly_charges"] * 1.3)
    pg_table(shifted)
    context = {"run_id": "scheduled__drift", "dag_run": None, "logical_date": None}
    retrain_path = pg_spec(write_spec, pg_url, table, "retrain.yaml", drift={"policy": "retrain"})
    assert check_prerequisites(str(report_path), None, spec.store, context) is False  # nothing new: skip
    before = {path for path in Path(spec.store).rglob("*") if path.is_file()}
    assert check_prerequisites(str(retrain_path), None, spec.store, context) is True  # but it drifted: run
    left = {path for path in Path(spec.store).rglob("*") if path.is_file()} - before
    assert not [path for path in left if path.suffix == ".parquet"], "the check's scratch extract was left behind"

    block = retrainer.load_spec(pg_spec(write_spec, pg_url, table, "block.yaml", drift={"policy": "block"}))
    blocked = retrainer.run(block, force=True)  # force: an in-place update keeps the extract cache key

    assert blocked.outcome == "rejected" and isinstance(blocked.error, DriftBlocked)
    assert "monthly_charges" in blocked.error.drifted_features
    assert statuses(blocked)["drift"] == "rejected" and "tune" not in statuses(blocked)
    assert [v.version for v in registry.versions("telco-test")] == [1]
    summary = json.loads(Path(spec.store, "runs.jsonl").read_text().splitlines()[-1])
    assert summary["outcome"] == "rejected" and "monthly_charges" in summary["drifted_features"]

    reported = retrainer.run(spec, force=True)

    assert reported.ok, reported.reason
    drift_summary = next(s.summary for s in reported.stages if s.name == "drift")
    assert "drifted vs champion v1: " in drift_summary and "monthly_charges" in drift_summary
    version = registry.version("telco-test", reported.model_version)  # type: ignore[arg-type]
    metrics = registry.client.get_run(version.run_id).data.metrics  # type: ignore[arg-type]
    assert metrics["drift.psi.monthly_charges"] > 0.2
    assert metrics["drift.psi.tenure"] < 0.2 and metrics["drift.drifted_features"] >= 1
    summary = json.loads(Path(spec.store, "runs.jsonl").read_text().splitlines()[-1])
    assert "monthly_charges" in summary["drifted_features"]


def test_a_leakage_column_added_to_the_data_is_caught_and_allowed_when_listed(
    pg_table: Callable[[pd.DataFrame], str],
    pg_url: str,
    write_spec: Callable[..., Path],
    telco: pd.DataFrame,
) -> None:
    rng = np.random.default_rng(5)
    leaky = telco.assign(retention_offer=telco["churn"].eq("Yes") * 1.0 + rng.normal(0, 0.2, len(telco)))
    table = pg_table(leaky)
    spec = retrainer.load_spec(pg_spec(write_spec, pg_url, table))

    caught = retrainer.run(spec, until="leakage")

    assert caught.outcome == "rejected" and isinstance(caught.error, LeakageFound)
    assert caught.reason.startswith("target leakage in retention_offer: retention_offer: single-feature AUC 0.99")
    assert statuses(caught)["leakage"] == "rejected"
    allowed = retrainer.load_spec(pg_spec(write_spec, pg_url, table, leakage={"allow": ["retention_offer"]}))
    passed = retrainer.run(allowed, until="leakage")
    assert passed.outcome == "partial" and "retention_offer allowed" in passed.stages[-1].summary
