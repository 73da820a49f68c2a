"""Validate: the data checks before any training.

Every check runs and returns a `Check`; only then does the stage decide, so the user sees every
failure at once, not the first one. A failed check is an error (the batch is rejected) or a warning
(reported, the run goes on): a threshold the spec writes is a gate, one left to its default warns
(`ValidationSpec.severity_of`), and what makes training impossible (no rows, one class, no target)
always rejects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError, SpecError
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.target import as_text, shown_labels
from retrainer.tasks import resolve as resolve_task
from retrainer.tasks import task_class

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import ColumnRule, Spec


@dataclass(frozen=True)
class Check:
    """The result of one check: which, on what column, and what was observed."""

    name: str
    passed: bool
    message: str
    column: str | None = None
    observed: float | str | None = None
    severity: str | None = None  # "error" | "warn"; None: the spec's (`ValidationSpec.severity_of`)

    @property
    def rejects(self) -> bool:
        return not self.passed and self.severity == "error"


def check_data(frame: pd.DataFrame, spec: Spec, as_of: datetime | None = None) -> list[Check]:
    """Run every validation check of the spec on `frame`; `as_of` (default: now) bounds the timestamps."""
    rules = spec.validation
    min_rows = int(rules.limit("min_rows"))
    checks = [
        Check(
            "min_rows",
            len(frame) >= min_rows,
            f"{len(frame):,} rows (minimum {min_rows:,})",
            observed=len(frame),
            severity="error" if not len(frame) else None,  # nothing to train on
        )
    ]
    checks += _target_checks(frame, spec)
    checks += _null_checks(frame, spec)
    checks += _duplicate_checks(frame, spec)
    for column, rule in rules.columns.items():
        checks += _column_checks(frame, column, rule)
    checks += _feature_checks(frame, spec)
    checks += _time_checks(frame, spec, as_of)
    if rules.max_age and spec.time_column:
        checks.append(_freshness_check(frame, spec.time_column, rules.max_age, as_of))
    checks += [
        Check(name, passed, message, severity="error")
        for name, passed, message in task_class(spec).data_checks(frame, spec, as_of)
    ]
    return [check if check.severity else replace(check, severity=rules.severity_of(check.name)) for check in checks]


def _freshness_check(frame: pd.DataFrame, column: str, max_age: str, now: datetime | None) -> Check:
    """The newest `time_column` value is at most `max_age` older than the run's as_of (or now)."""
    import pandas as pd

    from retrainer.spec import parse_duration

    if column not in frame.columns:
        return Check("freshness", False, f"time column '{column}' is missing", column)
    stamps = pd.to_datetime(frame[column], errors="coerce", utc=True)
    if stamps.isna().all():
        return Check("freshness", False, "no timestamps", column)
    newest = stamps.max()
    reference = pd.Timestamp(now or datetime.now(UTC))
    reference = reference.tz_localize(UTC) if reference.tzinfo is None else reference.tz_convert(UTC)
    age = reference - newest
    passed = age <= timedelta(seconds=parse_duration(max_age))
    message = f"newest row {newest:%Y-%m-%d %H:%M} is {_age_text(age)} old (maximum {max_age})"
    return Check("freshness", bool(passed), message, column, round(age.total_seconds() / 3600, 2))


def _age_text(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if abs(hours) >= 48 else f"{hours:.1f} hours"


def contract_checks(frame: pd.DataFrame, spec: Spec) -> tuple[list[Check], dict[str, Any]]:
    """The data contract's verdict as checks, and its report (path, status, violations with examples)."""
    from retrainer.contract import check_contract, contract_path, read_contract

    path = contract_path(spec)
    if not path.exists():
        if spec.validation.contract == "enforce":
            raise SpecError(
                f"validation.contract is 'enforce' but {path} does not exist",
                hint="run once with validation.contract 'infer' to write it, then review and commit it",
            )
        return [], {"path": str(path), "status": "absent", "violations": []}
    contract = read_contract(path)
    violations = check_contract(frame, contract)
    report = {"path": str(path), "status": "checked", "violations": [asdict(v) for v in violations]}
    if not violations:
        message = f"{len(contract['columns'])} columns match {path.name}"
        return [Check("contract", True, message)], report
    severity = spec.validation.severity_of("contract")
    return [Check(f"contract {v.rule}", False, v.message, v.column, v.count, severity) for v in violations], report


def _target_checks(frame: pd.DataFrame, spec: Spec) -> list[Check]:
    column = spec.target.column
    frame = task_class(spec).with_target(frame, spec)  # an anomaly spec without target: every row "unknown"
    if column not in frame.columns:
        return [Check("target_present", False, f"target column '{column}' is missing", column, severity="error")]
    labels = frame[column].dropna()
    try:
        task = resolve_task(spec, frame[column])  # an ambiguous target is a SpecError: it stops the run
    except DataValidationError as error:
        return [Check("target_labels", False, error.message, column, severity="error")]
    if labels.empty:
        return [Check("target_balance", False, "target has no labels", column, 0.0, severity="error")]
    balance = task.balance(labels, spec.validation.limit("min_class_fraction"))
    if balance is None:
        return []
    passed, message, rarest = balance
    # one class, or a class of one row, cannot be split or learnt whatever the spec allows
    impossible = task.estimator_type == "classifier" and int(labels.map(as_text).value_counts().min()) < 2
    impossible |= labels.nunique() < 2
    return [Check("target_balance", passed, message, column, rarest, severity="error" if impossible else None)]


def _null_checks(frame: pd.DataFrame, spec: Spec) -> list[Check]:
    checks = []
    import pandas as pd

    # column by column: a whole-frame isna() is a boolean copy of the table
    fractions = pd.Series(
        {column: float(frame[column].isna().mean()) if len(frame) else 0.0 for column in frame.columns}, dtype=float
    )
    for column, fraction in fractions.items():
        rule = spec.validation.columns.get(str(column))
        own = rule is not None and rule.max_null_fraction is not None
        limit = rule.max_null_fraction if own and rule else spec.validation.limit("max_null_fraction")
        if fraction > limit:
            checks.append(
                Check(
                    "max_null_fraction",
                    False,
                    f"{fraction:.1%} nulls (maximum {limit:.1%})" + (" (all empty)" if fraction == 1 else ""),
                    str(column),
                    round(float(fraction), 4),
                    severity=rule.severity if own and rule else None,
                )
            )
    if not checks:
        worst = float(fractions.max()) if len(fractions) else 0.0
        checks.append(
            Check(
                "max_null_fraction",
                True,
                f"every column within its null limit (worst {worst:.1%})",
                observed=round(worst, 4),
            )
        )
    return checks


def _duplicate_checks(frame: pd.DataFrame, spec: Spec) -> list[Check]:
    limit = spec.validation.limit("max_duplicate_fraction")
    if not len(frame):
        return []
    duplicated = duplicated_rows(frame) / len(frame)
    checks = [
        Check(
            "max_duplicate_fraction",
            duplicated <= limit,
            f"{duplicated:.2%} duplicated rows (maximum {limit:.2%})",
            observed=round(duplicated, 4),
        )
    ]
    if spec.id_column:
        if spec.id_column not in frame.columns:
            checks.append(Check("id_present", False, f"id column '{spec.id_column}' is missing", spec.id_column))
        else:
            ids = float(frame[spec.id_column].duplicated().mean())
            checks.append(
                Check(
                    "unique_ids",
                    ids <= limit,
                    f"{ids:.2%} duplicated ids (maximum {limit:.2%})",
                    spec.id_column,
                    round(ids, 4),
                )
            )
    return checks


def duplicated_rows(frame: pd.DataFrame) -> int:
    """`frame.duplicated().sum()` without its memory: that factorizes every column into an int64 array
    at once (8 bytes a cell, more than most tables hold). Rows are hashed one column at a time
    instead, and only rows whose hash repeats are compared exactly (a collision is never counted)."""
    import pandas as pd

    hashes = pd.util.hash_pandas_object(frame, index=False)
    candidates = hashes.duplicated(keep=False).to_numpy()
    del hashes
    if not candidates.any():
        return 0
    return int(frame.loc[candidates].duplicated().sum())


_DTYPE_TESTS = {
    "int": "is_integer_dtype",
    "float": "is_float_dtype",
    "numeric": "is_numeric_dtype",
    "string": "is_string_dtype",
    "bool": "is_bool_dtype",
    "datetime": "is_datetime64_any_dtype",
}


def _column_checks(frame: pd.DataFrame, column: str, rule: ColumnRule) -> list[Check]:
    import pandas as pd

    if column not in frame.columns:
        return [
            Check("column_present", False, f"required column '{column}' is missing", column, severity=rule.severity)
        ]
    values = frame[column]
    checks = []
    tolerated = int((1 - rule.mostly) * values.notna().sum())  # `mostly`: this many values may break a rule
    if rule.dtype:
        passed = getattr(pd.api.types, _DTYPE_TESTS[rule.dtype])(values.dtype) or (
            rule.dtype == "string" and values.dtype == object
        )
        checks.append(
            Check(
                "dtype",
                bool(passed),
                f"dtype {values.dtype} (expected {rule.dtype})",
                column,
                str(values.dtype),
                severity=rule.severity,
            )
        )
    present = values.dropna()
    if rule.min is not None or rule.max is not None:
        numeric = pd.to_numeric(present, errors="coerce")
        low = rule.min if rule.min is not None else float("-inf")
        high = rule.max if rule.max is not None else float("inf")
        outside = int(((numeric < low) | (numeric > high) | numeric.isna()).sum())
        shown = f"[{rule.min}, {rule.max}]"
        observed = f"{numeric.min()}..{numeric.max()}" if len(numeric) else "no values"
        message = f"{outside:,} values outside {shown} (observed {observed})" + _tolerance(tolerated, rule.mostly)
        checks.append(Check("range", outside <= tolerated, message, column, outside, severity=rule.severity))
    if rule.allowed is not None:
        allowed = {as_text(v) for v in rule.allowed}
        unexpected = present[~present.map(as_text).isin(allowed)]
        examples = ", ".join(repr(v) for v in unexpected.astype(str).value_counts().index[:5])
        message = f"{len(unexpected):,} values not allowed" + (f" (e.g. {examples})" if examples else "")
        message += _tolerance(tolerated, rule.mostly)
        checks.append(
            Check(
                "allowed_values", len(unexpected) <= tolerated, message, column, len(unexpected), severity=rule.severity
            )
        )
    return checks


def _tolerance(tolerated: int, mostly: float) -> str:
    return f" ({tolerated:,} tolerated: mostly {mostly:g})" if mostly < 1 else ""


def _feature_columns(frame: pd.DataFrame, spec: Spec) -> list[str]:
    """Columns that would become model inputs: not the target, id, time or dropped columns."""
    reserved = {spec.target.column, spec.id_column, spec.time_column, *spec.features.drop}
    return [str(c) for c in frame.columns if c not in reserved]


def _feature_checks(frame: pd.DataFrame, spec: Spec) -> list[Check]:
    """Values no model can learn from: infinities, constant columns, identifiers posing as categories."""
    import numpy as np
    import pandas as pd

    from retrainer.text import looks_like_identifier

    checks = []
    rows = len(frame)
    forced_numeric = set(spec.features.numeric or [])
    constant_gate = spec.validation.severity_of("constant_columns") == "error"
    cardinality_gate = spec.validation.severity_of("cardinality") == "error"
    max_share = spec.validation.limit("max_text_cardinality")
    for column in _feature_columns(frame, spec):
        values = frame[column]
        if pd.api.types.is_float_dtype(values.dtype):
            infinite = int(np.isinf(values.to_numpy(dtype=float, na_value=np.nan)).sum())
            if infinite:
                checks.append(
                    Check(
                        "finite_values",
                        False,
                        f"{infinite:,} infinite values (a division by zero upstream?)",
                        column,
                        infinite,
                    )
                )
        distinct = values.nunique(dropna=True)
        if rows > 1 and distinct == 1:
            shown = shown_labels([values.dropna().iloc[0]])
            what = "drop it with features.drop or fix the extract" if constant_gate else "left out of the features"
            checks.append(
                Check("constant_columns", False, f"one value ({shown}) in all {rows:,} rows; {what}", column, 1)
            )
        if (
            column not in forced_numeric
            and looks_like_identifier(values, max_share)
            and not _free_text(values, spec, column)
        ):
            what = "drop it with features.drop or name it id_column" if cardinality_gate else "left out of the features"
            checks.append(
                Check(
                    "cardinality",
                    False,
                    f"{distinct:,} distinct values in {rows:,} rows looks like an identifier, not a category; " + what,
                    column,
                    distinct,
                )
            )
    return checks


def _time_checks(frame: pd.DataFrame, spec: Spec, as_of: datetime | None) -> list[Check]:
    """The time column must hold dates, none of them after the run's as_of (or now)."""
    import pandas as pd

    column = spec.time_column
    if not column:
        return []
    if column not in frame.columns:
        return [Check("time_present", False, f"time column '{column}' is missing", column)]
    present = frame[column].dropna()
    parsed = pd.to_datetime(present, errors="coerce", utc=True, format="mixed")
    unparsed = int(parsed.isna().sum())
    if unparsed:
        examples = ", ".join(repr(v) for v in present[parsed.isna()].astype(str).unique()[:3])
        return [Check("time_values", False, f"{unparsed:,} values are not dates (e.g. {examples})", column, unparsed)]
    limit = pd.Timestamp(as_of or datetime.now(UTC))
    limit = limit.tz_localize("UTC") if limit.tzinfo is None else limit.tz_convert("UTC")
    future = int((parsed > limit).sum())
    return [
        Check(
            "no_future_timestamps",
            future == 0,
            f"{future:,} rows stamped after {limit:%Y-%m-%d %H:%M} (as_of); latest {parsed.max():%Y-%m-%d %H:%M}"
            if future
            else f"no rows after {limit:%Y-%m-%d %H:%M}",
            column,
            future,
        )
    ]


def _silent_row_notes(frame: pd.DataFrame, spec: Spec) -> list[str]:
    """What passes the checks but must not pass unseen: rows without a label (split drops them) and
    rows without an id (they cannot be traced or joined), each with its count."""
    notes = []
    target = spec.target.column
    if target in frame.columns and (unlabelled := int(frame[target].isna().sum())):
        notes.append(f"warning: {unlabelled:,} of {len(frame):,} rows have no '{target}' label and are left out")
    if spec.id_column and spec.id_column in frame.columns and (no_id := int(frame[spec.id_column].isna().sum())):
        notes.append(f"warning: {no_id:,} of {len(frame):,} rows have a null '{spec.id_column}'")
    return notes


def validate(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec, frame = ctx.spec, inputs["data"]
    checks = check_data(frame, spec, ctx.as_of)
    contract: dict[str, Any] | None = None
    if spec.validation.contract in ("infer", "enforce"):  # 'champion': the drift stage holds its data
        found, contract = contract_checks(frame, spec)
        checks += found
    failures = [c for c in checks if c.rejects]
    report: dict[str, Any] = {"passed": not failures, "checks": [asdict(c) for c in checks], "contract": contract}
    for check in checks:
        ctx.logger.info(
            "%s %s%s: %s",
            "ok  " if check.passed else "FAIL" if check.rejects else "warn",
            check.name,
            f" [{check.column}]" if check.column else "",
            check.message,
        )
    if failures:
        lines = [f"{c.column + ': ' if c.column else ''}{c.name}: {c.message}" for c in failures]
        raise DataValidationError(
            f"data validation failed {len(failures)} check{'s' if len(failures) > 1 else ''}: " + "; ".join(lines),
            failures=lines,
            hint="fix the data at the source or relax `validation` in the spec; the champion is unchanged",
        )
    passed = sum(check.passed for check in checks)
    summary = f"{passed} check{'s' if passed != 1 else ''} passed"
    notes = [_warning(check) for check in checks if not check.passed] + _silent_row_notes(frame, spec)
    for note in notes:
        ctx.logger.warning("%s", note)
    report["warnings"] = notes
    summary += "".join(f"; {note}" for note in notes)
    if contract is not None and contract["status"] == "absent":
        _write_contract(ctx, frame, contract)
        summary += f"; contract written to {Path(contract['path']).name}"
    return StageOutput(
        artifacts={"validation": report},
        metrics={"checks_passed": float(passed), "checks_warned": float(len(checks) - passed)},
        summary=summary,
    )


def _warning(check: Check) -> str:
    """A failed check that does not reject, as the run's output and the report show it."""
    where = f"{check.column}: " if check.column else ""
    return f"warning: {where}{check.name}: {check.message}"


def _write_contract(ctx: RunContext, frame: pd.DataFrame, report: dict[str, Any]) -> None:
    """The first batch that passes the gates becomes the contract (a file already there is kept)."""
    from retrainer.contract import infer_contract, write_contract

    path = Path(report["path"])
    if write_contract(path, infer_contract(frame, ctx.spec, ctx.run_id)):
        report["status"] = "written"
        ctx.logger.info("data contract written to %s: review it and commit it", path)


def _fingerprint(ctx: RunContext) -> str:
    """What else the verdict depends on: the contract file, the run's as_of, and the clock when freshness is checked."""
    import hashlib

    parts = [ctx.spec.validation.contract, f"as_of={ctx.as_of}"]  # future timestamps are judged against as_of
    if ctx.spec.validation.contract in ("infer", "enforce"):
        from retrainer.contract import contract_path

        path = contract_path(ctx.spec)
        parts.append(hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent")
    if ctx.spec.validation.max_age:  # a batch goes stale as time passes: re-check it every hour
        parts.append((ctx.as_of or datetime.now(UTC)).strftime("%Y-%m-%dT%H"))
    return "|".join(parts)


STAGE = Stage(
    name="validate",
    func=validate,
    needs=("data",),
    makes=("validation",),
    spec_sections=("validation", "target", "id_column", "time_column", "features", "task", "forecast"),
    code=(
        "retrainer.target",
        "retrainer.contract",
        "retrainer.tasks",
        "retrainer.forecasting",
        "retrainer.frequencies",
    ),
    fingerprint=_fingerprint,
)


def _free_text(values: pd.Series, spec: Spec, column: str) -> bool:
    """A column the model reads as prose (features.text, or inferred): distinct values are its nature."""
    from retrainer.text import looks_like_text

    if spec.features.text is not None:
        return column in spec.features.text
    return column not in (spec.features.categorical or []) and looks_like_text(values)
