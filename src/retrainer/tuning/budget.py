"""The budget scheduler: `models.timeout` spent as FLAML spends one.

Each candidate's cheap known-good defaults first, then one trial at a time to a candidate drawn with
probability inverse to its expected cost for improvement (slow or stalled candidates get fewer), no
trial started that would not finish before the deadline less the final fit's expected time: a sampled
configuration is priced before it is fitted (its trees, depth and columns scanned, at the seconds per
unit its candidate has cost so far) and skipped if it would overrun, so one costly random sample
cannot eat the budget the cheap trials would have used (FLAML's search is cost-frugal too). Under a
budget, a candidate's trials after TPE's start-up alternate between TPE and a neighbour of its best
configuration (`local_search`). Without `n_trials`, trials go on until the budget is spent.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrainer.models import CATALOGUE, default_params
from retrainer.tuning.local_search import local_proposal
from retrainer.tuning.studies import done_trials, priced_out

if TYPE_CHECKING:
    import numpy as np
    import optuna
    import pandas as pd

    from retrainer.pipeline import RunContext
    from retrainer.spec import Spec


# The order a budget runs the candidates' defaults in: the usually cheapest to fit first (as FLAML
# starts from its cheapest learner), so a short budget still sees the fast strong ones.
CHEAP_FIRST = ("lightgbm", "logistic_regression", "xgboost", "random_forest", "mlp")


# What a trial of each candidate costs next to LightGBM's (its defaults, same rows), as FLAML keeps
# a prior cost per learner (logistic regression's solver is no cheaper on wide one-hot data): it
# guesses whether a candidate's first trial still fits in the budget.
RELATIVE_COST = {"lightgbm": 1.0, "logistic_regression": 1.0, "xgboost": 1.5, "random_forest": 3.0, "mlp": 5.0}


def first_trial_seconds(candidate: str, scored: Mapping[str, CandidateRecord]) -> float:
    """A candidate's expected first trial, scaled from the candidates already timed by their prior costs."""
    guesses = [
        r.trial_seconds / RELATIVE_COST.get(c, 1.0) * RELATIVE_COST.get(candidate, 1.0) for c, r in scored.items()
    ]
    return max(guesses, default=0.0)


def model_width(preprocessor: Any, X: pd.DataFrame, y: np.ndarray, spec: Spec) -> int:  # noqa: N803
    """How many columns the estimator sees (after one-hot): fitted on a small sample, it costs little."""
    from sklearn.base import clone

    rows = min(len(y), 5_000)
    sample = X.sample(n=rows, random_state=spec.seed) if rows < len(y) else X
    return int(clone(preprocessor).fit_transform(sample, y[X.index.get_indexer(sample.index)]).shape[1])


def trial_work(candidate: str, params: Mapping[str, Any], width: int) -> float:
    """A trial's compute in the candidate's own units, to scale its measured seconds to a new sample.

    Trees cost in proportion to their number, their depth (log2 of a LightGBM tree's leaves) and the
    share of columns each split scans; other candidates cost about the same whatever their params.
    Early stopping only makes a booster cheaper than this: the estimate errs on the safe side.
    """
    merged = {**default_params(candidate), **params} if candidate in CATALOGUE else dict(params)
    trees = float(merged.get("n_estimators", 1))
    share = float(merged.get("colsample_bytree", 1.0))
    if candidate == "random_forest":
        features = merged.get("max_features", "sqrt")
        width = max(width, 2)
        if features == "sqrt":
            share = math.sqrt(width) / width
        elif features == "log2":
            share = math.log2(width) / width
        elif isinstance(features, float):
            share = features
        return trees * float(merged.get("max_depth") or 32) * share
    if candidate == "xgboost":
        return trees * float(merged.get("max_depth", 6)) * share
    if candidate == "lightgbm":
        return trees * math.log2(2 * float(merged.get("num_leaves", 31))) * share
    return 1.0


@dataclass
class CandidateRecord:
    """What one candidate's finished trials say about it, for deciding where the next trial goes."""

    spent: float = 0.0  # seconds its finished trials took
    trials: int = 0  # fitted ones: a sample priced out before its first fit is no trial of the cap
    best: float = -math.inf  # best CV score so far, oriented so that higher is better
    first: float = math.nan  # score of its first completed trial (its defaults)
    spent_at_best: float = 0.0  # seconds spent when the best was found
    spent_at_previous_best: float = 0.0
    complete_seconds: list[float] = field(default_factory=list)
    seconds_per_work: float = 0.0  # the most seconds a unit of `trial_work` has cost (0: not known)

    @property
    def trial_seconds(self) -> float:
        """What a full (unpruned) trial costs: the slowest finish is a safe guess with few samples."""
        if not self.complete_seconds:
            return 0.0
        return max(statistics.median(self.complete_seconds), self.complete_seconds[-1])

    def cost_to_improve(self) -> float:
        """FLAML's estimate: seconds without gain since the best, or what the last gain took, at least one trial."""
        return max(
            self.spent - self.spent_at_best,
            self.spent_at_best - self.spent_at_previous_best,
            self.trial_seconds,
            1e-3,
        )


def candidate_records(studies: Mapping[str, optuna.Study]) -> dict[str, CandidateRecord]:
    """Each candidate's record, read from its study (so trials of other workers and earlier runs count)."""
    import optuna

    records: dict[str, CandidateRecord] = {}
    for candidate, study in studies.items():
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0
        record = CandidateRecord()
        done = sorted(done_trials(study), key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        for trial in done:
            seconds = trial.duration.total_seconds() if trial.duration else 0.0
            record.spent += seconds
            record.trials += 0 if priced_out(trial) else 1
            if trial.state != optuna.trial.TrialState.COMPLETE or trial.value is None or math.isnan(trial.value):
                continue
            record.complete_seconds.append(seconds)
            work = trial.user_attrs.get("work")
            if work:
                record.seconds_per_work = max(record.seconds_per_work, seconds / work)
            value = sign * trial.value
            if math.isnan(record.first):
                record.first = value
            if value > record.best:
                record.spent_at_previous_best, record.spent_at_best = record.spent_at_best, record.spent
                record.best = value
        records[candidate] = record
    return records


def expected_cost_for_improvement(records: Mapping[str, CandidateRecord]) -> dict[str, float]:
    """Seconds each candidate is expected to need to beat the best score of any candidate (FLAML's ECI).

    The leader needs to improve on itself: its cost to improve. Another candidate must also close
    its gap to the leader, at the speed it has improved so far; one that never improved on its
    defaults is charged double its cost to improve.
    """
    leader = max(record.best for record in records.values())
    costs: dict[str, float] = {}
    for candidate, record in records.items():
        own = record.cost_to_improve()
        gap = leader - record.best
        if gap <= 0:
            costs[candidate] = own
            continue
        gained = record.best - record.first
        speed = gained / record.spent_at_best if gained > 0 and record.spent_at_best > 0 else 0.0
        costs[candidate] = max(own, gap / speed) if speed > 0 else 2 * own
    return costs


def uses_holdout(rows: int, columns: int, spec: Spec) -> bool:
    """FLAML's rule for its budget: k-fold CV only while rows x columns is small for the time given.

    (Cross-validate below 10 M cells per hour of budget and 100,000 rows, else a single holdout fold.)
    """
    budget = spec.models.timeout_seconds or math.inf
    return rows * columns >= 10_000_000 * budget / 3600 or rows >= 100_000


def final_fit_seconds(record: CandidateRecord, spec: Spec, fit_scale: float) -> float:
    """What train will spend refitting this candidate on every row: reserved out of the budget.

    `fit_scale` turns a trial's seconds into one fit on all the training rows (a trial fits k models,
    or one with a holdout, on (k-1)/k of the tuning rows). Train fits one (k per calibrated model),
    plus k out-of-fold fits when it picks a decision threshold.
    """
    folds = spec.models.cv_folds
    one_fit = record.trial_seconds * fit_scale
    fits = folds if spec.models.calibration != "none" else 1
    if spec.evaluation.threshold_metric:
        fits *= 1 + folds
    return one_fit * fits


def spent_on_trials(studies: Iterable[optuna.Study]) -> float:
    """Wall seconds from the first trial's start to the last trial's end, over every candidate's study.

    A resumed run (after a crash, or the tune task after Airflow's mapped workers) finds these
    trials in its studies: the time they took was spent from the same budget.
    """
    starts, ends = [], []
    for study in studies:
        for trial in study.get_trials(deepcopy=False):
            if trial.datetime_start is not None:
                starts.append(trial.datetime_start)
                ends.append(trial.datetime_complete or trial.datetime_start)
    return (max(ends) - min(starts)).total_seconds() if starts else 0.0


def budget_deadline(spec: Spec, spent: float) -> float | None:
    """When tuning must stop (time.monotonic()): `models.timeout` less the seconds earlier trials
    `spent` (`spent_on_trials`); None without a timeout."""
    budget = spec.models.timeout_seconds
    if not budget:
        return None
    return time.monotonic() + max(0.0, budget - spent)


def spend_budget(
    ctx: RunContext,
    studies: Mapping[str, optuna.Study],
    objective_for: Callable[[str, float | None], Callable[[optuna.Trial], float]],
    report_for: Callable[[str], Callable[[optuna.Study, optuna.trial.FrozenTrial], None]],
    deadline: float,
    fit_scale: float = 1.0,
    seed: int = 0,
    spaces: Mapping[str, dict[str, dict[str, Any]]] | None = None,
) -> None:
    """Spend the wall-clock budget one trial at a time where it is likeliest to pay.

    As in FLAML: every candidate first runs its known-good (cheap) defaults; then each trial goes to
    a candidate drawn with probability inverse to its expected cost for improvement, so a slow or
    stalled candidate is tried less and a fast improving one more, instead of equal shares. A trial
    starts only if its candidate's typical trial still fits before the deadline less the time the
    final fit of the current best candidate will take. `models.n_trials`, when set, caps a candidate.
    With `spaces`, a candidate's trials alternate between TPE and a local search (`local_proposal`).
    """
    import random

    spec = ctx.spec
    cap = spec.models.n_trials
    draw = random.Random(spec.seed * 1000 + seed)
    cheap_first = sorted(studies, key=lambda c: CHEAP_FIRST.index(c) if c in CHEAP_FIRST else len(CHEAP_FIRST))
    for candidate in cheap_first:  # defaults first, the usually cheap candidates first, while there is time
        records = candidate_records(studies)
        anything_scored = any(r.complete_seconds for r in records.values())
        if records[candidate].complete_seconds or (anything_scored and time.monotonic() >= deadline):
            continue  # with nothing scored yet (a resumed run whose budget is spent), one default still runs
        # the first default to run may overrun (a model is needed); a later one must be expected to fit
        scored = {c: r for c, r in records.items() if r.complete_seconds}
        stop_at = None
        if scored:
            leader = max(scored, key=lambda c: scored[c].best)
            stop_at = deadline - final_fit_seconds(scored[leader], spec, fit_scale)
            if first_trial_seconds(candidate, scored) > stop_at - time.monotonic():
                ctx.logger.info("%s: its defaults would not finish within models.timeout; skipped", candidate)
                continue
        objective = objective_for(candidate, stop_at)
        studies[candidate].optimize(objective, n_trials=1, callbacks=[report_for(candidate)], catch=())
    while True:
        records = candidate_records(studies)
        scored = {c: r for c, r in records.items() if r.complete_seconds}
        if not scored:
            return
        leader = max(scored, key=lambda c: scored[c].best)
        left = deadline - time.monotonic() - final_fit_seconds(scored[leader], spec, fit_scale)
        open_now = [c for c, r in scored.items() if (cap is None or r.trials < cap) and 0 < r.trial_seconds <= left]
        if not open_now:
            ctx.logger.info("tuning budget spent: %s", ", ".join(f"{c} {r.trials} trials" for c, r in records.items()))
            return
        costs = expected_cost_for_improvement({c: scored[c] for c in open_now})
        pick = draw.choices(open_now, weights=[1.0 / costs[c] for c in open_now])[0]
        near = local_proposal(studies[pick], spaces[pick], draw) if spaces else None
        if near is not None:  # a duplicate of an earlier trial is skipped: TPE proposes instead
            studies[pick].enqueue_trial(near, user_attrs={"proposal": "local"}, skip_if_exists=True)
        objective = objective_for(pick, time.monotonic() + left)
        studies[pick].optimize(objective, n_trials=1, callbacks=[report_for(pick)], catch=())
