"""Tune: Optuna (TPE, seeded) with stratified k-fold CV, one study per candidate.

Studies live in an Optuna journal file (`optuna.journal`, append-only, under a file lock, so worker
processes share it) in the stage's work directory, which is keyed by the stage's cache key: a run
killed mid-tune resumes with the trials it had finished, and only runs the ones still owed.
Each candidate's first trial is its known-good default configuration; with `models.warm_start`,
the production champion's parameters follow as a trial of the champion's candidate. The pruner
(`models.pruner`: median or hyperband, the folds being its steps) stops a trial whose running CV
score after a fold trails the earlier trials. XGBoost/LightGBM stop early inside each fold
(`models.early_stopping_rounds`); the trial records the mean best iteration, and train refits with it.
`models.timeout` is one wall-clock budget for tuning and the final fit, spent as FLAML spends one:
each candidate's cheap known-good defaults first, then one trial at a time to a candidate drawn with
probability inverse to its expected cost for improvement (slow or stalled candidates get fewer), no
trial started that would not finish before the deadline less the final fit's expected time: a sampled
configuration is priced before it is fitted (its trees, depth and columns scanned, at the seconds per
unit its candidate has cost so far) and skipped if it would overrun, so one costly random sample
cannot eat the budget the cheap trials would have used (FLAML's search is cost-frugal too). Under a
budget, a candidate's trials after TPE's start-up alternate between TPE and a neighbour of its best
configuration (a local search, as FLAML's BlendSearch pairs a global and a local one). Without
`n_trials`, trials go on until the budget is spent. Trials cross-validate on at most
`models.tune_rows` rows (a stratified sample); train refits on all of them.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError, StageError
from retrainer.metrics import LOWER_IS_BETTER, score
from retrainer.models import CATALOGUE, build_estimator, default_params, neighbour, search_space, suggest
from retrainer.models.fitting import fit_model
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import Task, from_info

if TYPE_CHECKING:
    import random

    import numpy as np
    import optuna
    import pandas as pd

    from retrainer.spec import Spec


def make_model(
    preprocessor: Any,
    candidate: str,
    params: dict[str, Any],
    spec: Spec,
    calibrate: bool = False,
    task: Task | None = None,
) -> Any:
    """The full model: a fresh copy of the preprocessing followed by the task's estimator (as the task
    wraps it: calibrated if asked, or on a transformed target)."""
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    task = task or from_info(None)
    fixed = spec.models.params.get(candidate, {})
    estimator = build_estimator(candidate, {**params, **fixed}, spec.seed, spec.models.n_jobs, task.estimator_type)
    return Pipeline([("preprocess", clone(preprocessor)), ("model", task.wrap(estimator, spec, calibrate))])


def cross_validate(
    trial: optuna.Trial | None,
    candidate: str,
    params: dict[str, Any],
    preprocessor: Any,
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: Spec,
    stop_at: float | None = None,
    holdout: bool = False,
    task: Task | None = None,
) -> float:
    """Mean CV score; reports each fold's running mean to Optuna so the pruner can stop early.

    A booster's best iteration per fold (early stopping) is kept on the trial as `best_iteration`.
    With `stop_at` (time.monotonic()), a trial whose next fold would end past it is pruned: a slow
    trial started late must not overrun the budget. With `holdout`, only the first fold is fitted and
    scored (one fit a trial instead of k: what a tight budget on big data affords).
    """
    import numpy as np
    import optuna

    task = task or from_info(None)
    metric = task.ranking_metric(spec)
    fixed = {**params, **spec.models.params.get(candidate, {})}
    scores: list[float] = []
    iterations: list[int] = []
    started = time.monotonic()
    for fold, (fit_rows, score_rows) in enumerate(task.folds(y, spec.models.cv_folds, spec.seed)):
        model = make_model(preprocessor, candidate, params, spec, task=task)
        best = fit_model(
            model,
            candidate,
            fixed,
            X.iloc[fit_rows],
            y[fit_rows],
            early_stopping_rounds=spec.models.early_stopping_rounds,
            seed=spec.seed,
            task=task,
        )
        if best is not None:
            iterations.append(best)
        output = task.predict(model, X.iloc[score_rows])
        scores.append(score(metric, y[score_rows], output, spec.evaluation.decision_threshold))
        if holdout and trial is None:
            break
        if trial is not None:
            if iterations:
                trial.set_user_attr("best_iteration", round(float(np.mean(iterations))))
            trial.report(float(np.mean(scores)), fold)
            if holdout:
                break
            if trial.should_prune():
                raise optuna.TrialPruned()
            per_fold = (time.monotonic() - started) / (fold + 1)
            if stop_at is not None and fold + 1 < spec.models.cv_folds and time.monotonic() + per_fold > stop_at:
                trial.set_user_attr("stopped", "timeout")
                raise optuna.TrialPruned()
    return float(np.mean(scores))


def study_storage(ctx: RunContext) -> Any:
    """The spec's shared storage (PostgreSQL for workers on many machines), else a journal in the work dir.

    The journal costs about a tenth of SQLite's CPU per trial (measured: 40 trials with 3 pruning
    reports each, 0.2 s of CPU against 3.1 s through SQLAlchemy) and a run killed mid-write
    leaves a torn last line that Optuna ignores, so resuming still works.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend

    url = ctx.spec.models.study_storage
    if url is None:
        return optuna.storages.JournalStorage(JournalFileBackend(str(Path(ctx.work_dir()) / "optuna.journal")))
    if url.startswith("sqlite"):  # several worker processes share one SQLite file: wait, don't fail
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}})
    return url


def open_study(ctx: RunContext, candidate: str, metric: str, seed_offset: int = 0) -> optuna.Study:
    """This run's study for one candidate; the name holds the stage key, so shared storage never mixes runs."""
    import optuna

    spec = ctx.spec
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=f"{spec.name}.{ctx.cache_key}.{candidate}",
        storage=study_storage(ctx),
        load_if_exists=True,
        direction="minimize" if metric in LOWER_IS_BETTER else "maximize",
        # each worker its own seed: the same seed would make parallel workers sample the same points
        sampler=optuna.samplers.TPESampler(
            seed=spec.seed + seed_offset, n_startup_trials=min(5, spec.models.n_trials or 5)
        ),
        pruner=_pruner(spec),
    )


def _pruner(spec: Spec) -> optuna.pruners.BasePruner:
    """Folds are the steps: a trial can be stopped after any fold but the last."""
    import optuna

    if spec.models.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=spec.models.cv_folds, reduction_factor=3)
    if spec.models.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)


def share_of(owed: int, worker: int, workers: int) -> int:
    """Worker `worker`'s share of `owed` trials: the shares add up to exactly `owed`."""
    return owed // workers + (1 if worker < owed % workers else 0)


def tuning_rows(
    X: pd.DataFrame,  # noqa: N803
    y: np.ndarray,
    spec: Spec,
    task: Task | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """At most `models.tune_rows` rows for the trials: a stratified, seeded sample of a larger split.

    Ranking configurations needs far fewer rows than the final fit: on ten million rows every trial
    would cost minutes, so trials see a sample and train refits the winner on every row.
    """
    cap = spec.models.tune_rows
    if cap is None or len(y) <= cap:
        return X, y
    import numpy as np

    rows, _ = (task or from_info(None)).holdout(y, len(y) - cap, spec.seed)
    rows = np.sort(rows)
    return X.iloc[rows], y[rows]


def run_trials(
    ctx: RunContext,
    inputs: Mapping[str, Any],
    worker: int = 0,
    workers: int = 1,
    seed_offset: int | None = None,
    deadline: float | None = None,
) -> None:
    """Run the trials each candidate still owes: all of them when alone, else this worker's part.

    Several workers take trials one at a time under a lock until each study holds its
    `models.n_trials` (`claim_lock`); where no lock fits the storage, each runs a share fixed before
    the first trial (computed later, it would see the trials other workers had finished meanwhile,
    and the shares would no longer add up to what was owed).
    With `models.timeout`, trials instead go where the budget buys most (`spend_budget`) until
    `deadline` (time.monotonic(); by default the timeout from now).
    """
    import numpy as np
    import optuna

    spec = ctx.spec
    task = from_info(inputs["target_info"])
    metric = task.ranking_metric(spec)
    train = inputs["train"]
    preprocessor = inputs["preprocessor"]
    columns = list(inputs["feature_schema"]["inputs"])
    X, y = train[columns], train[spec.target.column].to_numpy()  # noqa: N806
    strata = task.strata(y)
    counts = np.bincount(strata) if strata is not None else np.asarray([len(y)])
    rarer = int(counts[counts > 0].min())  # a class of the label set absent from this split is not a fold's worry
    if rarer < spec.models.cv_folds:
        # a property of the data, not a crash: reject the run, so nothing is registered and it is not retried
        raise DataValidationError(
            f"the rarer class has {rarer} rows in the training split; {spec.models.cv_folds}-fold cross-validation "
            f"needs at least {spec.models.cv_folds}",
            failures=[f"tune: {rarer} rows of the rarer class for {spec.models.cv_folds} folds"],
            hint="lower models.cv_folds or collect more rows of the rarer class",
        )
    all_rows = len(y)
    X, y = tuning_rows(X, y, spec, task)  # noqa: N806
    if len(y) < all_rows and worker == 0:
        ctx.logger.info("tuning on a stratified sample of %d of %d rows (models.tune_rows)", len(y), all_rows)
    candidates = task.candidates(spec)
    offset = worker if seed_offset is None else seed_offset
    studies = {candidate: open_study(ctx, candidate, metric, offset) for candidate in candidates}
    if deadline is None and spec.models.timeout_seconds:
        deadline = budget_deadline(spec, spent_on_trials(studies.values()))
    champion = _champion_params(ctx) if worker == 0 and any(not s.trials for s in studies.values()) else None
    cap = spec.models.n_trials
    kind = task.estimator_type
    spaces = {c: search_space(c, spec.models.search_space.get(c), spec.models.params.get(c), kind) for c in candidates}
    for candidate, study in studies.items():
        if not study.trials and worker == 0:  # known-good defaults first, enqueued once
            space = spaces[candidate]
            defaults = {k: v for k, v in default_params(candidate, kind).items() if k in space}
            study.enqueue_trial(defaults, user_attrs={"proposal": "defaults"})
            if champion and champion[0] == candidate:
                warm = _in_space(champion[1], space)
                ctx.logger.info("%s: warm start from the champion's params %s", candidate, warm)
                study.enqueue_trial(warm, user_attrs={"proposal": "champion"}, skip_if_exists=True)

    holdout = deadline is not None and uses_holdout(len(y), len(columns), spec)
    if holdout and worker == 0:
        ctx.logger.info(
            "%d rows x %d columns in a %s budget: each trial scores one fold", len(y), len(columns), spec.models.timeout
        )

    width = model_width(preprocessor, X, y, spec) if deadline is not None else 0

    def objective_for(candidate: str, stop_at: float | None = None) -> Callable[[optuna.Trial], float]:
        def objective(trial: optuna.Trial) -> float:
            params = suggest(trial, spaces[candidate])
            if deadline is not None:
                work = trial_work(candidate, {**params, **spec.models.params.get(candidate, {})}, width)
                trial.set_user_attr("work", work)
                rate = _records({candidate: trial.study})[candidate].seconds_per_work
                if stop_at is not None and rate and work * rate > stop_at - time.monotonic():
                    # FLAML's search is cost-frugal: a sample that cannot finish in time is not started
                    trial.set_user_attr("stopped", "too costly for the time left")
                    raise optuna.TrialPruned()
            return cross_validate(
                trial, candidate, params, preprocessor, X, y, spec, stop_at=stop_at, holdout=holdout, task=task
            )

        return objective

    def report_for(candidate: str) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
        def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            best = _best_value(study)
            if trial.state == optuna.trial.TrialState.PRUNED and not trial.intermediate_values:
                state = f"not started: {trial.user_attrs.get('stopped', 'pruned')}"
            elif trial.state == optuna.trial.TrialState.PRUNED:
                last = max(trial.intermediate_values, default=-1)
                state = f"pruned after fold {last + 1} (running {trial.intermediate_values.get(last, math.nan):.4f})"
            else:
                state = trial.state.name.lower() if trial.value is None else f"{trial.value:.4f}"
            near = " (near the best)" if trial.user_attrs.get("proposal") == "local" else ""
            ctx.logger.info("%s trial %d%s: %s (best %s)", candidate, trial.number, near, state, best)
            ctx.progress(candidate, len(_done_trials(study)), cap, f"best {metric} {best}")

        return report

    if deadline is not None:
        fits_per_trial = 1 if holdout else spec.models.cv_folds
        spend_budget(
            ctx,
            studies,
            objective_for,
            report_for,
            deadline,
            spaces=spaces,
            fit_scale=all_rows / len(y) * spec.models.cv_folds / (spec.models.cv_folds - 1) / fits_per_trial,
            seed=offset,
        )
        return
    assert cap is not None  # the spec sets 10 when there is no timeout
    group = f"{spec.name}.{ctx.cache_key}"  # the studies of this run (`open_study`)
    claim = claim_lock(spec.models.study_storage, ctx.work_dir(), group) if workers > 1 else None
    owed_now = {candidate: cap - len(_done_trials(study)) for candidate, study in studies.items()}
    for candidate in candidates:
        study = studies[candidate]
        finished = _done_trials(study)
        if claim is not None:
            if owed_now[candidate] > 0:
                ctx.logger.info(
                    "%s: taking trials until %d are taken by %d workers (%d already finished)",
                    candidate,
                    cap,
                    workers,
                    len(finished),
                )
                ctx.progress(candidate, len(finished), cap)
            objective, report = objective_for(candidate), report_for(candidate)
            while (trial := claim_trial(study, cap, claim)) is not None:
                run_claimed_trial(study, trial, objective, report)
            continue
        owed = share_of(owed_now[candidate], worker, workers)
        if owed > 0:
            ctx.logger.info("%s: %d trials to run (%d already finished)", candidate, owed, len(finished))
            ctx.progress(candidate, len(finished), cap)
            study.optimize(objective_for(candidate), n_trials=owed, callbacks=[report_for(candidate)], catch=())


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


# The order a budget runs the candidates' defaults in: the usually cheapest to fit first (as FLAML
# starts from its cheapest learner), so a short budget still sees the fast strong ones.
CHEAP_FIRST = ("lightgbm", "logistic_regression", "xgboost", "random_forest", "mlp")


# What a trial of each candidate costs next to LightGBM's (its defaults, same rows), as FLAML keeps
# a prior cost per learner (logistic regression's solver is no cheaper on wide one-hot data): it
# guesses whether a candidate's first trial still fits in the budget.
RELATIVE_COST = {"lightgbm": 1.0, "logistic_regression": 1.0, "xgboost": 1.5, "random_forest": 3.0, "mlp": 5.0}


def first_trial_seconds(candidate: str, scored: Mapping[str, _Record]) -> float:
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
class _Record:
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


def _records(studies: Mapping[str, optuna.Study]) -> dict[str, _Record]:
    """Each candidate's record, read from its study (so trials of other workers and earlier runs count)."""
    import optuna

    records: dict[str, _Record] = {}
    for candidate, study in studies.items():
        sign = -1.0 if study.direction == optuna.study.StudyDirection.MINIMIZE else 1.0
        record = _Record()
        done = sorted(_done_trials(study), key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        for trial in done:
            seconds = trial.duration.total_seconds() if trial.duration else 0.0
            record.spent += seconds
            record.trials += 0 if _priced_out(trial) else 1
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


def expected_cost_for_improvement(records: Mapping[str, _Record]) -> dict[str, float]:
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


def final_fit_seconds(record: _Record, spec: Spec, fit_scale: float) -> float:
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

    done = sorted(_done_trials(study), key=lambda t: t.number)
    scored = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None]
    if len(scored) < LOCAL_AFTER or not space or done[-1].user_attrs.get("proposal") == "local":
        return None
    best = study.best_trial
    misses = sum(1 for t in done if t.number > best.number and t.user_attrs.get("proposal") == "local")
    step = max(LOCAL_STEP * 0.5 ** (misses // (2 * len(space))), LOCAL_MIN_STEP)
    return neighbour(best.params, space, step, draw)


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
        records = _records(studies)
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
        records = _records(studies)
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


def tune(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    import optuna

    spec = ctx.spec
    task = from_info(inputs["target_info"])
    metric = task.ranking_metric(spec)
    workers = spec.models.workers
    studies = {candidate: open_study(ctx, candidate, metric) for candidate in task.candidates(spec)}
    for study in studies.values():  # the only process now: no trial can still be running
        _fail_abandoned_trials(study, ctx)
    spent = spent_on_trials(studies.values()) if spec.models.timeout_seconds else 0.0
    deadline = budget_deadline(spec, spent)  # one budget for the workers and the leftovers
    if spent:
        ctx.logger.info("earlier trials of this tuning spent %.0f s of models.timeout", spent)
    cap = spec.models.n_trials
    owed = sum(cap - len(_done_trials(study)) for study in studies.values()) if cap is not None else 1
    if workers > 1 and owed > 0:  # under Airflow, mapped worker tasks have already run the trials
        _run_with_worker_processes(ctx, inputs, workers, deadline)
        for study in studies.values():  # the workers have exited: a trial still running was a crashed one's
            _fail_abandoned_trials(study, ctx)
    # alone, or whatever the workers left owing (one crashed, or started late): a seed no worker used,
    # so the leftover trials do not replay a worker's first samples
    run_trials(ctx, inputs, seed_offset=workers if workers > 1 else 0, deadline=deadline)
    results: dict[str, dict[str, Any]] = {}
    for candidate, study in studies.items():  # study.trials reads the storage: the workers' trials too
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete and deadline is not None:  # the budget ran out before its defaults: others compete
            ctx.logger.warning("%s: no trial finished within models.timeout; left out", candidate)
            continue
        if not complete:
            raise StageError(f"tuning {candidate}: no trial completed", hint="raise models.n_trials or models.timeout")
        priced_out = [t for t in _done_trials(study) if _priced_out(t)]
        results[candidate] = {
            "best_value": study.best_value,
            "best_params": study.best_params,
            "best_iteration": study.best_trial.user_attrs.get("best_iteration"),
            "n_trials": len(_done_trials(study)) - len(priced_out),  # trials that fitted a model
            "n_complete": len(complete),
            "n_pruned": len([t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]) - len(priced_out),
            "n_not_started": len(priced_out),  # sampled, then priced too costly for the time left
            "history": [
                {
                    "number": t.number,
                    "value": t.value,
                    "state": t.state.name,
                    "proposal": t.user_attrs.get("proposal", "sampler"),
                    "params": t.params,
                    "seconds": round(t.duration.total_seconds(), 3) if t.duration else None,
                }
                for t in study.trials
            ],
        }
    if not results:
        raise StageError("tuning: no trial completed within models.timeout", hint="raise models.timeout")
    direction = next(iter(studies.values())).direction
    pick = min if direction == optuna.study.StudyDirection.MINIMIZE else max
    best = pick(results, key=lambda name: results[name]["best_value"])
    summary = ", ".join(f"{name} {r['best_value']:.4f}" for name, r in results.items())
    return StageOutput(
        artifacts={
            "tuning": {
                "metric": metric,
                "direction": direction.name.lower(),
                "best_candidate": best,
                "candidates": results,
            }
        },
        metrics={f"cv_{metric}_{name}": r["best_value"] for name, r in results.items()},
        summary=f"best {best} ({summary})",
    )


def _run_with_worker_processes(
    ctx: RunContext, inputs: Mapping[str, Any], workers: int, deadline: float | None = None
) -> None:
    """`--workers N` on one machine: this process is worker 0, N-1 more run beside it on the same studies."""
    import multiprocessing

    from retrainer.executor import tune_worker

    spawn = multiprocessing.get_context("spawn")  # fresh interpreters: no forked OpenMP or SQLite state
    args = (ctx.spec.model_dump(mode="json"), ctx.run_id, ctx.as_of, workers)
    processes = [spawn.Process(target=tune_worker, args=(*args, worker), daemon=True) for worker in range(1, workers)]
    ctx.logger.info("tuning with %d worker processes", workers)
    for process in processes:
        process.start()
    try:
        run_trials(ctx, inputs, 0, workers, deadline=deadline)
    finally:
        for process in processes:
            process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    if failed:
        ctx.logger.warning("%d of %d tuning workers failed (exit codes %s)", len(failed), workers, failed)


def _champion_params(ctx: RunContext) -> tuple[str, dict[str, str]] | None:
    """The production champion's candidate and logged params, or None (no champion, registry unreachable)."""
    if not ctx.spec.models.warm_start:
        return None
    try:
        registry = ctx.registry
        if registry.tracking_uri.startswith("sqlite:///") and not Path(registry.tracking_uri[10:]).exists():
            return None  # no MLflow store yet, so no champion: don't create one (migrations cost seconds)
        champion = registry.by_alias(ctx.spec.registry_name, "champion")
        if champion is None or not champion.run_id:
            return None
        params = dict(registry.client.get_run(champion.run_id).data.params)
    except Exception as error:  # noqa: BLE001 - a warm start is a bonus: tuning goes on without it
        ctx.logger.warning("no warm start from the champion: %s", error)
        return None
    return params.pop("candidate", ""), params


def _in_space(logged: dict[str, str], space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """MLflow params are strings: turn those inside the search space back into values Optuna accepts."""
    values: dict[str, Any] = {}
    for param, bounds in space.items():
        text = logged.get(param)
        if text is None:
            continue
        if "choices" in bounds:
            matches = [choice for choice in bounds["choices"] if str(choice) == text]
            if matches:
                values[param] = matches[0]
            continue
        try:
            number = float(text)
        except ValueError:
            continue
        if isinstance(bounds["low"], int) and isinstance(bounds["high"], int):
            number = round(number)
        if bounds["low"] <= number <= bounds["high"]:
            values[param] = number
    return values


def _done_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count against the budget: completed or pruned (a failed trial is owed again)."""
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))


def _priced_out(trial: optuna.trial.FrozenTrial) -> bool:
    """A sample the budget refused before fitting anything (not a trial that ran and was pruned)."""
    return "stopped" in trial.user_attrs and not trial.intermediate_values


def _fail_abandoned_trials(study: optuna.Study, ctx: RunContext) -> None:
    """Trials left RUNNING by a killed process would never finish: mark them failed before resuming."""
    import optuna

    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        ctx.logger.warning(
            "trial %d of %s was left running by an interrupted run; marking it failed", trial.number, study.study_name
        )
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)


def _best_value(study: optuna.Study) -> str:
    try:
        value = study.best_value
    except ValueError:
        return "-"
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


STAGE = Stage(
    name="tune",
    func=tune,
    needs=("train", "preprocessor", "feature_schema", "target_info"),
    makes=("tuning",),
    # only what scores a trial: a new promotion gate or fairness rule must not re-tune
    spec_sections=(
        "models",
        "evaluation.metric",
        "evaluation.decision_threshold",
        "evaluation.threshold_metric",
        "target",
        "task",
        "seed",
    ),
    code=(
        "retrainer.models",
        "retrainer.models.fitting",
        "retrainer.models.mlp",
        "retrainer.metrics",
        "retrainer.models.scoring",
    ),
)
