"""Data contracts: what a good batch looked like, inferred once, reviewed as YAML, checked with pandera.

`infer_contract` reads a frame that passed the spec's gates and writes, per column, its type
(integer, number, string, boolean, datetime), its range (widened by 10 % of the observed span, and
never below zero for a column that was never negative), its categories (string and boolean columns
with at most 50 distinct values), its null limit (the observed share + 2 points) and, for the id
column, uniqueness. The file (`<spec stem>.contract.yaml` beside the spec) is meant to be committed
and edited; it is never overwritten by a run.

`check_contract` turns it into a pandera `DataFrameSchema`, validates lazily (every failure, not
the first) and folds pandera's failure cases into one result per column and rule, with the number
of offending rows and a few example values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from retrainer.errors import SpecError
from retrainer.strict_yaml import parse_yaml

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec

MAX_CATEGORIES = 50
NULL_SLACK = 0.02
RANGE_SLACK = 0.10
N_EXAMPLES = 3


@dataclass(frozen=True)
class Violation:
    """One broken rule of the contract: where, how many rows, and a few offending values."""

    column: str | None
    rule: str
    count: int
    examples: list[Any] = field(default_factory=list)
    message: str = ""


def contract_path(spec: Spec) -> Path:
    """`validation.contract_path`, else `<spec stem>.contract.yaml` beside the spec file."""
    if spec.validation.contract_path:
        path = Path(spec.validation.contract_path)
        if not path.is_absolute() and spec.spec_path:
            path = Path(spec.spec_path).parent / path
        return path
    if not spec.spec_path:
        raise SpecError(
            "validation.contract needs a place for the contract file: the spec was not loaded from a file",
            hint="set validation.contract_path",
        )
    spec_file = Path(spec.spec_path)
    return spec_file.with_name(f"{spec_file.stem}.contract.yaml")


def _column_type(series: pd.Series) -> str:
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_numeric_dtype(dtype):
        present = series.dropna()
        integral = pd.api.types.is_integer_dtype(dtype) or bool((present % 1 == 0).all())
        return "integer" if integral and len(present) else "number"
    return "string"


def infer_column(series: pd.Series, *, unique: bool = False) -> dict[str, Any]:
    """The contract of one column, from a batch known to be good."""
    kind = _column_type(series)
    present = series.dropna()
    rule: dict[str, Any] = {"type": kind}
    if kind in ("integer", "number") and len(present):
        low, high = float(present.min()), float(present.max())
        margin = (high - low) * RANGE_SLACK
        if kind == "integer":  # a whole margin, so a 0/1 column stays within [0, 1]
            margin = math.floor(margin)
        lower, upper = low - margin, high + margin
        if low >= 0:
            lower = max(lower, 0.0)
        if kind == "integer":
            lower, upper = math.floor(lower), math.ceil(upper)
        rule["min"], rule["max"] = _plain(lower), _plain(upper)
    if kind in ("string", "boolean") and not unique:
        values = present.astype(str).unique()
        if len(values) <= MAX_CATEGORIES:
            rule["categories"] = sorted(str(v) for v in values)
    rule["max_null_fraction"] = round(min(1.0, float(series.isna().mean()) + NULL_SLACK), 4) if len(series) else 1.0
    if unique:
        rule["unique"] = True
    return rule


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(float(value), 6)


def infer_contract(frame: pd.DataFrame, spec: Spec, run_id: str = "") -> dict[str, Any]:
    columns = {str(c): infer_column(frame[c], unique=str(c) == spec.id_column) for c in frame.columns}
    return {
        "pipeline": spec.name,
        "inferred": {"run_id": run_id, "rows": len(frame), "at": datetime.now(UTC).isoformat(timespec="seconds")},
        "columns": columns,
    }


def write_contract(path: Path, contract: dict[str, Any]) -> bool:
    """Write the contract unless a file is already there (a reviewed contract is never overwritten)."""
    if path.exists():
        return False
    header = (
        f"# Data contract of pipeline {contract['pipeline']!r}, inferred by retrainer from "
        f"{contract['inferred']['rows']:,} rows (run {contract['inferred']['run_id'] or '-'}).\n"
        "# Review it and commit it: later runs reject batches that break it. Edit freely; delete it to infer\n"
        "# it again from the next good batch. Per column: type, min/max, categories, max_null_fraction, unique.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(contract, sort_keys=False, allow_unicode=True, width=120))
    return True


def read_contract(path: Path) -> dict[str, Any]:
    try:
        data = parse_yaml(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(
            f"{path}: malformed contract YAML: {error}", hint="fix it or delete it to infer again"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        raise SpecError(f"{path}: a contract needs a 'columns' mapping", hint="delete it to infer it again")
    return data


def _type_check(kind: str) -> Any:
    import pandas as pd
    import pandera.pandas as pa

    def integer(series: pd.Series) -> pd.Series:
        numbers = pd.to_numeric(series, errors="coerce")
        return numbers.notna() & (numbers % 1 == 0)

    tests = {
        "integer": integer,
        "number": lambda s: pd.to_numeric(s, errors="coerce").notna(),
        "boolean": lambda s: s.astype(str).str.lower().isin(["true", "false", "1", "0", "1.0", "0.0"]),
        "datetime": lambda s: pd.to_datetime(s, errors="coerce").notna(),
        "string": lambda s: s.map(lambda v: isinstance(v, str)),
    }
    if kind not in tests:
        raise SpecError(f"contract type {kind!r} is not one of {', '.join(tests)}")
    return pa.Check(tests[kind], name=f"type {kind}")


def to_schema(contract: dict[str, Any]) -> Any:
    """The contract as a pandera DataFrameSchema (extra columns are allowed)."""
    import pandas as pd
    import pandera.pandas as pa

    columns = {}
    for name, rule in contract["columns"].items():
        rule = rule or {}
        checks = [_type_check(rule.get("type", "string"))]
        if rule.get("min") is not None or rule.get("max") is not None:
            low = rule.get("min", -math.inf)
            high = rule.get("max", math.inf)
            checks.append(
                pa.Check(
                    lambda s, low=low, high=high: pd.to_numeric(s, errors="coerce").between(low, high),
                    name=f"range [{rule.get('min')}, {rule.get('max')}]",
                )
            )
        if rule.get("categories") is not None:
            allowed = {str(v) for v in rule["categories"]}
            checks.append(pa.Check(lambda s, allowed=allowed: s.astype(str).isin(allowed), name="categories"))
        limit = rule.get("max_null_fraction")
        if limit is not None:
            checks.append(
                pa.Check(
                    lambda s, limit=limit: bool(s.isna().mean() <= limit),
                    ignore_na=False,
                    name=f"max_null_fraction {limit}",
                )
            )
        columns[name] = pa.Column(checks=checks, nullable=True, unique=bool(rule.get("unique")), coerce=False)
    return pa.DataFrameSchema(columns, strict=False)


def check_contract(frame: pd.DataFrame, contract: dict[str, Any]) -> list[Violation]:
    """Every violation of the contract in `frame`, one per column and rule, with counts and examples."""
    import pandera.pandas as pa

    try:
        to_schema(contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return _violations(errors.failure_cases, frame)
    return []


def _violations(cases: pd.DataFrame, frame: pd.DataFrame) -> list[Violation]:
    violations = []
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        column_name = None if column != column or column is None else str(column)
        check_name = str(check)
        if check_name == "column_in_dataframe":
            for missing in group["failure_case"]:
                violations.append(Violation(str(missing), "column missing", 1, [], "required column is missing"))
            continue
        if check_name.startswith("max_null_fraction") and column_name in frame.columns:
            nulls = int(frame[column_name].isna().sum())
            share = nulls / max(len(frame), 1)
            message = f"{nulls:,} nulls ({share:.1%}; contract allows {check_name.split()[-1]})"
            violations.append(Violation(column_name, "max_null_fraction", nulls, [], message))
            continue
        examples = list(dict.fromkeys(_plain_value(v) for v in group["failure_case"]))[:N_EXAMPLES]
        count = len(group)
        shown = ", ".join(repr(v) for v in examples)
        rule = "unique" if check_name == "field_uniqueness" else check_name
        message = f"{count:,} rows break {rule}" + (f" (e.g. {shown})" if shown else "")
        violations.append(Violation(column_name, rule, count, examples, message))
    return violations


def _plain_value(value: Any) -> Any:
    value = value.item() if hasattr(value, "item") else value
    return round(value, 6) if isinstance(value, float) else value
