"""Hyperparameter tuning: Optuna (TPE, seeded) with stratified k-fold CV, one study per candidate.

- `studies`: where studies live (`models.study_storage`, else a journal in the stage's work
  directory), how they are named and pruned.
- `trials`: a worker's trials on every candidate's study (`run_trials`), defaults first.
- `claims`: several workers sharing out `models.n_trials` exactly.
- `budget`: `models.timeout` spent where it buys most (FLAML's cost for improvement), with
  `local_search` beside TPE.
- `warm_start`: the production champion's parameters as a trial of its candidate.

The tune stage (`retrainer.stages.tune`) runs these and summarises the studies; the model and its
cross-validation are `retrainer.fitting`'s.
"""

from retrainer.tuning.budget import (
    CandidateRecord,
    budget_deadline,
    candidate_records,
    expected_cost_for_improvement,
    spend_budget,
    spent_on_trials,
    trial_work,
)
from retrainer.tuning.claims import claim_lock, claim_trial, run_claimed_trial, share_of
from retrainer.tuning.local_search import local_proposal
from retrainer.tuning.studies import (
    done_trials,
    fail_abandoned_trials,
    open_study,
    priced_out,
    pruner_for,
    study_result,
    study_storage,
)
from retrainer.tuning.trials import run_trials, tuning_rows
from retrainer.tuning.warm_start import champion_params, params_in_space

__all__ = [
    "CandidateRecord",
    "budget_deadline",
    "candidate_records",
    "champion_params",
    "claim_lock",
    "claim_trial",
    "done_trials",
    "expected_cost_for_improvement",
    "fail_abandoned_trials",
    "local_proposal",
    "open_study",
    "params_in_space",
    "priced_out",
    "pruner_for",
    "run_claimed_trial",
    "run_trials",
    "share_of",
    "spend_budget",
    "spent_on_trials",
    "study_result",
    "study_storage",
    "trial_work",
    "tuning_rows",
]
