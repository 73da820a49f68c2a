"""retrainer.contract on the real Telco data: inferred once, written as YAML, and a bad batch (new
category, shifted range, null burst, duplicated id) reported per column with counts and examples."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainer.contract import check_contract, contract_path, infer_contract, read_contract, write_contract
from retrainer.errors import SpecError
from retrainer.spec import Spec, spec_from_dict
from retrainer.stages.validate import check_data


def telco_spec(tmp_path: Path, **validation: Any) -> Spec:
    return spec_from_dict(
        {
            "name": "telco",
            "source": {"path": "x.csv"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "validation": {"contract": "infer", **validation},
            "spec_path": str(tmp_path / "pipeline.yaml"),
        }
    )


def bad_batch(telco: pd.DataFrame) -> pd.DataFrame:
    batch = telco.sample(2_000, random_state=0).reset_index(drop=True)
    batch.loc[:39, "contract"] = "Three year"  # a new category, 40 rows
    batch["monthly_charges"] = batch["monthly_charges"] * 1.5  # a shifted range
    batch.loc[100:699, "tenure"] = np.nan  # a null burst, 600 rows
    batch.loc[5, "customer_id"] = batch.loc[6, "customer_id"]  # one duplicated id
    return batch


def test_contract_inferred_from_telco_is_reviewable_yaml_beside_the_spec(tmp_path: Path, telco: pd.DataFrame) -> None:
    spec = telco_spec(tmp_path)
    path = contract_path(spec)

    assert write_contract(path, infer_contract(telco, spec, "run-1"))

    assert path == tmp_path / "pipeline.contract.yaml"
    text = path.read_text()
    assert text.startswith("# Data contract of pipeline 'telco'")
    columns = yaml.safe_load(text)["columns"]
    assert columns["contract"] == {
        "type": "string",
        "categories": ["Month-to-month", "One year", "Two year"],
        "max_null_fraction": 0.02,
    }
    assert columns["tenure"]["type"] == "integer" and columns["tenure"]["min"] == 0
    assert columns["tenure"]["max"] >= telco["tenure"].max()
    assert columns["senior_citizen"]["min"] == 0 and columns["senior_citizen"]["max"] == 1
    assert columns["customer_id"]["unique"] is True and "categories" not in columns["customer_id"]
    assert check_contract(telco, read_contract(path)) == []  # the batch it came from passes


def test_a_written_contract_is_never_overwritten(tmp_path: Path, telco: pd.DataFrame) -> None:
    spec = telco_spec(tmp_path)
    path = contract_path(spec)
    path.write_text("# reviewed by hand\ncolumns: {tenure: {type: integer, min: 0, max: 100}}\n")

    assert not write_contract(path, infer_contract(telco, spec))
    assert path.read_text().startswith("# reviewed by hand")


def test_bad_batch_reports_every_violation_by_column_with_counts_and_examples(
    tmp_path: Path, telco: pd.DataFrame
) -> None:
    contract = infer_contract(telco, telco_spec(tmp_path))

    violations = {(v.column, v.rule.split()[0]): v for v in check_contract(bad_batch(telco), contract)}

    assert set(violations) == {
        ("contract", "categories"),
        ("monthly_charges", "range"),
        ("tenure", "max_null_fraction"),
        ("customer_id", "unique"),
    }
    assert violations["contract", "categories"].count == 40
    assert violations["contract", "categories"].examples == ["Three year"]
    shifted = telco["monthly_charges"] * 1.5
    expected_outside = int((shifted > contract["columns"]["monthly_charges"]["max"]).sum())
    assert 0 < violations["monthly_charges", "range"].count <= 2_000
    assert violations["monthly_charges", "range"].count == pytest.approx(expected_outside * 2_000 / len(telco), rel=0.2)
    assert all(
        v > contract["columns"]["monthly_charges"]["max"] for v in violations["monthly_charges", "range"].examples
    )
    assert violations["tenure", "max_null_fraction"].count == 600
    assert "600 nulls (30.0%" in violations["tenure", "max_null_fraction"].message
    assert violations["customer_id", "unique"].count == 2  # both rows that share the id


def test_missing_column_and_wrong_type_are_violations(tmp_path: Path, telco: pd.DataFrame) -> None:
    contract = infer_contract(telco, telco_spec(tmp_path))
    batch = telco.drop(columns=["partner"]).head(500).copy()
    batch["tenure"] = batch["tenure"].astype(float) + 0.5

    violations = {(v.column, v.rule): v for v in check_contract(batch, contract)}

    assert violations["partner", "column missing"].count == 1
    assert violations["tenure", "type integer"].count == 500


def test_enforce_without_a_contract_file_is_a_clear_spec_error(tmp_path: Path, telco: pd.DataFrame) -> None:
    from retrainer.stages.validate import contract_checks

    spec = telco_spec(tmp_path, contract="enforce")

    with pytest.raises(SpecError, match=r"'enforce' but .*pipeline\.contract\.yaml does not exist"):
        contract_checks(telco, spec)


def test_freshness_rejects_a_stale_batch_against_the_run_date() -> None:
    frame = pd.DataFrame(
        {
            "t": pd.date_range("2026-01-01", periods=30, freq="D"),
            "y": ["Yes", "No"] * 15,
        }
    )
    spec = spec_from_dict(
        {
            "name": "t",
            "source": {"path": "x.csv"},
            "target": "y",
            "time_column": "t",
            "validation": {"min_rows": 1, "max_age": "2d"},
        }
    )

    fresh = next(c for c in check_data(frame, spec, as_of=datetime(2026, 1, 31)) if c.name == "freshness")
    stale = next(c for c in check_data(frame, spec, as_of=datetime(2026, 2, 10)) if c.name == "freshness")

    assert fresh.passed and fresh.observed == 24.0
    assert not stale.passed and "is 11.0 days old (maximum 2d)" in stale.message


def test_max_age_without_time_column_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"max_age .* needs 'time_column'"):
        spec_from_dict({"name": "t", "source": {"path": "x.csv"}, "target": "y", "validation": {"max_age": "1d"}})


def test_a_column_given_twice_in_a_reviewed_contract_is_an_error(tmp_path: Path) -> None:
    """A reviewer who adds a column's rule below the inferred one must not lose either without a word."""
    path = tmp_path / "contract.yaml"
    path.write_text("columns:\n  tenure: {type: integer, min: 0}\n  churn: {type: string}\n  tenure: {type: string}\n")
    with pytest.raises(SpecError) as info:
        read_contract(path)
    assert "duplicate key 'tenure' on lines 2 and 4" in info.value.message
