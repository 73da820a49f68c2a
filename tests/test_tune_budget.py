"""Tuning under `models.timeout` and `models.tune_rows`, on real Telco rows through the real tune/train stages."""

from __future__ import annotations

import datetime
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrainer.integrations.mlflow_registry import Registry
from retrainer.pipeline import RunContext
from retrainer.spec import Spec, spec_from_dict
from retrainer.store import RunStore

ROWS = 800
BINARY_CHURN = {"task": "binary", "positive": 1, "labels": [0, 1]}  # the split's target_info for churn as 0/1


def budget_spec(tmp_path: Path, **models: Any) -> Spec:
    return spec_from_dict(
        {
            "name": "telco-budget",
            "source": {"path": "unused.csv"},
            "target": {"column": "churn", "positive": 1},
            "id_column": "customer_id",
            "models": {"cv_folds": 3, **models},
            "store": str(tmp_path / "store"),
        }
    )


@pytest.fixture(scope="module")
def telco_train(telco: pd.DataFrame) -> pd.DataFrame:
    """A stratified sample of real Telco rows with the target encoded 0/1, as the split stage leaves it."""
    import lightgbm  # noqa: F401 - imported here, not inside the first timed trial
    from sklearn.model_selection import train_test_split

    sample, _ = train_test_split(telco, train_size=ROWS, stratify=telco["churn"], random_state=3)
    return sample.assign(churn=(sample["churn"] == "Yes").astype(int)).reset_index(drop=True)


def tune_and_train(spec: Spec, frame: pd.DataFrame) -> tuple[dict[str, Any], dict[str, Any], float]:
    from retrainer.stages.features import build_preprocessor
    from retrainer.stages.train import train
    from retrainer.stages.tune import tune

    preprocessor, schema = build_preprocessor(frame, spec)
    inputs: dict[str, Any] = {
        "train": frame,
        "preprocessor": preprocessor,
        "feature_schema": schema,
        "target_info": BINARY_CHURN,
    }
    store = RunStore(spec.store)
    started = time.monotonic()
    tuning = tune(
        RunContext(spec=spec, store=store, run_id="r", stage="tune", cache_key="k", open_registry=Registry.for_spec),
        inputs,
    )
    trained = train(
        RunContext(spec=spec, store=store, run_id="r", stage="train", cache_key="k"),
        {**inputs, "tuning": tuning.artifacts["tuning"]},
    )
    return tuning.artifacts["tuning"], trained.artifacts["training"], time.monotonic() - started


def test_without_timeout_ten_trials_with_timeout_open_ended(tmp_path: Path) -> None:
    assert budget_spec(tmp_path).models.n_trials == 10
    assert budget_spec(tmp_path, timeout="1m").models.n_trials is None  # trials fill the budget
    assert budget_spec(tmp_path, timeout="1m", n_trials=4).models.n_trials == 4  # a cap per candidate
    assert budget_spec(tmp_path, timeout="1m").models.tune_rows == 250_000


def test_budget_spends_the_time_on_several_candidates_and_stays_within_it(
    tmp_path: Path, telco_train: pd.DataFrame
) -> None:
    budget = 25.0
    spec = budget_spec(tmp_path, candidates=["logistic_regression", "lightgbm"], timeout=f"{budget}s")

    tuning, training, seconds = tune_and_train(spec, telco_train)

    trials = {name: record["n_trials"] for name, record in tuning["candidates"].items()}
    assert set(trials) == {"logistic_regression", "lightgbm"}
    assert all(record["n_complete"] >= 1 for record in tuning["candidates"].values())  # both ran, defaults first
    assert sum(trials.values()) > len(trials)  # no n_trials: trials went on past the defaults
    # tune and the final fit together: within the budget, with slack for a loaded 2-core machine
    assert seconds < budget + 6, f"{seconds:.1f}s for a {budget}s budget ({trials})"
    # past TPE's start-up, the local search took turns: each of its trials follows one of TPE's
    history = max(tuning["candidates"].values(), key=lambda record: len(record["history"]))["history"]
    proposals = [trial["proposal"] for trial in history]
    assert proposals[0] == "defaults" and "local" in proposals, proposals
    assert all(proposals[i - 1] != "local" for i, p in enumerate(proposals) if p == "local"), proposals
    assert training["candidate"] == tuning["best_candidate"]


def test_n_trials_caps_each_candidate_under_a_timeout(tmp_path: Path, telco_train: pd.DataFrame) -> None:
    spec = budget_spec(tmp_path, candidates=["logistic_regression", "lightgbm"], timeout="5m", n_trials=2)

    tuning, _, seconds = tune_and_train(spec, telco_train)

    assert {name: record["n_trials"] for name, record in tuning["candidates"].items()} == {
        "logistic_regression": 2,
        "lightgbm": 2,
    }
    assert seconds < 60  # the cap ended tuning, not the five-minute budget


def test_expected_cost_favours_the_improving_cheap_candidate() -> None:
    from retrainer.tuning import CandidateRecord, expected_cost_for_improvement

    fast = CandidateRecord(
        spent=2.0,
        trials=4,
        best=0.85,
        first=0.80,
        spent_at_best=1.5,
        spent_at_previous_best=1.0,
        complete_seconds=[0.5] * 4,
    )
    stalled = CandidateRecord(
        spent=20.0, trials=2, best=0.82, first=0.82, spent_at_best=10.0, complete_seconds=[10.0] * 2
    )

    costs = expected_cost_for_improvement({"fast": fast, "stalled": stalled})

    assert costs["fast"] == pytest.approx(0.5)  # the leader: one trial since its best
    assert costs["stalled"] == pytest.approx(2 * 10.0)  # trails and never improved: double its cost
    assert costs["fast"] < costs["stalled"]


def test_tune_rows_samples_stratified_and_train_uses_every_row(
    tmp_path: Path, telco_train: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    from retrainer.tuning import tuning_rows

    spec = budget_spec(tmp_path, candidates=["logistic_regression"], n_trials=1, tune_rows=500)
    X, y = telco_train.drop(columns=["churn"]), telco_train["churn"].to_numpy()  # noqa: N806

    sampled_x, sampled_y = tuning_rows(X, y, spec)

    assert len(sampled_y) == 500 and len(sampled_x) == 500
    assert abs(sampled_y.mean() - y.mean()) < 1 / 500 + 1e-9  # the class balance is kept
    assert sampled_x.index.is_unique and set(sampled_x.index) <= set(X.index)
    assert tuning_rows(X, y, budget_spec(tmp_path, tune_rows=None))[0] is X  # null: every row

    with caplog.at_level(logging.INFO, logger="retrainer"):
        tuning, training, _ = tune_and_train(spec, telco_train)

    assert f"stratified sample of 500 of {ROWS} rows" in caplog.text
    assert tuning["candidates"]["logistic_regression"]["n_complete"] == 1
    assert training["train_rows"] == ROWS  # the final model fits every training row


def test_trial_work_scales_a_candidates_measured_seconds_to_a_new_sample() -> None:

    import optuna

    from retrainer.models import CATALOGUE
    from retrainer.tuning import candidate_records, trial_work

    forest = CATALOGUE["random_forest"].defaults
    assert trial_work("random_forest", {**forest, "max_features": 0.5, "max_depth": 16}, 108) > 5 * trial_work(
        "random_forest", forest, 108
    )  # half the columns scanned per split instead of their square root, deeper trees
    assert trial_work("lightgbm", {"num_leaves": 64}, 20) > trial_work("lightgbm", {"num_leaves": 8}, 20)
    assert trial_work("xgboost", {"n_estimators": 400}, 20) == pytest.approx(2 * trial_work("xgboost", {}, 20))
    assert trial_work("logistic_regression", {"C": 10.0}, 20) == 1.0  # no size to scale by

    study = optuna.create_study()
    start = datetime.datetime(2026, 1, 1)
    for seconds, work in [(2.0, 100.0), (3.0, 100.0)]:  # the costlier second trial sets the rate
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=0,
                state=optuna.trial.TrialState.COMPLETE,
                value=0.8,
                datetime_start=start,
                datetime_complete=start + datetime.timedelta(seconds=seconds),
                params={},
                distributions={},
                user_attrs={"work": work},
                system_attrs={},
                intermediate_values={},
                trial_id=0,
            )
        )
    assert candidate_records({"lightgbm": study})["lightgbm"].seconds_per_work == pytest.approx(0.03)


def test_a_resumed_tuning_spends_only_what_is_left_of_the_budget(tmp_path: Path, telco_train: pd.DataFrame) -> None:
    from retrainer.stages.features import build_preprocessor
    from retrainer.stages.tune import tune
    from retrainer.tuning import budget_deadline, open_study, spent_on_trials

    budget = 12.0
    spec = budget_spec(tmp_path, candidates=["logistic_regression", "lightgbm"], timeout=f"{budget}s")
    preprocessor, schema = build_preprocessor(telco_train, spec)
    inputs: dict[str, Any] = {
        "train": telco_train,
        "preprocessor": preprocessor,
        "feature_schema": schema,
        "target_info": BINARY_CHURN,
    }
    ctx = RunContext(
        spec=spec, store=RunStore(spec.store), run_id="r", stage="tune", cache_key="k", open_registry=Registry.for_spec
    )
    first = tune(ctx, inputs).artifacts["tuning"]
    studies = {c: open_study(ctx, c, "roc_auc") for c in spec.models.candidates}
    spent = spent_on_trials(studies.values())
    assert 0.5 * budget < spent <= budget + 6  # the first run used (about) the whole budget

    deadline = budget_deadline(spec, spent)
    assert deadline is not None and deadline - time.monotonic() < max(0.0, budget - spent) + 1
    started, resumed_at = time.monotonic(), datetime.datetime.now()
    again = tune(
        RunContext(
            spec=spec,
            store=RunStore(spec.store),
            run_id="r2",
            stage="tune",
            cache_key="k",
            open_registry=Registry.for_spec,
        ),
        inputs,
    )
    resumed = again.artifacts["tuning"]

    # the same studies, found (nearly) spent: the resumed run's trials fill what was left of the
    # budget plus at most one trial's overrun, not a second budget. (A count of new trials is not the
    # property: a second left of the budget holds several fast logistic-regression trials.)
    assert time.monotonic() - started < budget / 2
    before = sum(r["n_trials"] + r["n_not_started"] for r in first["candidates"].values())
    after = sum(r["n_trials"] + r["n_not_started"] for r in resumed["candidates"].values())
    assert before <= after
    durations: dict[str, list[float]] = {"first": [], "resumed": []}
    for candidate in spec.models.candidates:
        for trial in open_study(ctx, candidate, "roc_auc").get_trials(deepcopy=False):
            if trial.datetime_start is not None and trial.datetime_complete is not None:
                run = "resumed" if trial.datetime_start >= resumed_at else "first"
                durations[run].append((trial.datetime_complete - trial.datetime_start).total_seconds())
    assert sum(durations["resumed"]) <= max(0.0, budget - spent) + max(durations["first"]) + 1
    assert resumed["best_candidate"] == first["best_candidate"]
    for record in resumed["candidates"].values():
        history = record["history"]
        assert record["n_trials"] + record["n_not_started"] == len([t for t in history if t["state"] != "FAIL"])
        assert record["n_pruned"] >= 0


def test_a_neighbour_stays_in_the_space_and_near_the_point() -> None:
    import random

    from retrainer.models import CATALOGUE, neighbour

    space = CATALOGUE["lightgbm"].space
    best = {**CATALOGUE["lightgbm"].defaults, "class_weight": "balanced"}
    draw = random.Random(0)
    points = [neighbour(best, space, 0.1, draw) for _ in range(300)]

    for point in points:
        assert set(point) == set(space)
        for param, bounds in space.items():
            if "choices" in bounds:
                assert point[param] in bounds["choices"]
            else:
                assert bounds["low"] <= point[param] <= bounds["high"], (param, point[param])
        assert isinstance(point["num_leaves"], int) and isinstance(point["learning_rate"], float)
    # a step of 0.1 of a log range: the learning rate mostly stays within a factor of 2 of 0.05
    rates = np.array([point["learning_rate"] for point in points])
    assert 0.7 < np.mean((rates > 0.025) & (rates < 0.1)) < 1.0
    assert 0.8 < np.mean([point["class_weight"] == "balanced" for point in points]) < 0.97  # changed with p = 0.1
    assert neighbour(best, space, 0.1, random.Random(1)) == neighbour(best, space, 0.1, random.Random(1))
    # a point outside a range the spec narrowed since starts from the range's middle
    assert neighbour({"subsample": 0.1}, {"subsample": {"low": 0.6, "high": 1.0}}, 0.0, draw)["subsample"] == 0.8


def test_the_local_search_alternates_with_tpe_and_narrows_when_it_misses() -> None:
    import random

    import optuna

    from retrainer.models import CATALOGUE
    from retrainer.tuning import local_proposal

    space = {"learning_rate": CATALOGUE["lightgbm"].space["learning_rate"]}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    distribution = optuna.distributions.FloatDistribution(0.01, 0.3, log=True)

    def add(rate: float, value: float, proposal: str = "sampler") -> None:
        study.add_trial(
            optuna.trial.create_trial(
                params={"learning_rate": rate},
                distributions={"learning_rate": distribution},
                value=value,
                user_attrs={"proposal": proposal},
            )
        )

    draw = random.Random(0)
    for rate, value in [(0.05, 0.80), (0.2, 0.70), (0.02, 0.75), (0.1, 0.78)]:
        add(rate, value)
    assert local_proposal(study, space, draw) is None  # TPE's start-up is not over
    add(0.011, 0.60)
    near = local_proposal(study, space, draw)
    assert near is not None and 0.02 < near["learning_rate"] < 0.12  # around the best trial's 0.05
    add(near["learning_rate"], 0.5, "local")
    assert local_proposal(study, space, draw) is None  # TPE's turn after a local trial

    def spread(draws: int = 200) -> float:
        rates = [local_proposal(study, space, random.Random(i))["learning_rate"] for i in range(draws)]  # type: ignore[index]
        return float(np.std(np.log(rates)))

    add(0.3, 0.5)
    wide = spread()
    for _ in range(2):  # two local misses since the best: 2 x dimensions, so the step halves
        add(0.04, 0.5, "local")
        add(0.3, 0.5)
    assert spread() == pytest.approx(wide / 2, rel=0.2)
