"""The MLP end to end: tuned, calibrated, thresholded, registered in MLflow and loaded back to serve.

One pipeline run on 2,000 real Telco rows (module fixture); each test checks one promise about it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.store import RunStore

pytestmark = pytest.mark.slow

NAME = "telco-mlp"


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory, telco: pd.DataFrame) -> dict[str, Any]:
    from sklearn.model_selection import train_test_split
    from sqlalchemy import create_engine

    directory = tmp_path_factory.mktemp("mlp")
    rows, _ = train_test_split(telco, train_size=2000, stratify=telco["churn"], random_state=11)
    engine = create_engine(f"sqlite:///{directory / 'telco.db'}")
    with engine.begin() as connection:
        rows.to_sql("customers", connection, index=False)
    engine.dispose()
    spec_path = directory / "pipeline.yaml"
    spec_path.write_text(
        yaml.safe_dump(
            {
                "name": NAME,
                "source": {"url": f"sqlite:///{directory / 'telco.db'}", "query": "SELECT * FROM customers"},
                "target": {"column": "churn", "positive": "Yes"},
                "id_column": "customer_id",
                "store": str(directory / "store"),
                "models": {
                    "candidates": ["mlp"],
                    "n_trials": 1,
                    "cv_folds": 2,
                    "calibration": "sigmoid",
                    "params": {"mlp": {"max_epochs": 3, "patience": 2}},
                },
                "evaluation": {"metric": "roc_auc", "threshold_metric": "f1"},
            }
        )
    )
    spec = retrainer.load_spec(spec_path)
    result = retrainer.run(spec)
    print({stage.name: round(stage.seconds, 1) for stage in result.stages})
    assert result.outcome == "promoted", result.reason
    store = Path(spec.store)

    def artifact(stage: str, name: str) -> Any:
        (path,) = store.glob(f"cache/{stage}/*/{name}")
        return joblib.load(path) if path.suffix == ".joblib" else json.loads(path.read_text())

    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    return {
        "result": result,
        "registry": registry,
        "trained": artifact("train", "model.joblib"),
        "training": artifact("train", "training.json"),
        "evaluation": artifact("evaluate", "evaluation.json"),
        "test": pd.read_parquet(next(store.glob("cache/split/*/test.parquet"))),
    }


def test_the_mlp_is_registered_and_loads_back_with_the_same_probabilities(mlp_run: dict[str, Any]) -> None:
    import mlflow.pyfunc

    from retrainer.models.mlp import TorchMLPClassifier

    registry: Registry = mlp_run["registry"]
    champion = registry.by_alias(NAME, "champion")
    assert champion is not None and champion.tags["retrainer.candidate"] == "mlp"
    columns = mlp_run["training"]["input_columns"]
    rows = mlp_run["test"][columns]

    loaded = registry.load_model(NAME, champion.version)

    calibrated = loaded[-1]
    assert calibrated.method == "sigmoid"
    assert all(isinstance(c.estimator, TorchMLPClassifier) for c in calibrated.calibrated_classifiers_)
    assert np.array_equal(loaded.predict_proba(rows), mlp_run["trained"].predict_proba(rows))
    with registry._active_uri():  # MLflow's own loader, on the rows as the source gives them
        served = mlflow.pyfunc.load_model(f"models:/{NAME}/{champion.version}").predict(rows)
        requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{NAME}/{champion.version}")).read_text()
    threshold = float(champion.tags["retrainer.decision_threshold"])  # what retrainer serve decides at
    proba = loaded.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(served["probability"].to_numpy(), proba, rtol=1e-12)
    assert (served["threshold"] == threshold).all()
    assert np.array_equal(served["prediction"].to_numpy(), (proba >= threshold).astype(int))
    assert "torch==" in requirements and "retrainer==" in requirements  # what serving it needs installed


def test_the_threshold_chosen_on_validation_is_stored_used_and_beats_half_on_f1(mlp_run: dict[str, Any]) -> None:
    from retrainer.metrics import score

    training, evaluation = mlp_run["training"], mlp_run["evaluation"]
    champion = mlp_run["registry"].by_alias(NAME, "champion")
    chosen = training["decision_threshold"]
    test = mlp_run["test"]
    truth = test["churn"].to_numpy()
    proba = mlp_run["trained"].predict_proba(test[training["input_columns"]])[:, 1]

    assert training["threshold_source"] == "max out-of-fold f1"
    assert evaluation["decision_threshold"] == chosen
    assert float(champion.tags["retrainer.decision_threshold"]) == chosen
    assert evaluation["test"]["f1"] == pytest.approx(score("f1", truth, proba, chosen), abs=1e-6)
    assert score("f1", truth, proba, chosen) > score("f1", truth, proba, 0.5)  # 27 % churners: 0.5 is too strict


def test_the_evaluation_keeps_the_reliability_curve_and_logs_the_plot(mlp_run: dict[str, Any]) -> None:
    curve = mlp_run["evaluation"]["calibration"]["test"]
    registry: Registry = mlp_run["registry"]
    champion = registry.by_alias(NAME, "champion")

    assert len(curve["prob_pred"]) == len(curve["prob_true"]) == len(curve["counts"]) >= 3
    assert sum(curve["counts"]) == len(mlp_run["test"])
    assert all(0 <= p <= 1 for p in curve["prob_pred"] + curve["prob_true"])
    assert Path(mlp_run["evaluation"]["calibration_plot"]).read_bytes().startswith(b"\x89PNG")
    logged = {Path(a.path).name for a in registry.client.list_artifacts(champion.run_id, "retrainer")}
    assert {"calibration.png", "evaluation.json", "training.json"} <= logged


def test_a_large_logged_dataset_gets_the_schema_of_its_every_row(telco: pd.DataFrame, tmp_path: Path) -> None:
    """Above SCHEMA_ROWS the dataset's column types come from its first rows: the same as from all."""
    import mlflow.data
    from sklearn.linear_model import LogisticRegression

    from retrainer.integrations.mlflow_registry import SCHEMA_ROWS

    frame = pd.concat([telco, telco], ignore_index=True)
    assert len(frame) > SCHEMA_ROWS
    columns = ["tenure", "monthly_charges"]
    model = LogisticRegression().fit(frame[columns], frame["churn"] == "Yes")
    registry = Registry(f"sqlite:///{tmp_path / 'mlflow.db'}")
    info = registry.log_and_register(
        "schema-rows",
        experiment="schema-rows",
        model=model,
        input_example=frame[columns].head(5),
        params={},
        metrics={},
        tags={},
        artifacts={},
        datasets={"train": (frame, str(tmp_path / "train.parquet"), "digest")},
    )

    (logged,) = registry.client.get_run(info.run_id).inputs.dataset_inputs  # type: ignore[arg-type]
    expected = mlflow.data.from_pandas(frame, digest="digest")
    assert json.loads(logged.dataset.schema) == json.loads(expected.to_dict()["schema"])
    assert f'"num_rows": {len(frame)}' in logged.dataset.profile
