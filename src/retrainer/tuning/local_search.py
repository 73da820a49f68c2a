"""Local search beside TPE (FLAML's BlendSearch): neighbours of a candidate's best configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from retrainer.models import neighbour
from retrainer.tuning.studies import done_trials

if TYPE_CHECKING:
    import random

    import optuna


# Local search beside TPE (FLAML's BlendSearch): once a candidate has this many scored trials, its
# trials alternate between TPE's proposal and a neighbour of its best configuration.
LOCAL_AFTER = 5  # TPE's own start-up trials (`open_study`)
LOCAL_STEP = 0.1  # a local move's standard deviation, as a share of each parameter's range
LOCAL_MIN_STEP = 0.0125  # three halvings


def local_proposal(study: optuna.Study, space: dict[str, dict[str, Any]], draw: random.Random) -> dict[str, Any] | None:
    """The candidate's next trial as a neighbour of its best one, or None when it is TPE's turn.

    TPE samples the whole space well but refines slowly: on flights its best boosters kept landing
    near, not on, the deep trees FLAML's local search reached. So every other trial moves from the
    best configuration by a small random step (`neighbour`); the step halves after each 2 x
    dimensions local trials without a new best, as FLAML's CFO shrinks its step. TPE learns from
    the local trials too: they are ordinary trials of the same study, marked `proposal: local`.
    """
    import optuna

    done = sorted(done_trials(study), key=lambda t: t.number)
    scored = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if len(scored) < LOCAL_AFTER or not space or done[-1].user_attrs.get("proposal") == "local":
        return None
    best = study.best_trial
    misses = sum(1 for t in done if t.number > best.number and t.user_attrs.get("proposal") == "local")
    step = max(LOCAL_STEP * 0.5 ** (misses // (2 * len(space))), LOCAL_MIN_STEP)
    return neighbour(best.params, space, step, draw)
