"""stages.validate.check_data on small synthetic frames: one edge case per test, every failure reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.errors import DataValidationError, SpecError
from retrainer.pipeline import RunContext
from retrainer.spec import Spec, spec_from_dict
from retrainer.stages.validate import Check, check_data, validate
from retrainer.store import RunStore


def make_spec(validation: dict[str, Any] | None = None, **top: Any) -> Spec:
    data: dict[str, Any] = {
        "name": "t",
        "source": {"path": "x.csv"},
        "target": "y",
        "validation": {"min_rows": 1, **(validation or {})},
    }
    data.update(top)
    return spec_from_dict(data)


def make_frame(n: int = 20) -> pd.DataFrame:
    """n distinct rows, no nulls, a balanced Yes/No target."""
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": np.arange(n, dtype=float),
            "cat": ["a", "b"] * (n // 2),
            "y": ["Yes", "No"] * (n // 2),
        }
    )


def failing(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]


def only(checks: list[Check], name: str, column: str | None = None) -> Check:
    found = [c for c in checks if c.name == name and (column is None or c.column == column)]
    assert len(found) == 1, f"expected one {name!r} check, got {found}"
    return found[0]


def test_clean_frame_passes_every_check() -> None:
    checks = check_data(make_frame(), make_spec(id_column="id"))

    assert failing(checks) == []
    assert {c.name for c in checks} == {
        "min_rows",
        "target_balance",
        "max_null_fraction",
        "max_duplicate_fraction",
        "unique_ids",
    }


# ------------------------------------------------------------------------------------ rows


def test_min_rows_fails_below_the_minimum() -> None:
    check = only(check_data(make_frame(20), make_spec({"min_rows": 100})), "min_rows")

    assert not check.passed
    assert check.observed == 20
    assert check.message == "20 rows (minimum 100)"


def test_min_rows_passes_at_the_minimum() -> None:
    check = only(check_data(make_frame(20), make_spec({"min_rows": 20})), "min_rows")

    assert check.passed
    assert check.observed == 20


def test_empty_frame_fails_min_rows_and_target_balance() -> None:
    frame = make_frame(0)

    checks = check_data(frame, make_spec())

    assert not only(checks, "min_rows").passed
    assert only(checks, "target_balance").message == "target has no labels"
    assert not any(c.name == "max_duplicate_fraction" for c in checks)


# ------------------------------------------------------------------------------------ nulls


def test_null_fraction_above_the_global_limit() -> None:
    frame = make_frame(20)
    frame.loc[:5, "x"] = np.nan  # 6 of 20 = 30 %

    checks = check_data(frame, make_spec({"max_null_fraction": 0.2}))

    check = only(checks, "max_null_fraction")
    assert not check.passed
    assert check.column == "x"
    assert check.observed == pytest.approx(0.3)
    assert "30.0% nulls (maximum 20.0%)" in check.message


def test_null_fraction_at_the_limit_passes() -> None:
    frame = make_frame(20)
    frame.loc[:3, "x"] = np.nan  # 4 of 20 = exactly 20 %

    check = only(check_data(frame, make_spec({"max_null_fraction": 0.2})), "max_null_fraction")

    assert check.passed
    assert check.observed == pytest.approx(0.2)
    assert "worst 20.0%" in check.message


def test_every_column_over_the_null_limit_gets_its_own_check() -> None:
    frame = make_frame(20)
    frame.loc[:9, ["x", "cat"]] = np.nan

    nulls = [c for c in check_data(frame, make_spec()) if c.name == "max_null_fraction"]

    assert sorted(c.column or "" for c in nulls) == ["cat", "x"]
    assert not any(c.passed for c in nulls)


def test_per_column_null_limit_relaxes_the_global_one() -> None:
    frame = make_frame(20)
    frame.loc[:5, "x"] = np.nan  # 30 %

    checks = check_data(frame, make_spec({"max_null_fraction": 0.2, "columns": {"x": {"max_null_fraction": 0.5}}}))

    assert only(checks, "max_null_fraction").passed


def test_per_column_null_limit_tightens_the_global_one() -> None:
    frame = make_frame(20)
    frame.loc[0, "cat"] = None  # 5 %, fine globally

    checks = check_data(frame, make_spec({"max_null_fraction": 0.2, "columns": {"cat": {"max_null_fraction": 0.0}}}))

    check = only(checks, "max_null_fraction")
    assert not check.passed
    assert check.column == "cat"
    assert "5.0% nulls (maximum 0.0%)" in check.message


# ------------------------------------------------------------------------------------ duplicates


def test_duplicated_rows() -> None:
    frame = make_frame(20)
    frame = pd.concat([frame, frame.iloc[:5]], ignore_index=True)  # 5 of 25 rows repeat earlier ones

    check = only(check_data(frame, make_spec({"max_duplicate_fraction": 0.1})), "max_duplicate_fraction")

    assert not check.passed
    assert check.observed == pytest.approx(0.2)
    assert "20.00% duplicated rows (maximum 10.00%)" in check.message


def test_duplicated_rows_within_the_limit_pass() -> None:
    frame = pd.concat([make_frame(20), make_frame(20).iloc[:1]], ignore_index=True)

    assert only(check_data(frame, make_spec({"max_duplicate_fraction": 0.05})), "max_duplicate_fraction").passed


def test_duplicated_ids_in_otherwise_distinct_rows() -> None:
    frame = make_frame(20)
    frame.loc[:3, "id"] = 0  # ids 0,0,0,0: three repeats of 20

    checks = check_data(frame, make_spec(id_column="id"))

    assert only(checks, "max_duplicate_fraction").passed  # the rows themselves all differ
    check = only(checks, "unique_ids")
    assert not check.passed
    assert check.column == "id"
    assert check.observed == pytest.approx(0.15)
    assert "15.00% duplicated ids" in check.message


def test_missing_id_column() -> None:
    check = only(check_data(make_frame().drop(columns="id"), make_spec(id_column="id")), "id_present")

    assert not check.passed
    assert check.message == "id column 'id' is missing"


def test_no_id_checks_without_an_id_column() -> None:
    frame = make_frame(20)
    frame["id"] = 1

    assert not any(c.name in ("unique_ids", "id_present") for c in check_data(frame, make_spec()))


# ------------------------------------------------------------------------------------ column rules


def test_missing_required_column() -> None:
    checks = check_data(make_frame(), make_spec({"columns": {"age": {"min": 0}}}))

    check = only(checks, "column_present")
    assert not check.passed
    assert check.column == "age"
    assert check.message == "required column 'age' is missing"
    assert not any(c.name == "range" for c in checks)  # no further checks on a missing column


def test_required_column_with_no_rules_is_only_checked_for_presence() -> None:
    assert not any(c.column == "cat" for c in check_data(make_frame(), make_spec({"columns": {"cat": {}}})))
    assert (
        only(check_data(make_frame().drop(columns="cat"), make_spec({"columns": {"cat": {}}})), "column_present").column
        == "cat"
    )


@pytest.mark.parametrize(
    ("column", "dtype", "passed"),
    [
        ("x", "int", False),
        ("x", "float", True),
        ("x", "numeric", True),
        ("id", "int", True),
        ("id", "numeric", True),
        ("cat", "string", True),  # object columns of text count as strings
        ("cat", "numeric", False),
        ("x", "string", False),
        ("cat", "datetime", False),
        ("x", "bool", False),
    ],
)
def test_dtype_rule(column: str, dtype: str, passed: bool) -> None:
    frame = make_frame()

    check = only(check_data(frame, make_spec({"columns": {column: {"dtype": dtype}}})), "dtype")

    assert check.passed is passed
    assert check.column == column
    assert check.observed == str(frame[column].dtype)
    assert f"(expected {dtype})" in check.message


def test_dtype_rule_datetime_and_bool() -> None:
    frame = make_frame(4)
    frame["when"] = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    frame["flag"] = [True, False, True, False]

    checks = check_data(frame, make_spec({"columns": {"when": {"dtype": "datetime"}, "flag": {"dtype": "bool"}}}))

    assert only(checks, "dtype", "when").passed
    assert only(checks, "dtype", "flag").passed


def test_range_violations_are_counted() -> None:
    frame = make_frame(20)  # x is 0..19

    check = only(check_data(frame, make_spec({"columns": {"x": {"min": 2, "max": 10}}})), "range")

    assert not check.passed
    assert check.observed == 11  # 0, 1 and 11..19
    assert "11 values outside [2.0, 10.0]" in check.message
    assert "observed 0.0..19.0" in check.message


def test_range_with_only_a_minimum() -> None:
    frame = make_frame(20)
    frame.loc[0, "x"] = -5

    check = only(check_data(frame, make_spec({"columns": {"x": {"min": 0}}})), "range")

    assert not check.passed
    assert check.observed == 1
    assert "[0.0, None]" in check.message


def test_range_ignores_nulls_and_counts_non_numeric_values() -> None:
    frame = make_frame(4)
    frame["v"] = pd.Series(["1", "2", None, "oops"], dtype=object)

    check = only(
        check_data(frame, make_spec({"max_null_fraction": 1.0, "columns": {"v": {"min": 0, "max": 5}}})), "range"
    )

    assert not check.passed
    assert check.observed == 1  # "oops" is not a number; the null is not counted


def test_range_within_bounds_passes() -> None:
    check = only(check_data(make_frame(20), make_spec({"columns": {"x": {"min": 0, "max": 19}}})), "range")

    assert check.passed
    assert check.observed == 0


def test_allowed_values_report_count_and_examples() -> None:
    frame = make_frame(20)
    frame.loc[:2, "cat"] = "zzz"  # 3 "zzz" and 9 "b" are not allowed

    check = only(check_data(frame, make_spec({"columns": {"cat": {"allowed": ["a"]}}})), "allowed_values")

    assert not check.passed
    assert check.observed == 12
    assert check.message.startswith("12 values not allowed (e.g. ")
    assert "'b'" in check.message
    assert "'zzz'" in check.message


def test_allowed_values_all_present_passes() -> None:
    check = only(
        check_data(make_frame(), make_spec({"columns": {"cat": {"allowed": ["a", "b", "c"]}}})), "allowed_values"
    )

    assert check.passed
    assert check.message == "0 values not allowed"


def test_allowed_values_compare_as_text_and_ignore_nulls() -> None:
    frame = make_frame(4)
    frame["code"] = pd.Series([1, 2, 2, 1], dtype="int64")
    frame["flag"] = [True, False, True, False]

    checks = check_data(
        frame, make_spec({"columns": {"code": {"allowed": [1, 2]}, "flag": {"allowed": [True, False]}}})
    )

    assert only(checks, "allowed_values", "code").passed
    assert only(checks, "allowed_values", "flag").passed


def test_allowed_values_on_an_integer_column_with_nulls() -> None:
    frame = make_frame(4)
    frame["code"] = [0, 1, None, 1]  # how an INTEGER column with a NULL arrives from SQL

    check = only(
        check_data(frame, make_spec({"max_null_fraction": 0.5, "columns": {"code": {"allowed": [0, 1]}}})),
        "allowed_values",
    )

    assert check.passed, check.message


# ------------------------------------------------------------------------------------ target


def test_single_class_target() -> None:
    frame = make_frame(20)
    frame["y"] = "Yes"

    check = only(check_data(frame, make_spec()), "target_balance")

    assert not check.passed
    assert check.column == "y"
    assert check.observed == 0.0
    assert "100.0% of rows" in check.message


def test_single_negative_class_target() -> None:
    frame = make_frame(20)
    frame["y"] = "No"

    check = only(check_data(frame, make_spec()), "target_balance")

    assert not check.passed
    assert check.observed == 0.0


def test_rare_class_below_min_class_fraction() -> None:
    frame = make_frame(20)
    frame["y"] = ["Yes"] + ["No"] * 19  # 5 %

    checks = check_data(frame, make_spec({"min_class_fraction": 0.1}))

    check = only(checks, "target_balance")
    assert not check.passed
    assert check.observed == pytest.approx(0.05)
    assert "rarer class 5.0% (minimum 10.0%)" in check.message


def test_balance_uses_the_given_positive_label() -> None:
    frame = make_frame(20)
    frame["y"] = ["churned"] * 5 + ["stayed"] * 15

    check = only(check_data(frame, make_spec(target={"column": "y", "positive": "churned"})), "target_balance")

    assert check.passed
    assert "positive class 'churned' is 25.0% of rows" in check.message


def test_missing_target_column() -> None:
    checks = check_data(make_frame().drop(columns="y"), make_spec())

    check = only(checks, "target_present")
    assert not check.passed
    assert check.column == "y"
    assert check.message == "target column 'y' is missing"
    assert not any(c.name == "target_balance" for c in checks)


def test_ambiguous_target_labels() -> None:
    frame = make_frame(20)
    frame["y"] = ["cat", "dog"] * 10  # equally common: neither is the rarer

    check = only(check_data(frame, make_spec()), "target_labels")

    assert not check.passed
    assert "cannot tell which of" in check.message


def test_more_than_two_target_labels() -> None:
    frame = make_frame(20)
    frame["y"] = ["a", "b", "c", "d"] * 5

    check = only(check_data(frame, make_spec(task="binary")), "target_labels")

    assert not check.passed
    assert "4 distinct labels" in check.message


def test_four_text_labels_make_a_multiclass_target_with_its_balance_check() -> None:
    frame = make_frame(20)
    frame["y"] = ["a", "b", "c", "d"] * 5

    check = only(check_data(frame, make_spec()), "target_balance")

    assert check.passed
    assert check.message.startswith("4 classes; rarest")


def test_a_whole_number_target_with_few_values_asks_for_the_task() -> None:
    frame = make_frame(20)
    frame["y"] = [1, 2, 3, 4, 5] * 4

    with pytest.raises(SpecError, match="classes or amounts") as raised:
        check_data(frame, make_spec())
    assert "task: multiclass" in (raised.value.hint or "")


def test_a_regression_target_with_inf_fails_in_one_line() -> None:
    frame = make_frame(20)
    frame["y"] = [float(i) + 0.5 for i in range(20)]
    frame.loc[3, "y"] = float("inf")

    check = only(check_data(frame, make_spec(task="regression")), "target_labels")

    assert not check.passed
    assert "1 infinite" in check.message


# ------------------------------------------------------------------------------------ all at once


def test_every_failure_is_reported_at_once() -> None:
    frame = make_frame(20)
    frame.loc[:3, "id"] = 0  # duplicated ids

    spec = make_spec({"min_rows": 50, "columns": {"age": {"min": 0}}}, id_column="id")  # too few rows, missing column

    failures = failing(check_data(frame, spec))

    assert sorted(c.name for c in failures) == ["column_present", "min_rows", "unique_ids"]


def test_validate_stage_raises_with_every_failure(tmp_path: Path) -> None:
    frame = make_frame(20)
    frame["y"] = "Yes"  # single class
    frame.loc[:9, "x"] = np.nan  # 50 % nulls
    spec = make_spec({"min_rows": 100, "max_null_fraction": 0.2})  # written: gates
    ctx = RunContext(spec=spec, store=RunStore(str(tmp_path / "store")), run_id="test")

    with pytest.raises(DataValidationError) as info:
        validate(ctx, {"data": frame})

    assert info.value.message.startswith("data validation failed 3 checks: ")
    assert len(info.value.failures) == 3
    assert any(line.startswith("min_rows: 20 rows") for line in info.value.failures)
    assert any(line.startswith("y: target_balance:") for line in info.value.failures)
    assert any(line.startswith("x: max_null_fraction:") for line in info.value.failures)
    assert info.value.exit_code == 5


def test_validate_stage_returns_a_report_when_everything_passes(tmp_path: Path) -> None:
    ctx = RunContext(spec=make_spec(), store=RunStore(str(tmp_path / "store")), run_id="test")

    output = validate(ctx, {"data": make_frame()})

    report = output.artifacts["validation"]
    assert report["passed"] is True
    assert len(report["checks"]) == output.metrics["checks_passed"]
    assert all(check["passed"] for check in report["checks"])


def test_rows_without_a_label_or_an_id_are_counted_in_the_summary(tmp_path: Path) -> None:
    frame = make_frame(40).astype({"id": object, "y": object})
    frame.loc[:2, "y"] = None  # 3 rows without a label: split leaves them out
    frame.loc[10:11, "id"] = None  # 2 rows without an id
    spec = make_spec({"max_null_fraction": 0.2, "max_duplicate_fraction": 0.5}, id_column="id")
    ctx = RunContext(spec=spec, store=RunStore(str(tmp_path / "store")), run_id="test")

    output = validate(ctx, {"data": frame})

    assert "warning: 3 of 40 rows have no 'y' label and are left out" in output.summary
    assert "warning: 2 of 40 rows have a null 'id'" in output.summary
    assert len(output.artifacts["validation"]["warnings"]) == 2
    assert validate(ctx, {"data": make_frame(40)}).artifacts["validation"]["warnings"] == []


def test_a_default_threshold_warns_and_the_same_threshold_written_in_the_spec_rejects(tmp_path: Path) -> None:
    """Census-style data: a column half empty by design, repeated rows, a constant indicator."""
    frame = make_frame(40)
    frame.loc[:19, "x"] = np.nan  # half empty
    frame = pd.concat([frame, frame.head(4)], ignore_index=True)  # 4 repeated rows (9 %)
    frame["flag"] = 0  # one value in every row
    defaults = spec_from_dict({"name": "t", "source": {"path": "x.csv"}, "target": "y"})

    output = validate(RunContext(spec=defaults, store=RunStore(str(tmp_path / "a")), run_id="a"), {"data": frame})

    report = output.artifacts["validation"]
    assert report["passed"] is True
    warned = {(c["name"], c["column"]) for c in report["checks"] if not c["passed"]}
    assert warned == {("min_rows", None), ("max_null_fraction", "x"), ("max_duplicate_fraction", None),
                      ("constant_columns", "flag")}  # fmt: skip
    assert all(c["severity"] == "warn" for c in report["checks"] if not c["passed"])
    assert "warning: flag: constant_columns: one value (0) in all 44 rows; left out of the features" in output.summary
    assert "warning: x: max_null_fraction: 54.5% nulls (maximum 20.0%)" in output.summary
    assert output.metrics == {"checks_passed": 1.0, "checks_warned": 4.0}
    assert output.summary.startswith("1 check passed; warning: min_rows: 44 rows (minimum 100); ")

    written = spec_from_dict(
        {
            "name": "t",
            "source": {"path": "x.csv"},
            "target": "y",
            "validation": {"min_rows": 10, "max_null_fraction": 0.2, "reject_constant_columns": True},
        }
    )
    with pytest.raises(DataValidationError) as info:
        validate(RunContext(spec=written, store=RunStore(str(tmp_path / "b")), run_id="b"), {"data": frame})
    assert sorted(line.split(":")[0] for line in info.value.failures) == ["flag", "x"]  # duplicates still warn


def test_severity_overrides_either_way_and_what_makes_training_impossible_always_rejects(tmp_path: Path) -> None:
    frame = make_frame(40)
    frame.loc[:29, "x"] = np.nan
    spec = make_spec({"max_null_fraction": 0.2, "severity": {"max_null_fraction": "warn", "min_rows": "error"}})
    checks = check_data(frame, spec)
    assert only(checks, "max_null_fraction", "x").severity == "warn"
    assert only(checks, "min_rows").severity == "error"

    one_class = make_frame(40).assign(y="Yes")
    balance = only(check_data(one_class, make_spec()), "target_balance")
    assert not balance.passed and balance.severity == "error"  # no min_class_fraction written, still a gate
    empty = only(check_data(make_frame(0), make_spec()), "min_rows")
    assert empty.severity == "error"

    with pytest.raises(SpecError, match="unknown check 'nulls'; the checks are min_rows"):
        make_spec({"severity": {"nulls": "warn"}})


def test_a_column_rule_tolerates_mostly_and_can_only_warn() -> None:
    frame = make_frame(200)  # x is 0..199
    rule = {"min": 0, "max": 197}  # 2 values of 200 outside
    assert not only(check_data(frame, make_spec({"columns": {"x": rule}})), "range", "x").passed
    tolerant = only(check_data(frame, make_spec({"columns": {"x": {**rule, "mostly": 0.99}}})), "range", "x")
    assert tolerant.passed and "(2 tolerated: mostly 0.99)" in tolerant.message
    warned = only(check_data(frame, make_spec({"columns": {"x": {**rule, "severity": "warn"}}})), "range", "x")
    assert not warned.passed and warned.severity == "warn" and not warned.rejects


def test_constant_empty_and_identifier_columns_are_left_out_of_the_features() -> None:
    from retrainer.stages.features import build_preprocessor

    frame = make_frame(400)
    frame["flag"] = 0
    frame["empty"] = np.nan
    frame["name"] = [f"passenger {i}" for i in range(400)]  # an identifier posing as a category
    frame["kept"] = 1  # constant, but the spec names it
    spec = make_spec(features={"numeric": ["kept"]}, id_column="id")

    _, schema = build_preprocessor(frame, spec)

    assert schema["left_out"] == {
        "flag": "one value in every row",
        "empty": "empty in every row",
        "name": "400 distinct values: an identifier, not a category",
    }
    assert set(schema["inputs"]) == {"x", "cat", "kept"}
