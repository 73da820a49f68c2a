"""The registered model, used the MLflow way (issue 27): MLflow's own entry points, in processes of
their own, on rows as the source gives them, answer what `retrainer serve` answers for the same rows."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from retrainer.integrations.mlflow_registry import Registry
from retrainer.serving.app import ServingConfig, create_app
from retrainer.spec import load_spec
from retrainer.store import RunStore

pytestmark = pytest.mark.slow

ROWS = 40
BIN = str(Path(sys.executable).parent)
SRC = str(Path(__file__).resolve().parents[1] / "src")

# A fresh process with MLflow's client and no retrainer import of its own: the rows straight from the
# source (the label dropped, the id kept), `mlflow.pyfunc.load_model` and `mlflow.models.predict`.
CLIENT = """
import json, sys
import mlflow, mlflow.models, pandas as pd
uri, model_uri, source, label, rows, out = sys.argv[1:7]
mlflow.set_tracking_uri(uri)
if source.startswith("sqlite:"):
    frame = pd.read_sql(f"SELECT * FROM customers LIMIT {rows}", source)
else:
    frame = pd.read_csv(source).head(int(rows))
frame = frame.drop(columns=[label])
model = mlflow.pyfunc.load_model(model_uri)
loaded = model.predict(frame)
mlflow.models.predict(model_uri, input_data=frame, env_manager="local", output_path=out + ".predict")
json.dump({
    "rows": json.loads(frame.to_json(orient="records", double_precision=15)),
    "loaded": json.loads(loaded.to_json(orient="records", double_precision=15)),
    "predicted": json.load(open(out + ".predict"))["predictions"],
    "metadata": model.metadata.metadata,
    "inputs": model.metadata.get_input_schema().to_dict(),
}, open(out, "w"))
"""


def _env(tracking_uri: str) -> dict[str, str]:
    """What MLflow's processes need: the tracking store, this checkout's retrainer, the venv's tools."""
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    tools = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    stores = {"MLFLOW_TRACKING_URI": tracking_uri, "MLFLOW_REGISTRY_URI": tracking_uri}  # not the test process's
    return {**os.environ, **stores, "PYTHONPATH": path, "PATH": tools}


def _task_models(request: pytest.FixtureRequest, task: str) -> dict[str, Any]:
    """The registered model of `task`, where its source is and its label column."""
    fixture = {"binary": "served_models", "multiclass": "served_penguins", "regression": "served_ames"}[task]
    return _task_models_of(request.getfixturevalue(fixture))


def _task_models_of(models: dict[str, Any]) -> dict[str, Any]:
    spec = load_spec(models["spec_path"])
    registry = Registry.for_spec(spec, RunStore(spec.store))
    source = spec.source.url or str(spec.source.path)
    return {**models, "spec": spec, "registry": registry, "source": source, "label": spec.target.column}


def _retrainer_serve(models: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`retrainer serve`'s answers (the real app, champion only, no prediction log) without its routing fields."""
    spec, registry = models["spec"], models["registry"]
    config = replace(ServingConfig.from_spec(spec, RunStore(spec.store)), prediction_log=None, challenger_share=0.0)
    with TestClient(create_app(config, registry)) as client:
        response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert {a["alias"] for a in answers} == {"champion"}
    return [{k: v for k, v in a.items() if k not in ("entity_id", "alias", "version")} for a in answers]


def _same(mlflow_answers: list[dict[str, Any]], served: list[dict[str, Any]]) -> None:
    assert len(mlflow_answers) == len(served) > 0
    for ours, theirs in zip(mlflow_answers, served, strict=True):
        assert set(ours) == set(theirs)
        for key, value in theirs.items():
            if isinstance(value, float | dict):
                assert ours[key] == pytest.approx(value, rel=1e-9)
            else:
                assert ours[key] == value


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_mlflow_pyfunc_in_a_fresh_process_answers_raw_source_rows_as_retrainer_serve_does(
    request: pytest.FixtureRequest, task: str, tmp_path: Path
) -> None:
    models = _task_models(request, task)
    registry, name = models["registry"], models["name"]
    out = tmp_path / "answers.json"
    arguments = [registry.tracking_uri, f"models:/{name}@champion", models["source"], models["label"], str(ROWS)]
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, *arguments, str(out)],
        env=_env(registry.tracking_uri),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(out.read_text())

    served = _retrainer_serve(models, found["rows"])
    _same(found["loaded"], served)
    _same(found["predicted"], served)
    champion = registry.by_alias(name, "champion")
    assert champion is not None
    assert found["metadata"]["retrainer"]["task"] == champion.task.info()
    if task == "binary":  # decided at the model's own threshold, not at 0.5, and named
        threshold = champion.decision_threshold(0.5)
        assert threshold != 0.5 and found["metadata"]["retrainer"]["threshold"] == threshold
        assert {a["threshold"] for a in found["loaded"]} == {threshold}
        assert all(a["label"] == ("Yes" if a["prediction"] else "No") for a in found["loaded"])
    else:
        assert found["metadata"]["retrainer"]["threshold"] is None
    types = {c["name"]: c["type"] for c in found["inputs"]}
    frame = models["frame"]
    for column, kind in types.items():  # the source's types: integers are long
        if pd.api.types.is_integer_dtype(frame[column]):
            assert kind == "long", column
    optional = {c["name"] for c in found["inputs"] if not c.get("required", True)}
    if task == "binary":  # Telco's total_charges misses 11 values: optional, the others required
        assert optional == {"total_charges"}


def test_the_requirements_are_what_the_saved_model_needs(served_models: dict[str, Any]) -> None:
    import mlflow.pyfunc

    registry = Registry(served_models["tracking_uri"])
    with registry._active_uri():
        requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{served_models['name']}@champion"))
    names = {line.split("==")[0] for line in requirements.read_text().split()}
    assert {"retrainer", "scikit-learn", "skops", "pandas", "numpy"} <= names
    assert not names & {"torch", "xgboost", "lightgbm"}  # a logistic regression needs none of them


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_mlflow_models_serve_answers_invocations_as_retrainer_serve_does(
    request: pytest.FixtureRequest, task: str, tmp_path: Path
) -> None:
    models = _task_models(request, task)
    registry, name = models["registry"], models["name"]
    rows = json.loads(models["frame"].drop(columns=[models["label"]]).head(ROWS).to_json(orient="records"))
    port = _free_port()
    command = ["mlflow", "models", "serve", "-m", f"models:/{name}@champion", "--env-manager", "local"]
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(BIN, command[0])), *command[1:], "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=_env(registry.tracking_uri),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not answer /ping within 180 s"
            time.sleep(0.5)
        response = httpx.post(f"{url}/invocations", json={"dataframe_records": rows}, timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert response.status_code == 200, response.text
    _same(response.json()["predictions"], _retrainer_serve(models, rows))


def test_an_optional_column_may_be_left_out_or_null_in_both_servers(served_models: dict[str, Any]) -> None:
    """Telco's total_charges misses values in training: MLflow and retrainer serve take a row without it."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    models = _task_models_of(served_models)
    rows = json.loads(served_models["frame"].drop(columns=["churn"]).head(4).to_json(orient="records"))
    rows[0].pop("total_charges")
    rows[1]["total_charges"] = None
    with models["registry"]._active_uri():
        model = mlflow.pyfunc.load_model(f"models:/{served_models['name']}@champion")
    answers = json.loads(model.predict(pd.DataFrame(rows)).to_json(orient="records", double_precision=15))
    _same(answers, _retrainer_serve(models, rows))
    required = next(c for c in model.metadata.get_input_schema().inputs if c.name == "tenure")
    assert required.required  # no missing values in training: a row without it is refused
    with pytest.raises(MlflowException, match="tenure"):
        model.predict(pd.DataFrame(rows).drop(columns=["tenure"]))
