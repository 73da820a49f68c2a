"""Your own estimator end to end: a scikit-learn class that is not a built-in candidate, on real Telco rows,
tuned by Optuna, gated, explained, registered in MLflow with its package pinned, compared and served.

The spec is the worked example, `examples/telco_churn/own_model.yaml`, on 2,000 rows and fewer trials.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.spec import deep_merge, spec_from_dict
from retrainer.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "telco_churn" / "own_model.yaml"
NAME = "telco-churn-own-model"


def write_spec(directory: Path, telco: pd.DataFrame, overlay: dict[str, Any]) -> retrainer.Spec:
    from sklearn.model_selection import train_test_split
    from sqlalchemy import create_engine

    rows, _ = train_test_split(telco, train_size=2000, stratify=telco["churn"], random_state=5)
    engine = create_engine(f"sqlite:///{directory / 'telco.db'}")
    with engine.begin() as connection:
        rows.to_sql("customers", connection, index=False, if_exists="replace")
    engine.dispose()
    spec = deep_merge(yaml.safe_load(EXAMPLE.read_text()), overlay)
    spec.update(store=str(directory / "store"), report={"auto": False})
    spec["source"]["url"] = f"sqlite:///{directory / 'telco.db'}"
    path = directory / f"{len(list(directory.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return retrainer.load_spec(path)


def artifact(store: Path, stage: str, name: str) -> Any:
    import joblib

    path = max(store.glob(f"cache/{stage}/*/{name}"), key=lambda p: p.stat().st_mtime)
    return joblib.load(path) if path.suffix == ".joblib" else json.loads(path.read_text())


@pytest.mark.slow
def test_your_own_estimator_is_tuned_registered_pinned_served_and_compared(tmp_path: Path, telco: pd.DataFrame) -> None:
    from fastapi.testclient import TestClient
    from sklearn.ensemble import HistGradientBoostingClassifier

    from retrainer.serving.app import ServingConfig, create_app

    own_only = {"models": {"candidates": [yaml.safe_load(EXAMPLE.read_text())["models"]["candidates"][1]]}}
    spec = write_spec(tmp_path, telco, deep_merge(own_only, {"models": {"n_trials": 3, "cv_folds": 2}}))
    assert spec.models.catalogue["hist_gb"].requirements == ("scikit-learn",)

    first = retrainer.run(spec)
    print({stage.name: round(stage.seconds, 1) for stage in first.stages})

    print(first.outcome, first.reason, {k: round(v, 4) for k, v in first.metrics.items() if k.startswith("test_")})
    assert first.outcome == "promoted", first.reason
    store = Path(spec.store)
    tuning = artifact(store, "tune", "tuning.json")
    assert tuning["best_candidate"] == "hist_gb"
    assert tuning["candidates"]["hist_gb"]["n_trials"] == 3  # Optuna searched its space
    assert 0.02 <= tuning["candidates"]["hist_gb"]["best_params"]["learning_rate"] <= 0.3
    explanation = artifact(store, "explain", "explanation.json")
    assert explanation["explainer"] == "permutation"  # model-agnostic SHAP
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    champion = registry.by_alias(NAME, "champion")
    assert champion is not None and champion.tags["retrainer.candidate"] == "hist_gb"

    loaded = registry.load_model(NAME, champion.version)  # its class trusted from the model's MLmodel
    assert isinstance(loaded[-1], HistGradientBoostingClassifier) and loaded[-1].max_iter == 150
    test = pd.read_parquet(next(store.glob("cache/split/*/test.parquet")))
    columns = artifact(store, "train", "training.json")["input_columns"]
    trained = artifact(store, "train", "model.joblib")
    assert np.array_equal(loaded.predict_proba(test[columns]), trained.predict_proba(test[columns]))
    import mlflow.pyfunc

    with registry._active_uri():
        requirements = Path(mlflow.pyfunc.get_model_dependencies(f"models:/{NAME}/{champion.version}")).read_text()
    import sklearn

    assert f"scikit-learn=={sklearn.__version__}" in requirements.split()

    row = json.loads(test[[*columns, "customer_id"]].head(1).to_json(orient="records"))[0]
    config = ServingConfig.from_spec(spec, RunStore(spec.store))
    with TestClient(create_app(config, registry)) as client:
        answer = client.post("/predict", json=row)
    assert answer.status_code == 200, answer.text
    served = answer.json()
    print(served)
    assert served["version"] == champion.version

    # a weak estimator of the user's own (a factory in a module on the path) passes a low gate, is
    # compared with the champion on the same test rows (paired bootstrap), registered and kept out
    weak = {"name": "tiny_forest", "estimator": "own_estimators:make_scaled_forest"}
    weak_run = {
        "models": {
            "candidates": [{**weak, "params": {"n_estimators": 3, "max_depth": 1}}],
            "n_trials": 1,
            "cv_folds": 2,
        },
        "evaluation": {"thresholds": {"roc_auc": 0.6}},
    }
    second = retrainer.run(write_spec(tmp_path, telco, weak_run))
    print(second.outcome, second.reason)
    assert second.outcome == "kept_champion", second.reason
    assert "vs champion" in second.reason

    # the same estimator under a gate it cannot pass: rejected, nothing registered
    registered = len(registry.versions(NAME))
    third = retrainer.run(
        write_spec(tmp_path, telco, deep_merge(weak_run, {"evaluation": {"thresholds": {"roc_auc": 0.95}}}))
    )
    print(third.outcome, third.reason)
    assert third.outcome == "rejected" and "roc_auc" in third.reason
    assert len(registry.versions(NAME)) == registered
    assert registry.by_alias(NAME, "champion").version == champion.version  # type: ignore[union-attr]


def test_a_third_party_estimator_pins_its_own_package() -> None:
    """xgboost's random forest is no built-in: the package its class comes from is what the model needs."""
    import xgboost
    from sklearn.pipeline import Pipeline

    spec = spec_from_dict(
        {
            "name": "x",
            "source": {"url": "sqlite:///x.db", "query": "SELECT 1"},
            "target": "y",
            "task": "regression",
            "models": {
                "candidates": [
                    {
                        "name": "xgb_forest",
                        "estimator": "xgboost:XGBRFRegressor",
                        "search_space": {"max_depth": {"low": 2, "high": 6}},
                    }
                ]
            },
        }
    )
    candidate = spec.models.catalogue["xgb_forest"]
    assert candidate.requirements == ("xgboost",) and candidate.kinds == {"regressor"}
    model = candidate.build({"max_depth": 3}, 7, 1, "regressor")
    assert model.get_params()["random_state"] == 7  # the run's seed, as the built-ins get it
    assert f"xgboost=={xgboost.__version__}" in saved_model_requirements(Pipeline([("model", model)]))
    from retrainer.transforms import DerivedFeatures

    pins = saved_model_requirements(Pipeline([("derived", DerivedFeatures()), ("model", model)]))
    assert any(pin.startswith("retrainer==") for pin in pins)  # its transformer is retrainer's
    assert not any(pin.startswith("torch==") for pin in pins)  # torch is the MLP's need, not every model's


def saved_model_requirements(model: Any) -> list[str]:
    """The pins the registry logs: from the types in the saved file (`retrainer.pyfunc.pip_requirements`)."""
    import skops.io

    from retrainer.pyfunc import pip_requirements

    return pip_requirements(skops.io.get_untrusted_types(data=skops.io.dumps(model)))


@pytest.mark.slow
def test_your_own_multiclass_and_regression_estimators_are_promoted(tmp_path: Path, penguins: pd.DataFrame) -> None:
    """A factory for extra trees (tree SHAP per class) on the species; HistGradientBoostingRegressor on body mass."""
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    base = {
        "source": {"path": str(tmp_path / "penguins.csv")},
        "id_column": "penguin_id",
        "store": str(tmp_path / "store"),
        "report": {"auto": False},
        "validation": {"min_rows": 100},
    }
    forest = {
        "name": "extra_trees",
        "estimator": "own_estimators:make_scaled_forest",
        "search_space": {"max_depth": {"low": 2, "high": 8}},
    }
    boosting = {
        "name": "hist_gb",
        "estimator": "sklearn.ensemble:HistGradientBoostingRegressor",
        "params": {"max_iter": 60},
        "search_space": {"learning_rate": {"low": 0.03, "high": 0.3, "log": True}},
    }
    runs = {
        "species": {"target": "species", "evaluation": {"thresholds": {"accuracy": 0.9}}, "own": forest},
        "mass": {
            "target": "body_mass_g",
            "task": "regression",
            "evaluation": {"thresholds": {"r2": 0.5}},
            "own": boosting,
        },
    }
    for name, run in runs.items():
        own = run.pop("own")
        spec_file = tmp_path / f"{name}.yaml"
        models = {"candidates": [own], "n_trials": 2, "cv_folds": 2}
        spec_file.write_text(yaml.safe_dump({"name": name, **base, **run, "models": models}))
        spec = retrainer.load_spec(spec_file)

        result = retrainer.run(spec)

        print(name, result.outcome, result.reason)
        assert result.outcome == "promoted", result.reason
        registry = Registry(default_tracking_uri(RunStore(spec.store)))
        champion = registry.by_alias(name, "champion")
        assert champion is not None and champion.tags["retrainer.candidate"] == own["name"]
        explanation = artifact(Path(spec.store), "explain", "explanation.json")
        assert explanation["explainer"] == ("tree" if name == "species" else "permutation")
        loaded = registry.load_model(name, champion.version)
        assert type(loaded[-1]).__name__ in (
            "ExtraTreesClassifier",
            "TransformedTargetRegressor",
            "HistGradientBoostingRegressor",
        )
        assert loaded.predict(penguins.head(3)).shape == (3,)


def own_spec(candidates: list[Any], **models: Any) -> retrainer.Spec:
    source = {"url": "sqlite:///x.db", "query": "SELECT 1"}
    return spec_from_dict(
        {"name": "x", "source": source, "target": "y", "models": {"candidates": candidates, **models}}
    )


@pytest.mark.parametrize(
    ("candidates", "models", "message"),
    [
        (
            ["lightgbm", {"name": "lightgbm2", "estimator": "sklearn.svm:SVC"}],
            {},
            "SVC classifier without predict_proba",
        ),
        (
            [{"name": "a", "estimator": "sklearn.svm:SVC", "params": {"probability": True}}] * 2,
            {},
            "'a' is listed twice",
        ),
        ([{"name": "a", "estimator": "sklearn.svm"}], {}, "must be 'package.module:ClassOrFactory'"),
        (
            [{"name": "a", "estimator": "sklearn.linear_model:Ridge", "params": {"alpha": "x", "nope": 1}}],
            {},
            "failed: TypeError",
        ),
        (
            ["xgboost"],
            {"search_space": {"xgboost": {"eta": {"low": 0, "high": 1, "log": True}}}},
            "log range needs low > 0",
        ),
        (["xgboost"], {"search_space": {"xgboost": {"eta": {"choices": []}}}}, "choices must be a non-empty list"),
        ([{"name": "a", "estimator": "own_estimators:make_unsaveable_classifier"}], {}, "a model that cannot be saved"),
    ],
)
def test_spec_errors_of_your_own_estimator(candidates: list[Any], models: dict[str, Any], message: str) -> None:
    from retrainer.errors import SpecError

    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        own_spec(candidates, **models)


def test_a_fixed_param_is_not_searched_and_the_first_trial_is_the_librarys_default() -> None:
    entry = {
        "name": "trees",
        "estimator": "sklearn.ensemble:ExtraTreesClassifier",
        "params": {"n_estimators": 20},
        "search_space": {"n_estimators": {"low": 10, "high": 50}, "min_samples_leaf": {"low": 1, "high": 20}},
    }
    candidate = own_spec([entry]).models.catalogue["trees"]
    assert set(candidate.space) == {"min_samples_leaf"} and candidate.defaults == {"min_samples_leaf": 1}
    assert candidate.build({"min_samples_leaf": 3}, 1, 1, "classifier").get_params()["n_estimators"] == 20


def test_editing_your_estimators_module_changes_the_models_cache_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "my_churn_models.py"
    module.write_text("from sklearn.ensemble import ExtraTreesClassifier as Trees\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = own_spec([{"name": "trees", "estimator": "my_churn_models:Trees"}])
    before = spec.section_digest("models")

    module.write_text("from sklearn.ensemble import ExtraTreesClassifier as Trees  # tuned differently\n")

    assert spec.section_digest("models") != before
    assert spec.section_digest("evaluation") == own_spec(["lightgbm"]).section_digest("evaluation")
