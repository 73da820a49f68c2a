"""Trial claims: how several workers share out one study's `models.n_trials`.

Workers take trials one at a time under a lock (`claim_lock`, `claim_trial`) until the study holds
the cap; where no lock fits the storage, each runs a share fixed before the first trial (`share_of`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna


def share_of(owed: int, worker: int, workers: int) -> int:
    """Worker `worker`'s share of `owed` trials: the shares add up to exactly `owed`."""
    return owed // workers + (1 if worker < owed % workers else 0)


def claim_lock(
    study_storage: str | None, work_dir: str, group: str
) -> Callable[[], AbstractContextManager[Any]] | None:
    """The lock workers hold while each takes its next trial of a study, or None where none fits.

    With it, workers take trials one at a time until the study has `models.n_trials`, exactly, instead
    of fixed shares: a worker that starts late (a spawned interpreter spends seconds importing) or
    draws quick, pruned trials takes more of them, and none waits idle for another's last trial.
    A file lock beside the local journal or SQLite study; a PostgreSQL advisory lock for a study on
    PostgreSQL (workers on several machines), keyed by `group`, the run's studies. Another server
    (MySQL): fixed shares (`share_of`).
    """
    from retrainer.integrations.locks import advisory_lock, is_postgres

    url = study_storage
    if url is None or url.startswith("sqlite"):
        from filelock import FileLock

        lock = FileLock(str(Path(work_dir) / "optuna.claims.lock"))
        return lambda: lock
    if is_postgres(url):
        hint = "check models.study_storage"
        return lambda: advisory_lock(url, group, timeout=60, what="lock on trial claims", hint=hint)
    return None


def claim_trial(study: optuna.Study, cap: int, claim: Callable[[], AbstractContextManager[Any]]) -> optuna.Trial | None:
    """The study's next trial for this worker (an enqueued one first), or None once `cap` are taken.

    Counting the trials taken (finished or running) and creating the next happen under one lock, so
    two workers can never both take the last one: the study ends with exactly `cap` trials.
    """
    import optuna

    taken = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.RUNNING)
    with claim():
        if len(study.get_trials(deepcopy=False, states=taken)) >= cap:
            return None
        return study.ask()


def run_claimed_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    objective: Callable[[optuna.Trial], float],
    report: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
) -> None:
    """Evaluate a trial taken with `claim_trial` and record it, as `study.optimize` would (no error caught)."""
    import optuna

    try:
        value = objective(trial)
    except optuna.TrialPruned:
        frozen = study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    else:
        frozen = study.tell(trial, value)
    report(study, frozen)
