"""The tasks: binary, multiclass, regression, forecast and anomaly, one module each, behind the `Task` seam.

`resolve(spec, target)` is the run's task: the spec's `task`, else inferred from the target column
(`infer_task`), then built from the column's values. `from_info` rebuilds it from what a split or a
registered version wrote down. Adding a task is one module with a `Task` subclass plus its line in
`TASKS` (docs/design.md, "Adding a task").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from retrainer.errors import SpecError
from retrainer.metrics import REGISTRY, metrics_for
from retrainer.spec_checks import SPEC_CHECKS
from retrainer.tasks.anomaly import AnomalyTask
from retrainer.tasks.base import Task, spec_problems
from retrainer.tasks.binary import BinaryTask
from retrainer.tasks.forecast import ForecastTask
from retrainer.tasks.multiclass import MAX_CLASSES, MulticlassTask
from retrainer.tasks.regression import RegressionTask

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (BinaryTask, MulticlassTask, RegressionTask, ForecastTask, AnomalyTask)
}
TASK_NAMES = tuple(TASKS)
# an integer target with more distinct values than this is an amount, with fewer an ambiguous code
MAX_INTEGER_CLASSES = 20


def options_problem(spec: Spec) -> str | None:
    """The options of a spec that do not apply to its `task:`, checked when it loads (`SPEC_CHECKS`)."""
    if spec.task is None:
        return None
    problems = spec_problems(TASKS[spec.task], spec)
    return f"task {spec.task}: " + "; ".join(problems) if problems else None


SPEC_CHECKS.append(options_problem)


def task_class(spec: Spec) -> type[Task]:
    """The spec's task class before a target is read (validation, features); an inferred task: `Task`'s
    defaults, which are the table's."""
    return TASKS[spec.task] if spec.task else Task


def infer_task(values: pd.Series, column: str) -> str:
    """binary (two labels), multiclass (a few non-numeric labels), regression (floats, or many integers).

    An integer column with 3 to 20 values could be classes or counts: a SpecError asks for `task:`.
    """
    import numpy as np
    import pandas as pd

    labels = values.dropna()
    distinct = labels.nunique()
    if distinct <= 2 or pd.api.types.is_bool_dtype(labels):
        return "binary"
    if pd.api.types.is_numeric_dtype(labels):
        numbers = labels.to_numpy(dtype=float)
        if not np.all(np.isfinite(numbers)) or not np.all(numbers == np.round(numbers)):
            return "regression"
        if distinct > MAX_INTEGER_CLASSES:
            return "regression"
        raise SpecError(
            f"target '{column}' is a whole-number column with {distinct} distinct values: classes or amounts?",
            hint="write `task: multiclass` (the values are classes) or `task: regression` (they are amounts)",
        )
    if distinct > MAX_CLASSES:
        raise SpecError(
            f"target '{column}' has {distinct:,} distinct text labels (more than {MAX_CLASSES} classes)",
            hint="is it an id or free text? choose another target, or write `task: multiclass`",
        )
    return "multiclass"


def resolve(spec: Spec, target: pd.Series) -> Task:
    """The run's task, built from the target column's values; the spec is checked against it.

    A spec that names a positive label wants a binary model: a third label is then a data error
    ("has 3 distinct labels"), not a reason to train a multiclass one.
    """
    implied = "binary" if spec.target.positive is not None else None
    name = spec.task or implied or infer_task(target, spec.target.column)
    task = TASKS[name].from_target(target, spec)
    task.check_spec(spec)
    return task


def shown_metrics(available: Iterable[str], limit: int | None = None) -> list[str]:
    """The metrics worth showing of a set of computed ones, most telling first, in the order of the task
    they belong to (the one task whose metrics include them all: ROC-AUC means binary, F1 macro
    multiclass, RMSE regression). Summaries that hold only metric names use this."""
    names = {name for name in available if name in REGISTRY}
    for cls in TASKS.values():
        if names and names <= set(metrics_for(cls.name)):
            return [name for name in cls.shown_metrics() if name in names][:limit]
    return sorted(names)[:limit]


def from_info(info: Mapping[str, Any] | None) -> Task:
    """The task a split (or a registered version's `retrainer.task` tag) wrote down; none: binary."""
    if not info:
        return BinaryTask(None)
    return TASKS[str(info.get("task", "binary"))].from_info(info)


__all__ = [
    "TASKS",
    "TASK_NAMES",
    "AnomalyTask",
    "BinaryTask",
    "ForecastTask",
    "MulticlassTask",
    "RegressionTask",
    "Task",
    "from_info",
    "resolve",
    "shown_metrics",
    "task_class",
]
