"""Bodies of ``POST /models/{name}/predictions`` and ``/feedback``, made for one registered model.

As for ``/predict`` (``model_service.schemas``), a body is validated by
pydantic-core straight from its bytes against a model made for the model it
names: a row by position has exactly F values, by name at most F keys, so a
wrong length is one error, not one per value; probabilities have exactly K.

A batch is accepted in part: each row is ``Row | Any`` (left to right), so a
row that does not fit falls through as the raw value instead of failing the
whole body, and :func:`row_errors` validates it alone again to say why
(rarely: only rows that failed pay for it). The body's own shape (``rows``
missing, more rows than allowed) still fails as a whole.

Values: features are numbers or ``null`` (missing); ``NaN`` (pydantic's
JSON parser takes the literal) is missing too; anything beyond
``MAX_FEATURE_ABS`` is refused later, vectorised (``model_service.ingest_rows``).
A class label is a JSON string, integer or boolean, as registered
(``label_kind``); it is mapped to its class by its text (``label_text``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import pydantic_core
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    Tag,
    TypeAdapter,
    ValidationError,
    create_model,
)

from model_service.schemas import BY_NAME, BY_POSITION, _at_most, _vector_kind
from shared.registration.spec import NAME_PATTERN

if TYPE_CHECKING:
    from model_service.registered_models import IngestSchema

MAX_ID_CHARS = 256
# Null, NaN: a missing value. Infinity and out-of-range values pass here and are refused with their row.
MaybeNumber = Annotated[float | None, Field(allow_inf_nan=True)]
ExternalId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


def _json_kind(value: Any) -> str | None:
    """The JSON type of a value, as a union's tag: one branch is tried, so a wrong value gets one error."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else None


Label = Annotated[
    Annotated[StrictBool, Tag("boolean")] | Annotated[StrictInt, Tag("integer")]
    | Annotated[StrictFloat, Tag("number")] | Annotated[str, Field(max_length=1_000), Tag("string")],
    Discriminator(_json_kind, custom_error_type="label_type",
                  custom_error_message="Input should be a string, an integer or a boolean (a class label)"),
]
Timestamp = Annotated[
    Annotated[StrictInt, Tag("integer")] | Annotated[AwareDatetime, Tag("string")],
    Discriminator(_json_kind, custom_error_type="timestamp_type",
                  custom_error_message="Input should be epoch milliseconds or an RFC 3339 string with an offset"),
]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
# Union tags pydantic puts in error locations; the client sees the path of its own JSON.
UNION_TAGS = frozenset({BY_POSITION, BY_NAME, "boolean", "integer", "number", "string"})


class LoggedRow(BaseModel):
    """One prediction another service made (the fields common to every model)."""

    model_config = _STRICT

    id: ExternalId | None = Field(default=None, description="Your id for the prediction (a Driftwatch id is kept)")
    timestamp: Timestamp | None = Field(default=None, description="RFC 3339 with an offset, or epoch milliseconds")


class LoggedLabel(BaseModel):
    """The true label of a prediction logged earlier."""

    model_config = _STRICT

    id: ExternalId = Field(description="The prediction's id, as logged (yours or Driftwatch's)")
    label: Label = Field(description="The true class, as the model's labels are written")
    timestamp: Timestamp | None = Field(default=None, description="When the label became known (default: now)")
    prediction_timestamp: Timestamp | None = Field(
        default=None, description="When the prediction was made: required with an id that is not Driftwatch's, "
        "and with prediction"
    )
    prediction: Label | None = Field(
        default=None, description="The class the model predicted, as the model's labels are written: the label "
        "is then counted without any state kept per prediction (with prediction_timestamp; required for a model "
        "registered with label_join \"carried\")",
    )
    version: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        default=None, description="With prediction: the model version that made it (default: the current one)"
    )


def _features(names: list[str]) -> Any:
    n = len(names)
    return Annotated[
        Annotated[list[MaybeNumber], Field(min_length=n, max_length=n), Tag(BY_POSITION)]
        | Annotated[dict[str, MaybeNumber], _at_most(names), Tag(BY_NAME)],
        Discriminator(_vector_kind),
        Field(description=f"The {n} features in order, or a mapping by name (a name left out is missing)"),
    ]


class IngestBodies:
    """The pydantic bodies of one registered model version, at most ``max_rows`` rows a batch."""

    def __init__(self, schema: IngestSchema, max_rows: int) -> None:
        meta = schema.metadata
        prediction: Any = (
            Annotated[float, Field(description="The model's numeric prediction")]
            if schema.is_regressor
            else Annotated[Label, Field(description="The predicted class, as the model's labels are written")]
        )
        k = schema.probability_width
        probability = Annotated[float, Field(ge=0.0, le=1.0)]
        probabilities: Any = (
            (Annotated[list[probability], Field(min_length=k, max_length=k)], ...)
            if k
            else (list[float] | None, None)  # refused with a clear message in ingest_rows
        )
        row: Any = create_model(
            "LoggedRow", __base__=LoggedRow, features=(_features(meta.feature_names), ...),
            prediction=(prediction, ...), probabilities=probabilities,
        )  # fmt: skip
        self.row: type[BaseModel] = row
        row_or_raw = Annotated[
            Annotated[row, _mark_valid()] | Annotated[Any, Tag("any")],
            Field(union_mode="left_to_right"),
        ]
        self.predictions = _batch_model("LoggedPredictions", "rows", row_or_raw, max_rows)
        label_or_raw = Annotated[
            Annotated[LoggedLabel, _mark_valid()] | Annotated[Any, Tag("any")], Field(union_mode="left_to_right")
        ]
        self.feedback = _batch_model("LoggedFeedback", "labels", label_or_raw, max_rows)
        self._row_adapter: TypeAdapter[Any] = TypeAdapter(row)
        self._label_adapter: TypeAdapter[Any] = TypeAdapter(LoggedLabel)

    def row_errors(self, raw: object, index: int, item: str) -> list[dict[str, Any]]:
        """Why one row (``item``: ``rows`` or ``labels``) fell through: its errors, located in the body."""
        adapter = self._row_adapter if item == "rows" else self._label_adapter
        return errors_at(adapter, raw, (item, index))


def errors_at(adapter: TypeAdapter[Any], raw: object, prefix: tuple[str | int, ...]) -> list[dict[str, Any]]:
    """Validate ``raw`` again as JSON (so strict JSON rules apply, as in the body) and locate its errors."""
    try:
        adapter.validate_json(pydantic_core.to_json(raw, inf_nan_mode="constants"))
    except ValidationError as exc:
        return [
            {**e, "loc": ("body", *prefix, *(p for p in e["loc"] if p not in UNION_TAGS))}
            for e in exc.errors(include_url=False)
        ]
    return [{"type": "value_error", "loc": ("body", *prefix), "msg": "row does not fit the model", "input": None}]


class _Valid:
    """Marks a row that validated, so it is told apart from a raw one that fell through."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _mark_valid() -> Any:
    def mark_valid(value: Any) -> _Valid:
        return _Valid(value)

    return AfterValidator(mark_valid)


def _batch_model(name: str, item: str, item_type: Any, max_rows: int) -> type[BaseModel]:
    rows: Any = Annotated[list[item_type], Field(min_length=1, max_length=max_rows)]
    fields: dict[str, Any] = {item: (rows, ...)}
    return create_model(name, __config__=_STRICT, **fields)


def split_valid(items: list[Any]) -> tuple[list[int], list[Any], list[tuple[int, Any]]]:
    """Indexes and values of the rows that validated, and the raw rows that did not."""
    good_index: list[int] = []
    good: list[Any] = []
    bad: list[tuple[int, Any]] = []
    for i, item in enumerate(items):
        if isinstance(item, _Valid):
            good_index.append(i)
            good.append(item.value)
        else:
            bad.append((i, item))
    return good_index, good, bad


# -- documentation: the bodies as they look for any model (each model's own are built above) --------
class LoggedPredictionRow(LoggedRow):
    """One prediction: its features, what the model predicted, and its probabilities if it gives them."""

    features: list[MaybeNumber] | dict[str, MaybeNumber] = Field(
        description="The features in the registered order (null: missing), or a mapping by name (a name left "
        "out is missing)"
    )
    prediction: Label = Field(description="The predicted class as the model's labels are written, or a "
                              "regressor's number")
    probabilities: list[float] | None = Field(
        default=None, description="One per class, in the registered order; only for a model registered with them"
    )


class LoggedPredictionsBody(BaseModel):
    """A batch of predictions of one registered model."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"rows": [
            {"id": "req-1", "timestamp": "2026-01-30T10:45:00Z", "features": {"age": 42, "income": None},
             "prediction": "churn", "probabilities": [0.2, 0.8]},
        ]}]},
    )  # fmt: skip

    rows: list[LoggedPredictionRow] = Field(min_length=1)


class LoggedFeedbackBody(BaseModel):
    """True labels of predictions logged earlier."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"labels": [
            {"id": "req-1", "label": "churn", "prediction_timestamp": "2026-01-30T10:45:00Z"},
            {"id": "req-2", "label": "stay", "prediction": "churn", "prediction_timestamp": "2026-01-30T10:46:00Z"},
        ]}]},
    )  # fmt: skip

    labels: list[LoggedLabel] = Field(min_length=1)


class PredictionsAccepted(BaseModel):
    ids: list[str] = Field(description="Each row's Driftwatch id, in row order (yours mapped, or drawn)")
    accepted: int


class FeedbackAccepted(BaseModel):
    accepted: int


class PartlyAccepted(BaseModel):
    """Rows that did not fit are named in ``detail``; the others were accepted (none when the
    body was wrong as a whole: then ``accepted`` and ``accepted_ids`` are left out)."""

    detail: list[dict[str, Any]]
    error_count: int
    accepted: int = Field(default=0, description="Rows accepted from this batch")
    accepted_ids: list[str] = Field(default_factory=list, description="Ids of the rows accepted (as answered for "
                                    "predictions, as sent for feedback)")
