"""Leakage guard: before tuning, on the training split only, look for features that leak the target.

Three kinds of leak are flagged:

- a feature that predicts the target almost perfectly *on its own*: its single-feature ROC AUC
  (either direction) is above `leakage.max_single_feature_auc`. Numeric columns are scored by rank
  and by target rate per decile bin, categorical ones by target rate per category; the rates are
  learnt on one half of the rows and scored on the other, so an id-like column cannot look perfect
  merely by memorising rows;
- a proxy: the best feature the rule above leaves, when it is not perfect but stands far above
  the next one (its AUC at least `leakage.min_auc_for_lead` and more than `leakage.max_auc_lead`
  above the next best). Real features share the signal; a column filled in after the outcome was
  known carries it alone. Two proxies of the same strength hide each other from this rule;
- a timestamp feature (a datetime input, or one listed in `leakage.timestamp_columns`) with values
  after `leakage.label_time_column`: it records something that happened after the label was known.

Every flagged column is reported; those not in `leakage.allow` reject the run, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from retrainer.errors import LeakageFound
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.tasks import Task, from_info

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from retrainer.spec import Spec

MAX_ROWS = 50_000  # the AUC of a leak is plain on a sample; keeps the guard fast on big tables


@dataclass(frozen=True)
class Leak:
    column: str
    kind: str  # "single_feature_auc" | "auc_lead" | "after_label_time"
    message: str
    observed: float
    allowed: bool = False


def single_feature_auc(values: pd.Series, target: np.ndarray, seed: int = 0) -> float:
    """How well one column alone separates the classes: ROC AUC in its better direction (0.5..1)."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from retrainer.drift import epoch_seconds, is_numeric

    if len(np.unique(target)) < 2:
        return 0.5
    best = 0.5
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        values = epoch_seconds(values)
    if is_numeric(values):
        numeric = values.astype(float)
        if numeric.notna().sum() < 2:
            return 0.5
        filled = numeric.fillna(numeric.median() if numeric.notna().any() else 0.0).to_numpy()
        auc = float(roc_auc_score(target, filled))
        best = max(auc, 1 - auc)
        # bins of the values, ties kept together: ranking ties by position would let the rows' order
        # (a table sorted by the label, a temporal split) pass as the column's signal
        groups = pd.qcut(numeric, q=min(10, numeric.nunique() or 1), labels=False, duplicates="drop")
        groups = groups.astype("float").fillna(-1).astype(int).astype(str)
    else:
        groups = values.astype(str).where(values.notna(), "<null>")
    return max(best, _held_out_rate_auc(groups, target, seed))


def _held_out_rate_auc(groups: pd.Series, target: np.ndarray, seed: int) -> float:
    """AUC of the per-group target rate learnt on one half of the rows and scored on the other."""
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    order = np.random.default_rng(seed).permutation(len(groups))
    half = len(groups) // 2
    learn, score = order[:half], order[half:]
    if len(np.unique(target[score])) < 2 or half == 0:
        return 0.5
    frame = pd.DataFrame({"g": groups.to_numpy(), "y": target})
    rates = frame.iloc[learn].groupby("g")["y"].mean()
    predicted = frame.iloc[score]["g"].map(rates).fillna(float(target[learn].mean())).to_numpy()
    auc = float(roc_auc_score(target[score], predicted))
    return max(auc, 1 - auc)


def find_leaks(train: pd.DataFrame, columns: list[str], spec: Spec, task: Task | None = None) -> list[Leak]:
    """Every leak in the training split's `columns` (the model's inputs); see the module docstring.

    The AUC is the mean over the task's 0/1 questions (`Task.one_vs_rest`: a binary target itself, each
    class of a multiclass one, as a macro one-vs-rest ROC-AUC does; a numeric target above its median). The
    mean, not the best: a measurement that tells one species from the rest perfectly is a good feature;
    one that tells every class apart is the label in disguise.
    """
    import pandas as pd

    rules = spec.leakage
    allowed = set(rules.allow)
    sample = train.sample(MAX_ROWS, random_state=spec.seed) if len(train) > MAX_ROWS else train
    targets = (task or from_info(None)).one_vs_rest(sample[spec.target.column].to_numpy())
    leaks: list[Leak] = []
    if rules.max_single_feature_auc is not None or rules.max_auc_lead is not None:
        aucs = {
            column: sum(single_feature_auc(sample[column], target, spec.seed) for target in targets) / len(targets)
            for column in columns
        }
        ranked = sorted(aucs.items(), key=lambda item: -item[1])
        for column, auc in ranked:
            if rules.max_single_feature_auc is not None and auc > rules.max_single_feature_auc:
                message = f"single-feature AUC {auc:.4f} > {rules.max_single_feature_auc}"
                leaks.append(Leak(column, "single_feature_auc", message, round(auc, 4), column in allowed))
        # the proxy: the best feature the rule above left, against the next one (a copy cannot hide it)
        rest = [(column, auc) for column, auc in ranked if column not in {leak.column for leak in leaks}]
        if rules.max_auc_lead is not None and len(rest) > 1 and rest[0][1] >= rules.min_auc_for_lead:
            (column, auc), (runner_up, next_auc) = rest[0], rest[1]
            if auc - next_auc > rules.max_auc_lead:
                message = (
                    f"single-feature AUC {auc:.3f} stands {auc - next_auc:.3f} above the next best feature "
                    f"({runner_up}, {next_auc:.3f}; at most {rules.max_auc_lead} apart): a proxy of the label?"
                )
                leaks.append(Leak(column, "auc_lead", message, round(auc, 4), column in allowed))
    label_time = rules.label_time_column
    if label_time:
        stamps = [c for c in columns if pd.api.types.is_datetime64_any_dtype(train[c].dtype)]
        stamps += [c for c in rules.timestamp_columns if c in train.columns and c not in stamps]
        labelled_at = pd.to_datetime(train[label_time], errors="coerce")
        for column in (c for c in stamps if c != label_time):
            after = pd.to_datetime(train[column], errors="coerce") > labelled_at
            count = int(after.sum())
            if count:
                example = train.loc[after, [column, label_time]].iloc[0]
                message = (
                    f"{count:,} rows ({count / len(train):.1%}) timestamped after {label_time} "
                    f"(e.g. {example[column]} > {example[label_time]})"
                )
                leaks.append(Leak(column, "after_label_time", message, float(count), column in allowed))
    return leaks


def leakage(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    train = inputs["train"]
    columns = list(inputs["feature_schema"]["inputs"])
    if spec.leakage.label_time_column and spec.leakage.label_time_column not in train.columns:
        raise LeakageFound(
            f"leakage.label_time_column '{spec.leakage.label_time_column}' is not a column of the data",
            hint="fix leakage.label_time_column in the spec",
        )
    task = from_info(inputs["target_info"])
    columns = task.leakage_columns(columns, spec)
    leaks = find_leaks(train, columns, spec, task)
    for leak in leaks:
        ctx.logger.info("%s %s: %s", "allowed" if leak.allowed else "LEAK", leak.column, leak.message)
    report = {"checked": columns, "leaks": [asdict(leak) for leak in leaks]}
    blocking = [leak for leak in leaks if not leak.allowed]
    if blocking:
        names = ", ".join(dict.fromkeys(leak.column for leak in blocking))
        raise LeakageFound(
            f"target leakage in {names}: " + "; ".join(f"{leak.column}: {leak.message}" for leak in blocking),
            failures=[f"{leak.column}: {leak.message}" for leak in blocking],
            hint=f"drop them (features.drop: [{names}]) or, if they are truly known at prediction time, "
            f"list them in leakage.allow",
        )
    allowed = [leak.column for leak in leaks]
    summary = f"{len(columns)} features checked, no leak" + (f" ({', '.join(allowed)} allowed)" if allowed else "")
    return StageOutput(artifacts={"leakage": report}, metrics={"leaks_allowed": float(len(leaks))}, summary=summary)


STAGE = Stage(
    name="leakage",
    func=leakage,
    needs=("train", "feature_schema", "target_info"),
    makes=("leakage",),
    spec_sections=("leakage", "target", "seed"),
    code=("retrainer.drift", "retrainer.tasks"),
)
