"""`retrainer init`: a commented starter spec and a README for a new pipeline, read from its data.

Given a source (a CSV/Parquet file or a database URL), the starter lists its columns and types,
guesses the id column, writes the positive label of the target explicitly, and keeps the tuning
budget small so the first `retrainer run` takes a minute, not an hour; comments say how to widen it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from retrainer.errors import SourceError, SpecError
from retrainer.urls import is_url, safe_url

if TYPE_CHECKING:
    import pandas as pd

SAMPLE_ROWS = 5000
# fast on any machine, by the kind of estimator the task needs; the others are a comment away
STARTER_CANDIDATES = {"classifier": ("logistic_regression", "lightgbm"), "regressor": ("ridge", "lightgbm")}
# the gates a starter spec suggests in a comment, by task
EXAMPLE_GATES = {
    "binary": "{roc_auc: 0.75, f1: 0.5}",
    "multiclass": "{accuracy: 0.85, f1_macro: 0.80}",
    "regression": "{r2: 0.7}   # rmse and mae are maxima, in the target's units",
}
STARTER_TRIALS = 3
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TARGET_NAMES = ("target", "label", "churn", "churned", "y", "class", "outcome", "default", "fraud", "is_fraud")


@dataclass
class DataSummary:
    """What init learned from the source: its spec section and a sample of its rows."""

    source: dict[str, Any]
    described_as: str
    sample: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def init_pipeline(
    name: str,
    directory: Path,
    *,
    source: str | None = None,
    target: str | None = None,
    table: str | None = None,
    force: bool = False,
    task: str | None = None,
) -> list[Path]:
    """Write `pipeline.yaml` and `README.md` into `directory`; return their paths."""
    if not _NAME.match(name):
        raise SpecError(f"pipeline name {name!r} is not valid", hint="use letters, digits, '-', '_' and '.'")
    from retrainer.tasks import TASK_NAMES

    if task is not None and task not in TASK_NAMES:
        raise SpecError(f"--task {task!r} is not a task", hint=f"choose from {', '.join(TASK_NAMES)}")
    spec_path, readme_path = directory / "pipeline.yaml", directory / "README.md"
    existing = [p for p in (spec_path, readme_path) if p.exists()]
    if existing and not force:
        raise SpecError(f"{existing[0]} already exists", hint="choose another --dir, or pass --force to overwrite")
    summary = inspect_source(source, table, directory) if source else None
    spec_text = starter_spec(name, summary, target, task)
    _check_loads(spec_text, spec_path)
    directory.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(spec_text)
    readme_path.write_text(starter_readme(name, spec_path, summary))
    return [spec_path, readme_path]


def _check_loads(text: str, spec_path: Path) -> None:
    """The starter must be a valid spec as written: validate it before anything touches the disk."""
    from retrainer.spec import spec_from_dict

    spec_from_dict(yaml.safe_load(text), origin=str(spec_path))


# ----------------------------------------------------------------------------- reading the data


def inspect_source(source: str, table: str | None, spec_dir: Path) -> DataSummary:
    """The source's spec section (paths relative to the spec's folder) and a sample of its rows."""
    if is_url(source):
        return _inspect_database(source, table, spec_dir)
    from retrainer.sources import for_spec
    from retrainer.spec import SourceSpec

    path = Path(source).resolve()
    if not path.is_file():
        raise SourceError(f"source file {source} not found", hint="give a CSV or Parquet file, or a database URL")
    if not path.name.lower().endswith((".csv", ".csv.gz", ".parquet", ".pq")):
        raise SourceError(f"{source}: not a CSV or Parquet file", hint="give a .csv, .csv.gz, .parquet or .pq file")
    sample = for_spec(SourceSpec(path=str(path))).read()
    return DataSummary({"path": _relative(path, spec_dir)}, f"{path.name}: {len(sample):,} rows", sample)


def _inspect_database(url: str, table: str | None, spec_dir: Path) -> DataSummary:
    import pandas as pd
    from sqlalchemy import create_engine, inspect, text
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise SourceError(f"{url}: no such SQLite file", hint="check the path (relative to where you run init)")
    engine = create_engine(url)
    try:
        tables = inspect(engine).get_table_names()
        chosen = table or (tables[0] if len(tables) == 1 else None)
        if chosen is None or chosen not in tables:
            listed = ", ".join(tables) or "none"
            raise SourceError(f"{safe_url(url)}: pick a table with --table (tables: {listed})")
        with engine.connect() as connection:
            rows = int(connection.execute(text(f'SELECT COUNT(*) FROM "{chosen}"')).scalar_one())
            sample = pd.read_sql_query(text(f'SELECT * FROM "{chosen}" LIMIT {SAMPLE_ROWS}'), connection)
    except SQLAlchemyError as error:
        raise SourceError(f"cannot read {safe_url(url)}: {str(error).splitlines()[0]}") from None
    finally:
        engine.dispose()
    notes = []
    written = url
    if url.startswith("sqlite:///"):
        written = "sqlite:///" + _relative(Path(url.removeprefix("sqlite:///")).resolve(), spec_dir)
    elif safe_url(url) != url:  # a password: keep it out of the file, read it from the environment
        written = "${DATABASE_URL:-" + safe_url(url).replace(":***@", "@") + "}"
        notes.append("the password is not written to the spec: export DATABASE_URL with the full URL")
    return DataSummary({"url": written, "table": chosen}, f"table {chosen}: {rows:,} rows", sample, notes)


def _relative(path: Path, spec_dir: Path) -> str:
    """Paths in a spec are relative to its folder, so the pipeline runs from any working directory."""
    return Path(os.path.relpath(path, spec_dir.resolve())).as_posix()


def column_kind(series: pd.Series) -> str:
    """The validation dtype name for a column: int, float, bool, datetime or string."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "string"


def guess_id_column(sample: pd.DataFrame) -> str | None:
    for column in sample.columns:
        lowered = str(column).lower()
        named_like_id = lowered == "id" or lowered.endswith(("_id", "id"))
        if named_like_id and sample[column].notna().all() and sample[column].is_unique:
            return str(column)
    return None


def guess_target(sample: pd.DataFrame) -> str | None:
    for column in sample.columns:
        if str(column).lower() in _TARGET_NAMES and sample[column].nunique(dropna=True) >= 2:
            return str(column)
    return None


def task_of(values: pd.Series, column: str, task: str | None) -> str:
    """The task `--task` names, else the one the target's values imply (an ambiguous column asks for it)."""
    from retrainer.tasks import infer_task

    if task is not None:
        return task
    try:
        return infer_task(values, column)
    except SpecError as error:
        raise SpecError(error.message, hint="pass --task multiclass or --task regression") from None


def positive_of(values: pd.Series, column: str) -> tuple[Any, str]:
    """The positive label and how it was chosen (inferred from yes/true/1, else the rarer label)."""
    from retrainer.errors import DataValidationError
    from retrainer.spec import TargetSpec
    from retrainer.target import positive_label

    labels = values.dropna().unique()
    if len(labels) != 2:
        shown = ", ".join(repr(v) for v in list(labels)[:6])
        raise SpecError(
            f"target column {column!r} has {len(labels)} distinct values ({shown}); a binary task needs two",
            hint="pass --task multiclass for classes, or --task regression for amounts",
        )
    try:
        return _plain(positive_label(values, TargetSpec(column=column))), "inferred"
    except DataValidationError:
        rarer = values.value_counts().idxmin()
        return _plain(rarer), "the rarer label; change it if the other one is the event you predict"


def _plain(value: Any) -> Any:
    """numpy scalars as plain Python, so YAML writes `1`, not a tagged object."""
    return value.item() if hasattr(value, "item") else value


# ------------------------------------------------------------------------------------- writing


def _y(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def starter_spec(name: str, summary: DataSummary | None, target: str | None, task: str | None = None) -> str:
    """The spec's text: every choice commented, every key explained by `retrainer explain-spec`."""
    lines = [
        f"# retrainer pipeline {name!r}: written by `retrainer init`. Every key not written here has a default;",
        "# `retrainer explain-spec pipeline.yaml` prints them all with their meaning.",
        f"name: {_y(name)}",
        "",
    ]
    if summary is None:
        lines += [
            "source:",
            "  path: data.csv          # a CSV or Parquet file, relative to this spec; or, for a database:",
            "  # url: ${DATABASE_URL:-sqlite:///data.db}",
            "  # table: customers      # or query: SELECT * FROM customers WHERE updated_at <= :as_of",
            "",
            f"target: {_y(target or 'label')}  # the column to predict (two labels); or {{column: ..., positive: ...}}",
            "",
        ]
    else:
        sample = summary.sample
        target = target or guess_target(sample)
        if target is None:
            raise SpecError(
                f"which column should the model predict? (columns: {', '.join(map(str, sample.columns))})",
                hint="pass --target COLUMN",
            )
        if target not in sample.columns:
            from retrainer.spec import _did_you_mean

            raise SpecError(
                f"target column {target!r} is not in the source{_did_you_mean(target, list(map(str, sample.columns)))}",
                hint=f"columns: {', '.join(map(str, sample.columns))}",
            )
        task = task_of(sample[target], target, task)
        id_column = guess_id_column(sample.drop(columns=[target]))
        lines += ["source:"]
        lines += [f"  {key}: {_y(value)}" for key, value in summary.source.items()]
        lines += [f"  # {note}" for note in summary.notes]
        lines += [f"# {summary.described_as}; columns (type, share of nulls in the rows read):"]
        for column in sample.columns:
            nulls = float(sample[column].isna().mean())
            role = " <- target" if column == target else " <- id" if column == id_column else ""
            lines.append(f"#   {column}: {column_kind(sample[column])}, {nulls:.0%} null{role}")
        if task == "binary":
            positive, how = positive_of(sample[target], target)
            lines += ["", f"target: {{column: {_y(target)}, positive: {_y(positive)}}}  # positive label: {how}"]
        else:
            lines += ["", f"task: {task}", f"target: {_y(target)}  # {_task_note(sample[target], task)}"]
        if id_column:
            lines.append(f"id_column: {_y(id_column)}  # never a feature; duplicated ids fail validation")
        times = [str(c) for c in sample.columns if column_kind(sample[c]) == "datetime"]
        if times:
            lines.append(f"# time_column: {times[0]}   # enables split: {{method: temporal}} and :as_of in queries")
        lines.append("")
    from retrainer.tasks import TASKS

    task_class = TASKS[task or "binary"]
    candidates = STARTER_CANDIDATES[task_class.estimator_type]
    metric = task_class.default_metric
    lines += [
        "validation:                # hard gates: any failure rejects the run, the champion stays",
        "  min_rows: 100",
        "  max_null_fraction: 0.2   # per column",
        "  max_duplicate_fraction: 0.01",
        f"  # columns: {_column_rules_example(summary, target)}",
        "",
        "models:",
        f"  candidates: [{', '.join(candidates)}]   # widen: add random_forest, xgboost",
        f"  n_trials: {STARTER_TRIALS}               # Optuna trials per candidate; widen: 20, or timeout: 10m",
        "  cv_folds: 3",
        "",
        "evaluation:",
        f"  metric: {metric}           # ranks candidates; the champion is compared on it",
        f"  # thresholds: {EXAMPLE_GATES[task_class.name]}   # gates a model must pass to be registered",
        "",
        "# promotion: {min_improvement: {relative: 0.01}}   # default: any gain on `metric` replaces the champion",
        "",
        '# schedule: "@weekly"      # for `retrainer airflow export`',
    ]
    return "\n".join(lines) + "\n"


def _task_note(values: pd.Series, task: str) -> str:
    """What the starter spec says of a multiclass or regression target, read from the sample."""
    if task == "multiclass":
        labels = sorted(map(str, values.dropna().unique()))
        return f"{len(labels)} classes: {', '.join(labels[:8])}{', ...' if len(labels) > 8 else ''}"
    return f"values {_rounded(values.min())} to {_rounded(values.max())}; transform: log for prices and amounts"


def _column_rules_example(summary: DataSummary | None, target: str | None) -> str:
    """A `validation.columns` example drawn from the data itself (ranges and labels seen in the sample)."""
    rules: dict[str, Any] = {}
    if summary is not None:
        for column in summary.sample.columns:
            series = summary.sample[column]
            kind = column_kind(series)
            if column == target or series.isna().all():
                continue
            if kind in ("int", "float") and "numeric" not in rules:
                rules["numeric"] = {
                    str(column): {"dtype": kind, "min": _rounded(series.min()), "max": _rounded(series.max())}
                }
            elif kind == "string" and "labels" not in rules and 1 < series.nunique() <= 6:
                rules["labels"] = {str(column): {"allowed": sorted(map(str, series.dropna().unique()))}}
    example = {k: v for rule in rules.values() for k, v in rule.items()}
    return _y(example) if example else "{amount: {dtype: float, min: 0}, country: {allowed: [DE, FR]}}"


def _rounded(value: Any) -> Any:
    value = _plain(value)
    return round(value, 2) if isinstance(value, float) else value


def starter_readme(name: str, spec_path: Path, summary: DataSummary | None) -> str:
    spec = spec_path.as_posix()
    data = f"It reads {summary.described_as}." if summary else "Point `source` in `pipeline.yaml` at your data first."
    return f"""# {name}

A retraining pipeline made by `retrainer init`. {data}

| file | what it is |
|---|---|
| `pipeline.yaml` | the spec: where the data is, what to predict, how to tune, when to promote |
| `README.md` | this page |

## Run it

```bash
retrainer doctor {spec}        # what the pipeline needs, and what is missing
retrainer run {spec}           # train, gate, compare with the champion, register, promote
retrainer run {spec}           # again: unchanged data is all cache hits, nothing is registered twice
retrainer models {name}        # registered versions and which one is the champion
retrainer explain-spec {spec}  # every key with its default and meaning
```

The run store (`.retrainer/` in the folder you run from) keeps each stage's outputs, the run
records and the MLflow registry.

## Next steps

- Widen the search once a run works: more `models.candidates` (random_forest, xgboost) and
  `n_trials`, or a `timeout`.
- Add gates: `evaluation.thresholds` (e.g. `{{roc_auc: 0.75}}`) and per-column rules under
  `validation.columns`.
- Schedule it: set `schedule` and run `retrainer airflow export {spec} --out $AIRFLOW_HOME/dags`.
"""
