"""Features: the preprocessing that becomes the first half of the model.

The stage builds an *unfitted* scikit-learn pipeline (derived features, then impute / encode /
scale per column type, TF-IDF per free-text column: `retrainer.text` says which columns are text).
Tuning fits a clone of it inside every CV fold and training fits it on the training split only; it
is saved inside the model, so serving applies exactly the same transforms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrainer.pipeline import RunContext, Stage, StageOutput

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline as SkPipeline

    from retrainer.spec import Spec


def feature_columns(frame: pd.DataFrame, spec: Spec) -> list[str]:
    """The raw input columns of the model: everything but target, id, drop list and unused time."""
    used_by_derived = {
        c for rule in spec.features.derived for c in (rule.ratio or ()) + ((rule.column,) if rule.column else ())
    }
    excluded = {spec.target.column, spec.id_column, *spec.features.drop}
    if spec.time_column and spec.time_column not in used_by_derived:
        excluded.add(spec.time_column)
    return [str(c) for c in frame.columns if c not in excluded]


def text_columns(frame: pd.DataFrame, spec: Spec) -> list[str]:
    """The model columns read as free text: `features.text` as given (checked against the data), else
    the string columns `retrainer.text.looks_like_text` calls prose (none that the spec forces another kind)."""
    import pandas as pd

    from retrainer.errors import SpecError
    from retrainer.text import INFERENCE_ROWS, looks_like_text, tokens

    if spec.features.text is not None:
        for column in spec.features.text:
            if column not in frame.columns:
                known = ", ".join(str(c) for c in frame.columns[:12])
                raise SpecError(
                    f"features.text: '{column}' is not a model column (columns: {known})",
                    hint="name a text column of the data that is not the target, the id or dropped",
                )
            values = frame[column]
            if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_datetime64_any_dtype(values.dtype):
                raise SpecError(
                    f"features.text: '{column}' holds {values.dtype} values, not text",
                    hint="list it under features.numeric (or leave it to inference) and keep features.text for prose",
                )
            if not any(tokens(v) for v in values.dropna().head(INFERENCE_ROWS)):
                shown = ", ".join(repr(v) for v in values.dropna().astype(str).unique()[:3])
                raise SpecError(
                    f"features.text: '{column}' has no words in the training rows (values like {shown})",
                    hint="TF-IDF needs words of two letters or more: name a column of prose, or drop this one",
                )
        return list(spec.features.text)
    forced = {*(spec.features.categorical or []), *(spec.features.numeric or [])}
    return [str(c) for c in frame.columns if c not in forced and looks_like_text(frame[c])]


def left_out_columns(
    train: pd.DataFrame, columns: list[str], spec: Spec, text: list[str] | None = None
) -> dict[str, str]:
    """Inputs no model can learn from, each with why: one value (or none) in every training row, or text
    that is an identifier, not a category (`validation.max_text_cardinality`). Validation warned of them
    (or rejected the batch, where the spec makes those checks gates); a column the spec names as a
    feature, or that a derived feature reads, stays; so does a `text` column (distinct values are its nature)."""
    from retrainer.text import looks_like_identifier

    named = {*(spec.features.categorical or []), *(spec.features.numeric or []), *(text or [])}
    named |= {c for rule in spec.features.derived for c in (rule.ratio or ()) + ((rule.column,) if rule.column else ())}
    cardinality = spec.validation.limit("max_text_cardinality")
    left_out = {}
    for column in (c for c in columns if c not in named):
        values = train[column]
        distinct = int(values.nunique(dropna=True))
        if distinct == 0:
            left_out[column] = "empty in every row"
        elif distinct == 1:
            left_out[column] = "one value in every row"
        elif looks_like_identifier(values, cardinality):
            left_out[column] = f"{distinct:,} distinct values: an identifier, not a category"
    return left_out


def infer_roles(frame: pd.DataFrame, spec: Spec, text: list[str] | None = None) -> tuple[list[str], list[str]]:
    """Split model columns into numeric and categorical; datetimes feed derived features only, and
    `text` columns have a branch of their own."""
    import pandas as pd

    forced_cat = set(spec.features.categorical or [])
    forced_num = set(spec.features.numeric or [])
    numeric, categorical = [], []
    for column in frame.columns:
        dtype = frame[column].dtype
        if column in (text or []):
            continue
        if column in forced_num:
            numeric.append(str(column))
        elif column in forced_cat:
            categorical.append(str(column))
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            continue
        elif pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
            categorical.append(str(column))
        else:
            numeric.append(str(column))
    return numeric, categorical


def build_preprocessor(train: pd.DataFrame, spec: Spec) -> tuple[SkPipeline, dict[str, Any]]:
    """The unfitted preprocessing pipeline for these columns, and a schema describing it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from retrainer.transforms import CategoryCodes, ColumnMedianImputer, DerivedFeatures, TextTfidf

    candidates = feature_columns(train, spec)
    text = text_columns(train[candidates], spec)  # prose: mostly distinct by nature, never left out as an id
    left_out = left_out_columns(train, candidates, spec, text)
    inputs = [c for c in candidates if c not in left_out]
    rules = [rule.model_dump(exclude_none=True) for rule in spec.features.derived]
    derived_sample = DerivedFeatures(rules).transform(train[inputs].head(200))
    # A column read by a date_part rule is an input to derivation only, never a feature itself.
    date_sources = {r.column for r in spec.features.derived if r.date_part}
    numeric, categorical = infer_roles(
        derived_sample.drop(columns=list(date_sources & set(derived_sample.columns))), spec, text
    )
    numeric_steps: list[tuple[str, Any]] = [("impute", ColumnMedianImputer(strategy=spec.features.impute_numeric))]
    if spec.features.scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps: Any
    if spec.features.encoding == "onehot":
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist", max_categories=spec.features.max_categories, sparse_output=False
        )
        categorical_steps = Pipeline(
            [("impute", SimpleImputer(strategy="constant", fill_value="missing")), ("encode", encoder)]
        )
    else:  # the codes of SimpleImputer("missing") + OrdinalEncoder, without a Python string per cell
        categorical_steps = CategoryCodes()
    # a text column's TF-IDF is sparse and wide: the whole output is then sparse (sparse_threshold)
    text_branches = [
        (f"text_{i}", TextTfidf(max_features=spec.features.text_max_features), [column])
        for i, column in enumerate(text)
    ]
    columns = ColumnTransformer(
        [
            ("numeric", Pipeline(numeric_steps), numeric),
            ("categorical", categorical_steps, categorical),
            *text_branches,
        ],
        remainder="drop",
        verbose_feature_names_out=False,
    )
    preprocessor = Pipeline([("derive", DerivedFeatures(rules, categorical)), ("columns", columns)])
    schema = {
        "inputs": {c: str(train[c].dtype) for c in inputs},
        "numeric": numeric,
        "categorical": categorical,
        "text": text,
        "derived": [rule["name"] for rule in rules],
        "left_out": left_out,
    }
    return preprocessor, schema


def features(ctx: RunContext, inputs: Mapping[str, Any]) -> StageOutput:
    from retrainer.tasks import task_class

    own = task_class(ctx.spec).preprocessor(inputs["train"], ctx.spec)  # a forecaster reads the series as they are
    preprocessor, schema = own or build_preprocessor(inputs["train"], ctx.spec)
    summary = (
        f"{len(schema['numeric'])} numeric, {len(schema['categorical'])} categorical, {len(schema['derived'])} derived"
    )
    if schema.get("text"):
        summary += f", {len(schema['text'])} text ({', '.join(schema['text'])}: TF-IDF words and characters)"
    if left_out := schema.get("left_out"):
        summary += "; left out " + ", ".join(f"{column} ({why})" for column, why in left_out.items())
        for column, why in left_out.items():
            ctx.logger.warning("feature %s left out: %s", column, why)
    return StageOutput(artifacts={"preprocessor": preprocessor, "feature_schema": schema}, summary=summary)


STAGE = Stage(
    name="features",
    func=features,
    needs=("train",),
    makes=("preprocessor", "feature_schema"),
    spec_sections=("features", "target", "id_column", "time_column", "task", "forecast"),
    code=("retrainer.transforms", "retrainer.tasks", "retrainer.text"),
)
