"""Request models built at start-up from the champion's MLflow signature.

A row must carry every input column of the model (numbers may be null: the model imputes them) but
the optional ones (missing values in training: MLflow's `mlflow models serve` lets a row leave them
out too), and the entity id; anything else in the row is ignored. Errors keep pydantic's location, so a bad payload
gets a 422 that names the offending row and field, e.g. `["body", "rows", 3, "tenure"]`.

Numeric fields are strict: a JSON number (an integer reads as a float) or null, and nothing else. A
number in a string (`"5"`), `true`, `NaN` and `Infinity` are a 422, not coerced: a client that sends
them has a bug the model's imputer would otherwise hide.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError, create_model

_NUMBER = Annotated[float, Strict(), AllowInfNan(False)]  # a finite JSON number; "5", true and NaN are refused
_NUMERIC = {"double": _NUMBER, "float": _NUMBER, "long": _NUMBER, "integer": _NUMBER}
_TYPES: dict[str, Any] = {**_NUMERIC, "string": str, "boolean": bool, "datetime": str}


class RequestSchema:
    """Validators for the three request shapes: one row, `{"rows": [...]}`, `{"entity_ids": [...]}`."""

    def __init__(self, columns: list[tuple[str, str]], entity_id: str, optional: Collection[str] = ()) -> None:
        # the entity id too where the model reads it (a panel forecaster's series id): the model leaves out
        # any column it does not use, so an id that is only for routing costs nothing
        self.columns = [name for name, _ in columns]
        self.numeric = [name for name, kind in columns if kind in _NUMERIC and name != entity_id]
        self.entity_id = entity_id
        fields: dict[str, Any] = {
            f"f{i}": (_TYPES.get(kind, str) | None, Field(None, alias=name) if name in optional else Field(alias=name))
            for i, (name, kind) in enumerate(columns)
        }
        if entity_id not in dict(columns):
            fields["entity"] = (str | int, Field(alias=entity_id))
        config = ConfigDict(extra="ignore", populate_by_name=False)
        row: Any = create_model("Row", __config__=config, **fields)
        self.row = row
        self.batch: Any = create_model("Batch", rows=(list[row], Field(min_length=1)))
        self.online: Any = create_model("Online", entity_ids=(list[str | int], Field(min_length=1)))
        self._rows = TypeAdapter(list[row])

    def parse(self, body: Any) -> tuple[str, list[dict[str, Any]] | list[str]]:
        """('single'|'batch', rows) or ('online', entity ids); raise ValidationError naming the field."""
        if isinstance(body, dict) and "entity_ids" in body:
            return "online", [str(e) for e in self.online.model_validate(body).entity_ids]
        if isinstance(body, dict) and "rows" in body:
            self.batch.model_validate(body)
            return "batch", list(body["rows"])
        if isinstance(body, list):
            self._rows.validate_python(body)
            return "batch", list(body)
        self.row.model_validate(body)
        return "single", [body]

    def validate_rows(self, rows: list[dict[str, Any]]) -> None:
        self._rows.validate_python(rows)

    def openapi_schemas(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request body schema (oneOf the three shapes) and the component schemas it refers to."""
        adapter: TypeAdapter[Any] = TypeAdapter(self.row | self.batch | self.online)
        schema = adapter.json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        return {k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {})


def request_frame(rows: list[dict[str, Any]], columns: list[str]) -> Any:
    """The request's rows as a frame of the served columns, one pass per column; each version's
    `answer` (`retrainer.pyfunc.answer`) turns it into its model's input (numbers as float64...)."""
    import pandas as pd

    data = {column: [row.get(column) for row in rows] for column in columns}
    return pd.DataFrame(data, columns=columns, dtype=object)


def error_details(error: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI writes them: location, message and type, without the input echoed."""
    return [{"loc": [*prefix, *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in error.errors()]


class PredictResponse(BaseModel):
    """One answered row: which alias and version answered, and what it said (the fields of its task).

    binary `{prediction: 0/1, probability, threshold, label}`, multiclass `{prediction: label,
    probability, probabilities}`, regression `{prediction: value}`; see `Task.response`.
    """

    model_config = ConfigDict(protected_namespaces=())
    entity_id: str
    alias: str
    version: int
    prediction: int | str | float = Field(
        description="binary: 1 when the probability reaches the threshold, else 0; multiclass: the most "
        "probable class's label; regression: the predicted value, in the target's units"
    )
    probability: float | None = Field(
        None, description="binary: the positive class's probability; multiclass: the predicted class's"
    )
    probabilities: dict[str, float] | None = Field(None, description="multiclass: every class's probability")
    threshold: float | None = Field(
        None, description="binary: the decision threshold of the version that answered (chosen at evaluation)"
    )
    label: str | int | float | bool | None = Field(
        None, description="binary: the decided class's label, where the version knows its labels"
    )
