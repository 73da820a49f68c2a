"""The registered model as MLflow's `python_function`: what `retrainer serve` answers, for MLflow's tools.

A registered version is one MLflow model with two flavors over one saved scikit-learn file:
`sklearn` (what retrainer loads to score, compare and serve) and `python_function`, whose loader is
this module. So `mlflow.pyfunc.load_model("models:/NAME@champion").predict(rows)`, `mlflow models
serve`, `mlflow.models.predict` and `spark_udf` answer what `retrainer serve` answers for the same
rows: `answer` below is the code both call, so they cannot drift. The task (and its labels) and the
decision threshold are the model's metadata (`MLmodel`, `metadata.retrainer`).

The signature describes the rows as the source gives them: integers are `long`, a column with
missing values in the training rows is optional; other columns (an id, the label) are ignored.
`predict` returns one row per input row with the fields of `Task.response`:

- binary: `prediction` (1 when `probability` reaches `threshold`, else 0), `probability` (of the
  positive class), `threshold` (the model's own, chosen at evaluation), `label` (the decided class);
- multiclass: `prediction` (the most probable label), `probability` (its), `probabilities`
  ({label: probability} for every class);
- regression: `prediction` (the value, in the target's units).

A forecaster (`task: forecast`) answers requests, not rows: its signature takes `series_id` (string,
optional with one series) and `horizon` (long, optional: the model's), plus, for a model with
exogenous columns, the time column (datetime, optional) and each exogenous column (one row per
series and future period); `predict` returns one row per series and step: `series_id`, `step`, `ds`,
`forecast`, `lo_80`, `hi_80`, `lo_95`, `hi_95`, the forecasts after the training end
(`retrainer.forecasting.ahead`, which `POST /forecast` answers through `answer` too).

    model.predict(pd.DataFrame({"series_id": ["NSW", "VIC"], "horizon": [12, 12]}))
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.column_types import source_columns

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.tasks import Task

METADATA_KEY = "retrainer"  # MLmodel `metadata.retrainer`: {task, threshold}
DEFAULT_THRESHOLD = 0.5  # binary models registered without their own threshold
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer"})
# packages a saved model needs beyond the types in it: the MLP's module imports torch
NEEDS = {"retrainer.models.mlp": ("torch",)}


def model_frame(rows: pd.DataFrame, inputs: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The model's input frame from `rows`: its input columns (one that is absent, or null, is missing,
    which the model imputes), numbers as float64, datetimes parsed; any other column is left out.

    `inputs` is (column, MLflow type) as the version's signature declares them.
    """
    import numpy as np
    import pandas as pd

    # numpy per column, not pandas: a one-row request paid about 0.2 ms a column in Series methods
    data: dict[str, Any] = {}
    absent = np.full(len(rows), np.nan, dtype=object)
    for column, kind in inputs:
        values = rows[column] if column in rows.columns else None
        if kind == "datetime":
            data[column] = pd.to_datetime(absent if values is None else values, errors="coerce")
            continue
        if kind in NUMERIC_TYPES and values is not None and pd.api.types.is_numeric_dtype(values.dtype):
            data[column] = values.to_numpy("float64", na_value=np.nan)
            continue
        array = absent if values is None else values.to_numpy(dtype=object)
        missing = pd.isna(array)
        if missing.any():
            array = np.where(missing, np.nan, array)
        data[column] = pd.to_numeric(array).astype("float64") if kind in NUMERIC_TYPES else array
    return pd.DataFrame(data, columns=[column for column, _ in inputs], copy=False)


def answer(
    model: Any, task: Task, threshold: float, inputs: Sequence[tuple[str, str]], rows: pd.DataFrame
) -> list[dict[str, Any]]:
    """What the model answers for each row of `rows`, in its task's words, at its own threshold; a
    forecaster's answers to the requests in `rows` (one per series and step, see the module docstring).

    `retrainer serve` and the `python_function` flavor both call this, so the two cannot disagree.
    """
    if not task.answers_rows:  # a request names what to answer; its columns are the task's, not the signature's
        return task.answer_requests(model, rows)
    return task.response(task.predict(model, model_frame(rows, inputs)), threshold)


def model_metadata(task_info: Mapping[str, Any] | None, threshold: float | None) -> dict[str, Any]:
    """The MLmodel metadata the flavor reads back: what the model predicts and where it decides
    (binary only: the threshold chosen at evaluation, else the usual 0.5)."""
    from retrainer.tasks import from_info

    task = from_info(task_info)
    info = json.loads(json.dumps(task.info(), default=str))
    decides_at = (DEFAULT_THRESHOLD if threshold is None else float(threshold)) if task.has_decision_threshold else None
    return {METADATA_KEY: {"task": info, "threshold": decides_at}}


def model_task(metadata: Mapping[str, Any] | None) -> tuple[Task, float]:
    """The task and threshold `model_metadata` wrote down (a model without them: binary at 0.5)."""
    from retrainer.tasks import from_info

    ours = (metadata or {}).get(METADATA_KEY) or {}
    threshold = ours.get("threshold")
    return from_info(ours.get("task")), DEFAULT_THRESHOLD if threshold is None else float(threshold)


def signature(columns: Sequence[tuple[str, str, bool]], example: pd.DataFrame, answers: list[dict[str, Any]]) -> Any:
    """The model's MLflow signature: `source_columns` in, the answers' fields out."""
    import warnings

    import pandas as pd
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import ColSpec, Schema

    with warnings.catch_warnings():  # MLflow's hint that 0/1 predictions are integers
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        outputs = infer_signature(example, pd.DataFrame(answers)).outputs
    inputs = Schema([ColSpec(kind, name, required=required) for name, kind, required in columns])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements(types: Sequence[str]) -> list[str]:
    """What the saved model needs installed, at the installed versions: scikit-learn and skops (the file),
    retrainer (this loader and its transformers), and the packages of every type in the file that
    skops does not trust by default (xgboost, lightgbm, retrainer's MLP and so torch)."""
    from importlib.metadata import PackageNotFoundError, version

    from retrainer.installed import providers

    wanted = {"scikit-learn", "skops", "numpy", "pandas", "scipy", "retrainer"}
    for name in types:
        wanted.update(providers(name))
        for module, packages in NEEDS.items():
            if name.startswith(f"{module}."):
                wanted.update(packages)
    pins = []
    for package in sorted(wanted, key=str.lower):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:  # not installed: nothing saved needs it here either
            continue
    return pins


# ---------------------------------------------------------------------- the flavor MLflow calls
def save_model(path: str, sk_model: Any, mlflow_model: Any, **kwargs: Any) -> None:
    """`mlflow.models.Model.log(flavor=retrainer.pyfunc, ...)`: the sklearn flavor, saved by MLflow, with
    this module as its `python_function` loader (the same file, so one model file serves both)."""
    import mlflow.sklearn

    mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
    conf = mlflow_model.flavors["python_function"]
    conf["loader_module"] = __name__
    for key in ("model_path", "data", "predict_fn"):  # the loader reads the whole directory
        conf.pop(key, None)
    mlflow_model.save(str(Path(path, "MLmodel")))


class RetrainerModel:
    """The `python_function` implementation: the sklearn model answering through `answer`."""

    def __init__(self, model: Any, task: Task, threshold: float, inputs: Sequence[tuple[str, str]]) -> None:
        self.model, self.task, self.threshold, self.inputs = model, task, threshold, list(inputs)

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> pd.DataFrame:
        import pandas as pd

        rows = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        inputs = self.inputs or [(c, kind) for c, kind, _ in source_columns(rows)]  # logged without a signature
        answers = answer(self.model, self.task, self.threshold, inputs, rows)
        return pd.DataFrame(answers, index=rows.index if self.task.answers_rows else None)

    def get_raw_model(self) -> Any:
        """The scikit-learn model (MLflow's `PyFuncModel.get_raw_model`)."""
        return self.model


def _load_pyfunc(path: str, model_config: Any = None) -> RetrainerModel:
    """MLflow's loader hook: the model directory, its sklearn flavor, its metadata and signature."""
    import mlflow.sklearn
    from mlflow.models import Model

    meta = Model.load(str(Path(path, "MLmodel")))
    task, threshold = model_task(meta.metadata)
    inputs = [(str(c["name"]), str(c["type"])) for c in meta.signature.inputs.to_dict()] if meta.signature else []
    return RetrainerModel(mlflow.sklearn.load_model(path), task, threshold, inputs)
