"""task: forecast against a hand-written statsforecast script on the same backtest (issue 20).

    PYTHONPATH=src .venv/bin/python benchmarks/forecast.py

Data: examples/spending (fpp2 auscafe, 426 months). Both sides backtest 12 months ahead from the
last 4 origins, 12 months apart, refitting at each, and report the MASE over those windows (scale:
the in-sample seasonal-naive MAE before each origin, as retrainer computes it).

- `hand-written`: StatsForecast([AutoETS, SeasonalNaive]).cross_validation, nothing else.
- `retrainer auto_ets`: the whole pipeline (extract, checks, split, a tuning backtest on the earlier
  windows, fit, evaluation backtest, gate against the seasonal naive, MLflow registration, promotion)
  with AutoETS alone: the like-for-like wall time.
- `hand-written retrain`: the same backtest, then what a retraining script also does: fit AutoETS
  on the whole series, and log it to MLflow (params, the backtest MASE, the model as a pyfunc),
  register it and point the `champion` alias at it, on a fresh SQLite store: the like-for-like
  side of `retrainer auto_ets`.
- `hand-written Prophet`: Prophet with its defaults, refitted at each of the same origins.
- `retrainer example`: the example's spec (AutoETS, AutoTheta, LightGBM through mlforecast and
  Prophet, both tuned by Optuna, and the seasonal-naive baseline), which picks its model on the
  earlier windows.

Wall times include each side's imports. Prints one row per side.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
HAND = """
import time, warnings
started = time.perf_counter()
import numpy as np, pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, SeasonalNaive
warnings.simplefilter("ignore")
frame = pd.read_csv({path!r}, parse_dates=["month"])
data = pd.DataFrame({{"unique_id": "all", "ds": frame["month"], "y": frame["spending"]}})
sf = StatsForecast(models=[AutoETS(season_length=12), SeasonalNaive(season_length=12)], freq="MS")
cv = sf.cross_validation(df=data, h=12, n_windows=4, step_size=12, refit=True)
y = data["y"].to_numpy()
scale = {{}}
for cutoff in cv["cutoff"].unique():
    past = y[: int((data["ds"] <= cutoff).sum())]
    scale[cutoff] = np.mean(np.abs(past[12:] - past[:-12]))
s = cv["cutoff"].map(scale)
ets = float(np.mean(np.abs(cv["y"] - cv["AutoETS"]) / s))
naive = float(np.mean(np.abs(cv["y"] - cv["SeasonalNaive"]) / s))
print(f"{{time.perf_counter() - started:.2f}} {{ets:.4f}} {{naive:.4f}}")
"""

RETRAIN = HAND.replace(
    'print(f"{{time.perf_counter() - started:.2f}} {{ets:.4f}} {{naive:.4f}}")',
    """
import mlflow
from mlflow import MlflowClient

class Forecaster(mlflow.pyfunc.PythonModel):
    def __init__(self, fitted):
        self.fitted = fitted

    def predict(self, context, model_input, params=None):
        return self.fitted.predict(h=int(model_input["h"].iloc[0]))

mlflow.set_tracking_uri("sqlite:///{store}/mlflow.db")
mlflow.set_experiment("spending")
final = StatsForecast(models=[AutoETS(season_length=12)], freq="MS").fit(df=data)
with mlflow.start_run():
    mlflow.log_params({{"model": "AutoETS", "season_length": 12, "horizon": 12, "windows": 4}})
    mlflow.log_metrics({{"mase": ets, "naive_mase": naive}})
    info = mlflow.pyfunc.log_model(name="model", python_model=Forecaster(final), registered_model_name="spending")
MlflowClient().set_registered_model_alias("spending", "champion", info.registered_model_version)
print(f"{{time.perf_counter() - started:.2f}} {{ets:.4f}} {{naive:.4f}}")
""",
)


def hand_written(path: Path, store: Path | None = None) -> tuple[float, float, float]:
    """The backtest alone, or (with `store`) the whole hand-written retrain logging to MLflow there."""
    script = HAND.format(path=str(path)) if store is None else RETRAIN.format(path=str(path), store=str(store))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    seconds, ets, naive = out.stdout.split()[-3:]
    return float(seconds), float(ets), float(naive)


PROPHET = """
import time, logging
started = time.perf_counter()
import numpy as np, pandas as pd
logging.getLogger("prophet.plot").disabled = True
from prophet import Prophet
from cmdstanpy.utils import get_logger
get_logger().setLevel(logging.WARNING)
frame = pd.read_csv({path!r}, parse_dates=["month"]).rename(columns={{"month": "ds", "spending": "y"}})
y, errors = frame["y"].to_numpy(), []
for window in range(4):
    end = len(frame) - 12 - 12 * (3 - window)
    model = Prophet(weekly_seasonality=False, daily_seasonality=False).fit(frame.iloc[:end])
    ahead = model.predict(frame.iloc[end : end + 12][["ds"]])["yhat"].to_numpy()
    scale = np.mean(np.abs(y[12:end] - y[: end - 12]))
    errors += list(np.abs(y[end : end + 12] - ahead) / scale)
print(f"{{time.perf_counter() - started:.2f}} {{np.mean(errors):.4f}}")
"""


def prophet_alone(path: Path) -> tuple[float, float]:
    command = [sys.executable, "-c", PROPHET.format(path=str(path))]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    seconds, mase = out.stdout.split()[-2:]
    return float(seconds), float(mase)


RUN = """
import time
started = time.perf_counter()
import retrainer
result = retrainer.run(retrainer.load_spec({spec!r}))
metrics = result.metrics
print(f"{{time.perf_counter() - started:.2f}} {{metrics.get('test_mase', float('nan')):.4f}} {{result.outcome}}")
"""


def retrainer_run(work: Path, data: Path, name: str, models: dict[str, object] | None) -> tuple[float, float, str]:
    spec = yaml.safe_load((ROOT / "examples" / "spending" / "pipeline.yaml").read_text())
    spec |= {"source": {"path": str(data)}, "store": str(work / name), "report": {"auto": False}}
    if models is not None:
        spec["models"] = models
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = subprocess.run(
        [sys.executable, "-c", RUN.format(spec=str(path))], capture_output=True, text=True, check=True, cwd=ROOT
    )
    seconds, mase, outcome = out.stdout.split()[-3:]
    return float(seconds), float(mase), outcome


def main() -> None:
    sys.path.insert(0, str(ROOT / "examples" / "spending"))
    from setup_data import write  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory(prefix="retrainer-forecast-bench-") as directory:
        work = Path(directory)
        data = write(work / "auscafe.csv")
        hand_seconds, hand_mase, naive_mase = hand_written(data)
        prophet_seconds, prophet_mase = prophet_alone(data)
        # the two like-for-like retrains take turns, 3 times each, every run on a fresh store: medians
        retrains, likes = [], []
        for turn in range(3):
            retrains.append(hand_written(data, store=Path(tempfile.mkdtemp(dir=work))))
            likes.append(retrainer_run(work, data, f"auto_ets_{turn}", {"candidates": ["auto_ets"], "n_trials": 1}))
        retrain = sorted(retrains)[1]
        like = sorted(likes)[1]
        example = retrainer_run(work, data, "example", None)
    print(f"{'side':<22} {'wall s':>7} {'test MASE':>10}  note")
    print(f"{'seasonal naive':<22} {'':>7} {naive_mase:>10.4f}  the baseline, same windows")
    print(f"{'hand-written AutoETS':<22} {hand_seconds:>7.2f} {hand_mase:>10.4f}  statsforecast cross_validation only")
    print(
        f"{'hand-written Prophet':<22} {prophet_seconds:>7.2f} {prophet_mase:>10.4f}  Prophet's defaults, same origins"
    )
    print(f"{'hand-written retrain':<22} {retrain[0]:>7.2f} {retrain[1]:>10.4f}  + final fit, MLflow, register, alias")
    print(
        f"{'retrainer auto_ets':<22} {like[0]:>7.2f} {like[1]:>10.4f}  {like[2]}; "
        f"{like[0] / retrain[0]:.2f} x the retrain, {like[0] / hand_seconds:.2f} x the backtest alone (medians of 3)"
    )
    print(
        f"{'retrainer example':<22} {example[0]:>7.2f} {example[1]:>10.4f}  {example[2]}; 5 candidates, Prophet tuned"
    )


if __name__ == "__main__":
    main()
