"""Parallel tuning: worker processes share one Optuna study on PostgreSQL and lose no trial."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import retrainer
from retrainer.tuning import claim_lock, claim_trial, fail_abandoned_trials, run_claimed_trial, share_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.mark.parametrize(("owed", "workers"), [(10, 3), (4, 2), (1, 4), (0, 2), (7, 1)])
def test_worker_shares_add_up_to_exactly_the_trials_owed(owed: int, workers: int) -> None:
    shares = [share_of(owed, worker, workers) for worker in range(workers)]
    assert sum(shares) == owed
    assert max(shares) - min(shares) <= 1


def _take_trials_side_by_side(storage: Any, study_storage: str | None, work_dir: Path, cap: int) -> list[list[int]]:
    """Two threads, each with its own `claim_lock` (as two processes would have), take trials until `cap`."""
    import optuna

    study_name = f"claims-{secrets.token_hex(3)}"
    optuna.create_study(study_name=study_name, storage=storage)
    taken: list[list[int]] = [[], []]

    def worker(index: int) -> None:
        study = optuna.load_study(study_name=study_name, storage=storage)
        claim = claim_lock(study_storage, str(work_dir), study_name)
        assert claim is not None
        ask = study.ask

        def slow_ask() -> optuna.Trial:  # widens the window between counting and creating a trial
            time.sleep(0.01)
            return ask()

        study.ask = slow_ask  # type: ignore[method-assign, assignment]

        def objective(trial: optuna.Trial) -> float:
            time.sleep(0.02)  # a trial takes a while: the other worker gets its turn
            return trial.suggest_float("x", 0.0, 1.0)

        while (trial := claim_trial(study, cap, claim)) is not None:
            taken[index].append(trial.number)
            run_claimed_trial(study, trial, objective, lambda study, frozen: None)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    trials = optuna.load_study(study_name=study_name, storage=storage).trials
    assert len(trials) == cap, "exactly the cap: no worker took a trial past it"
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    return taken


def test_workers_sharing_a_journal_study_take_exactly_the_cap_between_them(tmp_path: Path) -> None:
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))  # the local default

    taken = _take_trials_side_by_side(storage, None, tmp_path, cap=9)
    assert sorted(taken[0] + taken[1]) == list(range(9))
    assert taken[0] and taken[1], "both workers took trials"


def test_a_trial_a_killed_worker_left_running_is_failed_and_owed_again(tmp_path: Path) -> None:
    import logging
    from types import SimpleNamespace

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.create_study(study_name="abandoned", storage=storage)
    study.tell(study.ask(), 0.5)
    study.ask()  # its worker was killed before telling it
    ctx = SimpleNamespace(logger=logging.getLogger("retrainer"))

    fail_abandoned_trials(optuna.load_study(study_name="abandoned", storage=storage), ctx)  # type: ignore[arg-type]

    states = [t.state for t in optuna.load_study(study_name="abandoned", storage=storage).trials]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]


def test_workers_on_a_postgres_study_claim_under_an_advisory_lock(scratch_database: str, tmp_path: Path) -> None:
    taken = _take_trials_side_by_side(scratch_database, scratch_database, tmp_path, cap=6)
    assert sorted(taken[0] + taken[1]) == list(range(6))


def test_two_workers_on_a_postgres_study_run_every_trial_once(
    telco_db: Callable[..., str], write_spec: Callable[..., Path], scratch_database: str
) -> None:
    import optuna

    telco_db()
    models = {"candidates": ["random_forest", "logistic_regression"], "n_trials": 5, "cv_folds": 2, "workers": 2}
    spec = retrainer.load_spec(write_spec(models={**models, "study_storage": scratch_database}))

    result = retrainer.run(spec)

    assert result.outcome == "promoted"
    tune_log = (Path(spec.store) / "runs" / result.run_id / "logs" / "tune.log").read_text()
    assert "tuning with 2 worker processes" in tune_log
    assert "taking trials until 5 are taken by 2 workers" in tune_log
    summaries = optuna.study.get_all_study_summaries(scratch_database)
    assert sorted(s.study_name.rsplit(".", 1)[1] for s in summaries) == ["logistic_regression", "random_forest"]
    for summary in summaries:
        trials = optuna.load_study(study_name=summary.study_name, storage=scratch_database).trials
        done = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
        assert len(done) == len(trials) == 5, "every owed trial ran once: none lost, none extra"
        assert len({t.number for t in trials}) == 5
        assert len({tuple(sorted(t.params.items(), key=str)) for t in trials}) == 5, "workers sampled distinct points"


def test_two_workers_share_one_time_budget(
    telco_db: Callable[..., str],
    write_spec: Callable[..., Path],
    scratch_database: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Under `models.timeout` both workers spend the same budget side by side, not one budget each."""
    import optuna

    telco_db()
    budget = 30
    models = {"candidates": ["logistic_regression", "lightgbm"], "timeout": f"{budget}s", "cv_folds": 2, "workers": 2}
    spec = retrainer.load_spec(write_spec(models={**models, "study_storage": scratch_database}))

    result = retrainer.run(spec, until="tune")

    assert result.outcome == "partial", result.reason
    tune_seconds = next(s.seconds for s in result.stages if s.name == "tune")
    assert tune_seconds < budget + 15, f"tune took {tune_seconds:.0f}s of a {budget}s budget"
    worker_log = capfd.readouterr().err  # the spawned worker logs to its stderr
    # it worked on the same studies (how many trials it fitted depends on how fast it started: a
    # spawned interpreter takes seconds on a loaded machine) and stopped at the shared deadline
    assert "tune worker 1: tuning budget spent" in worker_log
    spans = []
    for summary in optuna.study.get_all_study_summaries(scratch_database):
        for trial in optuna.load_study(study_name=summary.study_name, storage=scratch_database).trials:
            if trial.datetime_start and trial.datetime_complete:
                spans.append((trial.datetime_start, trial.datetime_complete))
    assert len(spans) > 2  # trials went on past the two candidates' defaults
    last_end, first_start = max(end for _, end in spans), min(start for start, _ in spans)
    assert (last_end - first_start).total_seconds() < budget + 10  # one budget, shared
