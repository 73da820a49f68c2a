"""Multiclass and regression end to end: real data, real Optuna studies, a real MLflow store, PostgreSQL.

Each task goes through what binary has: the first model is promoted, a gate rejects without
registering, a weaker challenger is registered and kept out, a hand promotion and a rollback
move the alias, and a champion that cannot be compared (other classes) keeps production as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import retrainer
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.promotion import promote, rollback
from retrainer.store import RunStore

pytestmark = pytest.mark.slow

FAST = {"candidates": ["logistic_regression", "lightgbm"], "n_trials": 2, "cv_folds": 3}


def write(tmp_path: Path, filename: str, **spec: Any) -> Path:
    spec = {"store": str(tmp_path / "store"), "report": {"auto": False}, **spec}
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def registry_for(spec: retrainer.Spec) -> Registry:
    return Registry(default_tracking_uri(RunStore(spec.store)))


def test_multiclass_promote_reject_keep_and_other_classes(tmp_path: Path, penguins: pd.DataFrame) -> None:
    penguins.to_csv(tmp_path / "penguins.csv", index=False)
    base = {
        "name": "penguins",
        "source": {"path": str(tmp_path / "penguins.csv")},
        "target": "species",
        "id_column": "penguin_id",
        "validation": {"min_rows": 100},
        "models": FAST,
        "evaluation": {"thresholds": {"accuracy": 0.9, "f1_macro": 0.85}},
    }
    spec = retrainer.load_spec(write(tmp_path, "p.yaml", **base))

    first = retrainer.run(spec)

    assert first.outcome == "promoted", first.reason
    assert first.metrics["test_accuracy"] > 0.9 and "test_f1_macro" in first.metrics
    assert "test_roc_auc" not in first.metrics  # a binary metric has no meaning here
    split = next(stage for stage in first.stages if stage.name == "split")
    assert split.summary.startswith("multiclass (inferred)")
    champion = registry_for(spec).by_alias("penguins", "champion")
    assert champion is not None
    assert json.loads(champion.tags["retrainer.task"]) == {
        "task": "multiclass",
        "labels": ["Adelie", "Chinstrap", "Gentoo"],
    }
    assert "retrainer.decision_threshold" not in champion.tags  # the threshold is binary's

    impossible = {**base, "evaluation": {"thresholds": {"accuracy": 0.9999, "log_loss": 0.0001}}}
    rejected = retrainer.run(retrainer.load_spec(write(tmp_path, "gate.yaml", **impossible)))
    assert rejected.outcome == "rejected" and "accuracy" in rejected.reason
    assert registry_for(spec).by_alias("penguins", "champion").version == 1  # type: ignore[union-attr]

    weak_models = {
        "candidates": ["logistic_regression"],
        "n_trials": 1,
        "cv_folds": 2,
        "params": {"logistic_regression": {"C": 0.001}},
    }
    weak = {**base, "models": weak_models, "evaluation": {"thresholds": {"accuracy": 0.3}}}
    kept = retrainer.run(retrainer.load_spec(write(tmp_path, "weak.yaml", **weak)))
    assert kept.outcome == "kept_champion", kept.reason
    assert "log_loss" in kept.reason and "vs champion" in kept.reason  # re-scored on the same test rows
    assert registry_for(spec).by_alias("penguins", "champion").version == 1  # type: ignore[union-attr]

    store = RunStore(spec.store)
    assert promote(registry_for(spec), store, "penguins", kept.model_version or 0) == 1
    assert rollback(registry_for(spec), store, "penguins") == (1, kept.model_version)

    # a batch without one species: the challenger knows two classes, the champion three
    two = penguins.loc[penguins["species"] != "Chinstrap"]
    two.to_csv(tmp_path / "two.csv", index=False)
    other = {
        **base,
        "task": "multiclass",
        "source": {"path": str(tmp_path / "two.csv")},
        # Adelie and Gentoo are told apart by any one measurement (AUC > 0.98): honest, not a leak
        "leakage": {"max_single_feature_auc": None},
    }
    refused = retrainer.run(retrainer.load_spec(write(tmp_path, "two.yaml", **other)))
    assert refused.outcome == "kept_champion", refused.reason
    assert "classes no longer seen ['Chinstrap']" in refused.reason
    assert registry_for(spec).by_alias("penguins", "champion").version == 1  # type: ignore[union-attr]

    # a regressor under the same name: not comparable with a classifier, so the champion stays
    masses = {
        **base,
        "task": "regression",
        "target": "body_mass_g",
        "models": {"candidates": ["ridge"], "n_trials": 1, "cv_folds": 2},
        "evaluation": {},
    }
    regressor = retrainer.run(retrainer.load_spec(write(tmp_path, "mass.yaml", **masses)))
    assert regressor.outcome == "kept_champion", regressor.reason
    assert "the champion is a multiclass model and the challenger a regression one" in regressor.reason
    assert registry_for(spec).by_alias("penguins", "champion").version == 1  # type: ignore[union-attr]


@pytest.mark.postgres
def test_regression_on_postgresql_log_target_promote_keep_and_reject(
    tmp_path: Path, ames: pd.DataFrame, pg_table: Callable[[pd.DataFrame], str], pg_url: str
) -> None:
    table = pg_table(ames)
    base = {
        "name": "ames",
        "task": "regression",
        "source": {"url": pg_url, "query": f"SELECT * FROM {table}"},
        "target": {"column": "Sale_Price", "transform": "log"},
        "id_column": "sale_id",
        "models": {"candidates": ["ridge", "lightgbm"], "n_trials": 2, "cv_folds": 3},
        "evaluation": {"thresholds": {"r2": 0.6, "rmse": 60000}},
    }
    spec = retrainer.load_spec(write(tmp_path, "a.yaml", **base))

    first = retrainer.run(spec)

    assert first.outcome == "promoted", first.reason
    assert 15_000 < first.metrics["test_rmse"] < 60_000  # dollars: the log is undone inside the model
    assert first.metrics["test_r2"] > 0.6
    model = registry_for(spec).load_model("ames", 1)
    predicted = model.predict(ames.drop(columns=["Sale_Price"]).head(20))
    assert 50_000 < float(predicted.mean()) < 400_000  # answers in the target's units

    strict = {**base, "evaluation": {"thresholds": {"rmse": 1000.0}}}
    rejected = retrainer.run(retrainer.load_spec(write(tmp_path, "strict.yaml", **strict)))
    assert rejected.outcome == "rejected" and "rmse" in rejected.reason and "maximum 1000" in rejected.reason

    ridge = {"candidates": ["ridge"], "n_trials": 1, "cv_folds": 2, "params": {"ridge": {"alpha": 1000.0}}}
    weak = {**base, "models": ridge, "evaluation": {"thresholds": {}}}
    kept = retrainer.run(retrainer.load_spec(write(tmp_path, "weak.yaml", **weak)))
    assert kept.outcome == "kept_champion", kept.reason
    assert kept.reason.startswith("rmse ")
    assert registry_for(spec).by_alias("ames", "champion").version == 1  # type: ignore[union-attr]

    store = RunStore(spec.store)
    assert promote(registry_for(spec), store, "ames", kept.model_version or 0) == 1  # a person overrides
    assert registry_for(spec).by_alias("ames", "champion").version == kept.model_version  # type: ignore[union-attr]
    assert rollback(registry_for(spec), store, "ames") == (1, kept.model_version)
    assert registry_for(spec).by_alias("ames", "champion").version == 1  # type: ignore[union-attr]
