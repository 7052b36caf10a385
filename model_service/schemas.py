"""Request and response bodies of the model service.

Bodies are parsed with ``model_validate_json`` straight from the raw bytes
(pydantic-core's JSON parser), not through FastAPI's body-model path, which
parses into Python objects first and cost a third of throughput here.
``allow_inf_nan=False`` makes NaN and Infinity a 422 naming the element.

The bodies the service validates are made for the served model
(``request_model_for``, ``feedback_model_for``): rows of exactly its feature
count, its feature names, its labels. So a list longer than the model takes
is refused by its length before any item is validated (an 800k-item body is
one error, not 800k), and the OpenAPI document shows the served model's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    Tag,
    TypeAdapter,
    create_model,
    model_validator,
)
from pydantic.json_schema import JsonDict, JsonValue

# The largest feature magnitude taken. No real feature lives beyond it, float32 holds it
# (up to 3.4e38), and the network's sums of it stay finite: the digits model's outputs
# turn NaN only near float32's limit. A model that overflows below it gets a 422 for
# that sample (model_service.routes.predict), never NaN probabilities.
MAX_FEATURE_ABS = 1e30
# Strict: "1.5" as a string is a client bug, not a number to coerce. JSON ints pass.
Number = Annotated[StrictFloat, Field(ge=-MAX_FEATURE_ABS, le=MAX_FEATURE_ABS)]


def _vector_kind(value: Any) -> str:
    return BY_NAME if isinstance(value, dict) else BY_POSITION


# Discriminating list vs mapping up front keeps errors about the branch the
# client meant, instead of one error per union member.
BY_POSITION, BY_NAME = "by_position", "by_name"
FeatureVector = Annotated[
    Annotated[list[Number], Field(min_length=1), Tag(BY_POSITION)] | Annotated[dict[str, Number], Tag(BY_NAME)],
    Discriminator(_vector_kind),
]
UNION_TAGS = frozenset({BY_POSITION, BY_NAME})

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


def _one_of_two(examples: list[JsonValue]) -> Callable[[JsonDict], None]:
    """The request's JSON schema as it is validated: ``features`` or ``instances``, exactly
    one, each absent rather than null (pydantic would document both as nullable)."""

    def edit(schema: JsonDict) -> None:
        properties = schema["properties"]
        assert isinstance(properties, dict)
        for name in ("features", "instances"):
            prop = properties[name]
            assert isinstance(prop, dict)
            prop.pop("default", None)
            options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]  # type: ignore[union-attr]
            if len(options) == 1 and isinstance(options[0], dict):
                prop.update(options[0])
        schema["oneOf"] = [{"required": ["features"]}, {"required": ["instances"]}]
        schema["examples"] = examples

    return edit


class PredictRequest(BaseModel):
    """One sample in ``features`` or several in ``instances``; each a list in
    feature order or a mapping by feature name."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra=_one_of_two(
            [
                {"features": [0.0] * 64},
                {"features": {"pixel_0_0": 0.0, "pixel_0_1": 5.0}},
                {"instances": [[0.0] * 64, [1.0] * 64]},
            ]
        ),
    )

    # Absent, not null: exactly one of the two is given, and an explicit null is refused.
    features: FeatureVector | None = None
    instances: Annotated[list[FeatureVector], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = self.model_fields_set
        if ("features" in given) == ("instances" in given):
            raise ValueError("give exactly one of 'features' (one sample) or 'instances' (a batch)")
        if self.features is None and self.instances is None:
            raise ValueError("'features' or 'instances' must not be null")
        return self


UNKNOWN_NAMES_SHOWN = 5


def _at_most(feature_names: Sequence[str]) -> BeforeValidator:
    """Refuse a mapping of more keys than the model has features before its values are validated,
    naming the first few keys that are no feature.

    pydantic checks a list's ``max_length`` as it goes, but a dict's only after
    validating every value: 300k wrong values took 8 s and made 300k errors. The
    names cost one set lookup per key, values untouched; without them a DataFrame
    logged with two extra columns (an id, a timestamp) got "expected 10 features,
    got 12" and the user had to guess which.
    """
    n = len(feature_names)
    known = frozenset(feature_names)

    def check(value: Any) -> Any:
        if isinstance(value, dict) and len(value) > n:
            unknown = [k for k in value if k not in known]  # at least len(value) - n of them
            named = ", ".join(repr(k) for k in unknown[:UNKNOWN_NAMES_SHOWN])
            more = f" and {len(unknown) - UNKNOWN_NAMES_SHOWN} more" if len(unknown) > UNKNOWN_NAMES_SHOWN else ""
            raise ValueError(f"expected {n} features, got {len(value)}: unknown {named}{more}")
        return value

    return BeforeValidator(check)


def _feature_vector(feature_names: Sequence[str]) -> Any:
    """One row of the served model: exactly its F values in order, or a mapping of its F names."""
    n = len(feature_names)
    number = TypeAdapter(Number).json_schema()
    by_name_schema: JsonDict = {
        "properties": {name: number for name in feature_names},
        "required": list(feature_names),
        "additionalProperties": False,
    }
    return Annotated[
        Annotated[list[Number], Field(min_length=n, max_length=n), Tag(BY_POSITION)]
        | Annotated[
            dict[str, Number],
            _at_most(feature_names),
            # Unknown and missing names are reported by name in model_service.features.
            Field(json_schema_extra=by_name_schema),
            Tag(BY_NAME),
        ],
        Discriminator(_vector_kind),
    ]


def request_model_for(feature_names: Sequence[str], max_rows: int) -> type[PredictRequest]:
    """``PredictRequest`` for one served model: its feature count and names, at most ``max_rows`` rows.

    >>> Request = request_model_for(["a", "b"], max_rows=2)
    >>> Request.model_validate_json('{"features": {"a": 1, "b": 2}}').features
    {'a': 1.0, 'b': 2.0}
    """
    vector = _feature_vector(feature_names)
    rows: Any = Annotated[list[vector], Field(min_length=1, max_length=max_rows)]  # type: ignore[valid-type]
    model = create_model(
        "PredictRequest",
        __base__=PredictRequest,
        __doc__=PredictRequest.__doc__,
        features=(vector | None, None),
        instances=(rows | None, None),
    )
    zeros: list[JsonValue] = [0.0] * len(feature_names)
    ones: list[JsonValue] = [1.0] * len(feature_names)
    two_rows: list[JsonValue] = [zeros, ones]
    del two_rows[max_rows:]
    by_name: JsonDict = dict.fromkeys(feature_names, 0.0)
    model.model_config["json_schema_extra"] = _one_of_two(
        [{"features": zeros}, {"features": by_name}, {"instances": two_rows}]
    )
    return model


LABEL_INDEX, LABEL_NAME = "index", "name"
LABEL_TAGS = frozenset({LABEL_INDEX, LABEL_NAME})


def _label_kind(value: Any) -> str:
    return LABEL_NAME if isinstance(value, str) else LABEL_INDEX


def _integral_number(value: Any) -> Any:
    """``6.0`` is the integer 6 in JSON (and in JSON Schema's ``integer``); ``6.5`` and ``true`` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


ClassIndex = Annotated[StrictInt, BeforeValidator(_integral_number)]


def feedback_model_for(class_names: Sequence[str]) -> type[FeedbackRequest]:
    """``FeedbackRequest`` for one served model: a label is one of its class indices or names."""
    name = Literal[tuple(class_names)]  # type: ignore[valid-type]
    label: Any = Annotated[
        Annotated[
            Annotated[StrictInt, Field(ge=0, lt=len(class_names))], BeforeValidator(_integral_number), Tag(LABEL_INDEX)
        ]
        | Annotated[name, Tag(LABEL_NAME)],
        Discriminator(_label_kind),
        Field(description="The true class: its index or its name"),
    ]
    model = create_model(
        "FeedbackRequest", __base__=FeedbackRequest, __doc__=FeedbackRequest.__doc__, label=(label, ...)
    )
    model.model_config["json_schema_extra"] = {"examples": [{"prediction_id": "0192f3a1b2c3" + "0" * 20, "label": 0}]}
    return model


class Prediction(BaseModel):
    prediction_id: str = Field(description="Time-ordered id; send it back with /feedback")
    class_index: int = Field(alias="class", serialization_alias="class")
    class_name: str
    probabilities: list[float]
    model_version: str

    model_config = ConfigDict(populate_by_name=True)


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


class FeedbackRequest(BaseModel):
    """The true label of an earlier prediction."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prediction_id": "0192f3a1b2c3" + "0" * 20, "label": 3}]},
    )

    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    label: ClassIndex | str = Field(description="The true class: its index or its name")


class FeedbackAccepted(BaseModel):
    status: str = "accepted"
    prediction_id: str


class ModelInfo(BaseModel):
    name: str
    version: str
    feature_names: list[str]
    class_names: list[str]
    test_accuracy: float | None = None  # None for a model Driftwatch did not train


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    ingest_only: bool = Field(default=False, description="No model of its own: only the ingest endpoints answer")
    redis: bool
    events_queued: int
    events_published: int
    events_dropped: int
