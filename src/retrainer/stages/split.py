"""Split: train / test (stratified), or train / test / out-of-time ordered by `time_column`.

The target becomes 0/1 here, once, so every later stage and the champion see the same labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrainer.errors import DataValidationError
from retrainer.pipeline import RunContext, Stage, StageOutput
from retrainer.target import encode_target, positive_label

if TYPE_CHECKING:
    import pandas as pd

    from retrainer.spec import Spec


def split_frame(frame: pd.DataFrame, spec: Spec) -> dict[str, pd.DataFrame]:
    """Return {'train', 'test', 'oot'} frames with the target encoded as 0/1 (oot may be empty)."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    target = spec.target.column
    labelled = frame.loc[frame[target].notna()].copy()
    positive = positive_label(labelled[target], spec.target)
    labelled[target] = encode_target(labelled[target], positive)
    rules = spec.split
    if rules.method == "stratified":
        if labelled[target].value_counts().min() < 2:
            raise DataValidationError(
                "too few rows of the rarer class to split", failures=["split: rarer class has < 2 rows"]
            )
        train, test = train_test_split(
            labelled, test_size=rules.test_size, stratify=labelled[target], random_state=spec.seed
        )
        parts = {"train": train, "test": test, "oot": labelled.iloc[0:0]}
    else:
        assert spec.time_column is not None
        ordered = (
            labelled.assign(_t=pd.to_datetime(labelled[spec.time_column]))
            .sort_values("_t", kind="stable")
            .drop(columns="_t")
        )
        n = len(ordered)
        n_oot = round(n * rules.oot_size)
        n_test = round(n * rules.test_size)
        parts = {
            "train": ordered.iloc[: n - n_oot - n_test],
            "test": ordered.iloc[n - n_oot - n_test : n - n_oot],
            "oot": ordered.iloc[n - n_oot :],
        }
    for name in ("train", "test"):
        if parts[name][target].nunique() < 2:
            raise DataValidationError(
                f"the {name} split has only one target class ({len(parts[name])} rows)",
                failures=[f"split: {name} has one class"],
                hint="collect more data or change split.test_size",
            )
    return {name: part.reset_index(drop=True) for name, part in parts.items()}


def split(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    spec = ctx.spec
    parts = split_frame(inputs["data"], spec)
    target = spec.target.column
    info: dict[str, Any] = {"method": spec.split.method}
    for name, part in parts.items():
        info[name] = {"rows": len(part), "positive_rate": round(float(part[target].mean()), 4) if len(part) else None}
        if spec.time_column and len(part):
            info[name]["from"] = str(part[spec.time_column].min())
            info[name]["to"] = str(part[spec.time_column].max())
    sizes = ", ".join(f"{name} {len(part):,}" for name, part in parts.items() if len(part))
    return StageOutput(artifacts={**parts, "split_info": info}, summary=sizes)


STAGE = Stage(
    name="split",
    func=split,
    needs=("data",),
    makes=("train", "test", "oot", "split_info"),
    spec_sections=("split", "target", "time_column", "seed"),
    code=("retrainer.target",),
)
