"""The leakage guard on the real Telco training split: a copy of the target with noise is caught and
named, allowed when the spec lists it; honest features and id-like columns are not flagged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.errors import LeakageFound
from retrainer.pipeline import RunContext
from retrainer.spec import Spec, spec_from_dict
from retrainer.stages.features import feature_columns
from retrainer.stages.leakage import find_leaks, leakage, single_feature_auc
from retrainer.stages.split import split_frame
from retrainer.store import RunStore


def telco_spec(**leakage_rules: Any) -> Spec:
    return spec_from_dict(
        {
            "name": "telco",
            "source": {"path": "x.csv"},
            "target": {"column": "churn", "positive": "Yes"},
            "id_column": "customer_id",
            "leakage": leakage_rules,
        }
    )


@pytest.fixture(scope="module")
def leaky_train(telco: pd.DataFrame) -> pd.DataFrame:
    frame = telco.copy()
    rng = np.random.default_rng(0)
    churned = frame["churn"].eq("Yes").to_numpy()
    frame["refund_issued"] = churned * 100 + rng.normal(0, 25, len(frame))  # the label with noise: AUC ~0.998
    frame["ticket"] = [f"T{n}" for n in rng.permutation(len(frame))]  # unique per row, says nothing
    return split_frame(frame, telco_spec())["train"]


def test_target_copied_with_noise_is_caught_and_honest_columns_are_not(leaky_train: pd.DataFrame) -> None:
    spec = telco_spec()
    columns = feature_columns(leaky_train, spec)

    leaks = find_leaks(leaky_train, columns, spec)

    assert [leak.column for leak in leaks] == ["refund_issued"]
    assert leaks[0].observed > 0.98 and not leaks[0].allowed
    target = leaky_train["churn"].to_numpy()
    assert single_feature_auc(leaky_train["contract"], target) < 0.8  # the strongest honest feature
    assert single_feature_auc(leaky_train["ticket"], target) < 0.6  # memorising rows does not look like a leak


def test_stage_fails_naming_the_column_unless_the_spec_allows_it(leaky_train: pd.DataFrame, tmp_path: Any) -> None:
    inputs = {
        "train": leaky_train,
        "feature_schema": {"inputs": feature_columns(leaky_train, telco_spec())},
        "target_info": {"task": "binary", "positive": "Yes", "labels": ["No", "Yes"]},
    }

    def run(spec: Spec) -> Any:
        return leakage(RunContext(spec=spec, store=RunStore(str(tmp_path)), run_id="r"), inputs)

    with pytest.raises(
        LeakageFound, match=r"target leakage in refund_issued: refund_issued: single-feature AUC 0\.99\d+ > 0\.95"
    ):
        run(telco_spec())
    output = run(telco_spec(allow=["refund_issued"]))
    assert output.artifacts["leakage"]["leaks"][0]["allowed"] is True
    assert "refund_issued allowed" in output.summary
    with pytest.raises(LeakageFound, match=r"stands 0\.2\d+ above the next best feature \(contract, 0\.7\d+"):
        run(telco_spec(max_single_feature_auc=None))  # the lead rule catches it too
    assert run(telco_spec(max_single_feature_auc=None, max_auc_lead=None)).artifacts["leakage"]["leaks"] == []


def test_timestamps_after_the_label_time_are_leaks() -> None:
    labelled = pd.date_range("2026-01-01", periods=200, freq="D")
    frame = pd.DataFrame(
        {
            "labelled_at": labelled,
            "last_login": labelled - pd.Timedelta(days=3),
            "closed_at": labelled + pd.to_timedelta(np.r_[np.zeros(150), np.ones(50)], unit="D"),
            "note_date": (labelled - pd.Timedelta(days=1)).astype(str),
            "y": [0, 1] * 100,
        }
    )
    spec = spec_from_dict(
        {
            "name": "t",
            "source": {"path": "x.csv"},
            "target": "y",
            "leakage": {"label_time_column": "labelled_at", "timestamp_columns": ["note_date"]},
        }
    )

    leaks = find_leaks(frame, ["last_login", "closed_at", "note_date"], spec)

    assert [(leak.column, leak.kind, leak.observed) for leak in leaks] == [("closed_at", "after_label_time", 50.0)]
    assert "50 rows (25.0%) timestamped after labelled_at" in leaks[0].message


def test_after_training_one_input_carrying_most_of_the_shap_importance_is_named() -> None:
    from retrainer.stages.explain import dominant_feature

    columns = ["contract", "tenure", "refund_issued"]
    leaning = {"refund_issued": 0.9, "contract_Month-to-month": 0.05, "contract_Two year": 0.03, "tenure": 0.04}
    found = dominant_feature(leaning, columns, allowed=[])
    assert found is not None and found["column"] == "refund_issued" and found["next"] == "contract"
    assert found["message"].startswith("refund_issued carries 88% of the model's SHAP importance, 11.2x the next")
    assert dominant_feature(leaning, columns, allowed=["refund_issued"]) is None
    shared = {"contract_Month-to-month": 0.3, "contract_Two year": 0.2, "tenure": 0.4, "refund_issued": 0.1}
    assert dominant_feature(shared, columns, allowed=[]) is None  # contract's codes count together: 50 %


def test_a_challenger_far_better_than_the_champion_is_flagged_as_too_good_to_be_true() -> None:
    from retrainer.stages.compare import too_good_to_be_true

    warning = too_good_to_be_true("roc_auc", 0.995, 0.845, 1)  # the post-outcome column of issue 23
    assert warning == (
        "challenger roc_auc 0.9950 against champion v1's 0.8450 on the same rows: too good to be true? "
        "(check the top features for a proxy of the label)"
    )
    assert too_good_to_be_true("roc_auc", 0.86, 0.845, 1) is None  # a retrain's usual step
    assert too_good_to_be_true("rmse", 9_000, 21_000, 2) is not None  # an error cut by more than half
    assert too_good_to_be_true("rmse", 19_000, 21_000, 2) is None
