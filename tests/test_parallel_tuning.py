"""Parallel tuning: worker processes share one Optuna study on PostgreSQL and lose no trial."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import retrainer
from retrainer.stages.tune import share_of

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.mark.parametrize(("owed", "workers"), [(10, 3), (4, 2), (1, 4), (0, 2), (7, 1)])
def test_worker_shares_add_up_to_exactly_the_trials_owed(owed: int, workers: int) -> None:
    shares = [share_of(owed, worker, workers) for worker in range(workers)]
    assert sum(shares) == owed
    assert max(shares) - min(shares) <= 1


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
