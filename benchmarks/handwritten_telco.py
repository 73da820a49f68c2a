"""The Telco churn retraining a data scientist would write by hand: the baseline of benchmarks/overhead.py.

    .venv/bin/python benchmarks/handwritten_telco.py --db telco.db --tracking sqlite:///mlflow.db [--trials 10]

The usual tools, used the usual way: pandas reads the table, scikit-learn splits it (stratified 80/20)
and preprocesses it (median impute + scale, one-hot), Optuna's seeded TPE tunes each candidate
(logistic regression, random forest, XGBoost, LightGBM) on stratified 3-fold CV with a median pruner,
the boosters stop early on a held-out 15% of each fold, the best candidate is refit on the training
split and scored on the test split, and MLflow logs it, registers it and points the `champion` alias
at it. Same candidates, search spaces, trials, seed and split as retrainer's defaults, so the two
reach the same model; what it does not do is everything else retrainer does (validation gates,
drift, leakage checks, explanations, the report, the champion comparison, caching, resuming).

Prints one JSON line: the chosen candidate, its CV and test ROC-AUC, the registered version.
"""

from __future__ import annotations

import argparse
import json
import warnings

import lightgbm
import mlflow
import numpy as np
import optuna
import pandas as pd
import skops.io
from lightgbm import LGBMClassifier
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sqlalchemy import create_engine
from xgboost import XGBClassifier

SEED = 42
FOLDS = 3
EARLY_STOPPING_ROUNDS = 30


def preprocessor(frame: pd.DataFrame) -> Pipeline:
    numeric = frame.select_dtypes("number").columns.tolist()
    categorical = [c for c in frame.columns if c not in numeric]
    encode = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50, sparse_output=False)
    return Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        (
                            "numeric",
                            Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                            numeric,
                        ),
                        (
                            "categorical",
                            Pipeline(
                                [
                                    ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                                    ("encode", encode),
                                ]
                            ),
                            categorical,
                        ),
                    ]
                ),
            )
        ]
    )


# Each candidate: its search space and a known-good first trial (as retrainer's catalogue has them).
def logistic_regression(trial: optuna.Trial) -> LogisticRegression:
    return LogisticRegression(
        C=trial.suggest_float("C", 1e-3, 100.0, log=True),
        class_weight=trial.suggest_categorical("class_weight", [None, "balanced"]),
        max_iter=2000,
        random_state=SEED,
    )


def random_forest(trial: optuna.Trial) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=trial.suggest_int("n_estimators", 100, 400),
        max_depth=trial.suggest_int("max_depth", 3, 16),
        min_samples_leaf=trial.suggest_int("min_samples_leaf", 1, 30, log=True),
        max_features=trial.suggest_categorical("max_features", ["sqrt", "log2", 0.5]),
        class_weight=trial.suggest_categorical("class_weight", [None, "balanced"]),
        random_state=SEED,
        n_jobs=1,
    )


def xgboost(trial: optuna.Trial) -> XGBClassifier:
    model = XGBClassifier(
        n_estimators=trial.suggest_int("n_estimators", 50, 500),
        max_depth=trial.suggest_int("max_depth", 2, 8),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        subsample=trial.suggest_float("subsample", 0.6, 1.0),
        colsample_bytree=trial.suggest_float("colsample_bytree", 0.5, 1.0),
        min_child_weight=trial.suggest_float("min_child_weight", 1.0, 20.0, log=True),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        random_state=SEED,
        n_jobs=1,
        tree_method="hist",
        eval_metric="logloss",
        verbosity=0,
    )
    model.balanced = trial.suggest_categorical("class_weight", [None, "balanced"]) == "balanced"
    return model


def lightgbm_model(trial: optuna.Trial) -> LGBMClassifier:
    return LGBMClassifier(
        n_estimators=trial.suggest_int("n_estimators", 50, 500),
        num_leaves=trial.suggest_int("num_leaves", 4, 64, log=True),
        learning_rate=trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        min_child_samples=trial.suggest_int("min_child_samples", 5, 100, log=True),
        subsample=trial.suggest_float("subsample", 0.6, 1.0),
        colsample_bytree=trial.suggest_float("colsample_bytree", 0.5, 1.0),
        reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        class_weight=trial.suggest_categorical("class_weight", [None, "balanced"]),
        random_state=SEED,
        n_jobs=1,
        verbose=-1,
        subsample_freq=1,
    )


BOOSTER = {"n_estimators": 200, "learning_rate": 0.05, "subsample": 0.9, "colsample_bytree": 0.8, "reg_lambda": 1.0}
CANDIDATES = {
    "logistic_regression": (logistic_regression, {"C": 1.0, "class_weight": None}),
    "random_forest": (
        random_forest,
        {"n_estimators": 200, "max_depth": 10, "min_samples_leaf": 5, "max_features": "sqrt", "class_weight": None},
    ),
    "xgboost": (xgboost, {**BOOSTER, "max_depth": 3, "min_child_weight": 1.0, "class_weight": None}),
    "lightgbm": (lightgbm_model, {**BOOSTER, "num_leaves": 8, "min_child_samples": 20, "class_weight": None}),
}


def fit(preprocess: Pipeline, model, X: pd.DataFrame, y: np.ndarray) -> tuple[Pipeline, int | None]:  # noqa: N803
    """Fit preprocessing + model; a booster stops early on 15% of the rows and reports its best iteration."""
    weights = compute_sample_weight("balanced", y) if getattr(model, "balanced", False) else None
    if not isinstance(model, XGBClassifier | LGBMClassifier):
        pipeline = Pipeline([("preprocess", clone(preprocess)), ("model", model)])
        pipeline.fit(X, y)
        return pipeline, None
    fit_rows, val_rows = train_test_split(np.arange(len(y)), test_size=0.15, stratify=y, random_state=SEED)
    prep = clone(preprocess)
    fit_x, val_x = prep.fit_transform(X.iloc[fit_rows], y[fit_rows]), prep.transform(X.iloc[val_rows])
    if isinstance(model, XGBClassifier):
        model.set_params(early_stopping_rounds=EARLY_STOPPING_ROUNDS)
        sample_weight = None if weights is None else weights[fit_rows]
        model.fit(fit_x, y[fit_rows], sample_weight=sample_weight, eval_set=[(val_x, y[val_rows])], verbose=False)
        best = model.best_iteration + 1
    else:
        stop = lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)
        model.fit(fit_x, y[fit_rows], eval_X=(val_x,), eval_y=(y[val_rows],), callbacks=[stop])
        best = model.best_iteration_ or model.n_estimators
    return Pipeline([("preprocess", prep), ("model", model)]), int(best)


def tune(name: str, X: pd.DataFrame, y: np.ndarray, preprocess: Pipeline, trials: int) -> optuna.Study:  # noqa: N803
    build, defaults = CANDIDATES[name]
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)

    def objective(trial: optuna.Trial) -> float:
        scores, iterations = [], []
        for step, (fit_rows, score_rows) in enumerate(folds.split(X, y)):
            model, best = fit(preprocess, build(trial), X.iloc[fit_rows], y[fit_rows])
            if best is not None:
                iterations.append(best)
                trial.set_user_attr("best_iteration", round(float(np.mean(iterations))))
            scores.append(roc_auc_score(y[score_rows], model.predict_proba(X.iloc[score_rows])[:, 1]))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=min(5, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    study.enqueue_trial(defaults)
    study.optimize(objective, n_trials=trials)
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the SQLite file holding the customers table")
    parser.add_argument("--tracking", required=True, help="MLflow tracking URI")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--name", default="telco-churn-handwritten")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    frame = pd.read_sql("SELECT * FROM customers", create_engine(f"sqlite:///{args.db}"))
    y = (frame.pop("churn") == "Yes").astype(int).to_numpy()
    X = frame.drop(columns=["customer_id"])  # noqa: N806
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, stratify=y, random_state=SEED)  # noqa: N806
    preprocess = preprocessor(X_train)

    studies = {name: tune(name, X_train, y_train, preprocess, args.trials) for name in CANDIDATES}
    name = max(studies, key=lambda n: studies[n].best_value)
    best = studies[name].best_trial
    model = CANDIDATES[name][0](optuna.trial.FixedTrial(best.params))
    if "best_iteration" in best.user_attrs:
        model.set_params(n_estimators=best.user_attrs["best_iteration"])
    weights = compute_sample_weight("balanced", y_train) if getattr(model, "balanced", False) else None
    final = Pipeline([("preprocess", clone(preprocess)), ("model", model)])
    final.fit(X_train, y_train, **({"model__sample_weight": weights} if weights is not None else {}))
    test_auc = roc_auc_score(y_test, final.predict_proba(X_test)[:, 1])

    mlflow.set_tracking_uri(args.tracking)
    mlflow.set_experiment(args.name)
    with mlflow.start_run() as run, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        mlflow.log_params({"candidate": name, **best.params})
        mlflow.log_metrics({"cv_roc_auc": studies[name].best_value, "test_roc_auc": test_auc})
        example = X_test.head(5).astype({c: "float64" for c in X_test.select_dtypes("integer").columns})
        # MLflow 3 saves with skops, which refuses types it does not know unless they are listed
        trusted = skops.io.get_untrusted_types(data=skops.io.dumps(final))
        logged = mlflow.sklearn.log_model(final, name="model", input_example=example, skops_trusted_types=trusted)
    version = mlflow.register_model(logged.model_uri, args.name)
    mlflow.MlflowClient().set_registered_model_alias(args.name, "champion", version.version)
    result = {"candidate": name, "cv_roc_auc": studies[name].best_value, "test_roc_auc": test_auc}
    print(json.dumps({**result, "version": int(version.version), "run_id": run.info.run_id}))


if __name__ == "__main__":
    main()
