"""Request and response bodies of the model service.

Bodies are parsed with ``model_validate_json`` straight from the raw bytes
(pydantic-core's JSON parser), not through FastAPI's body-model path, which
parses into Python objects first and cost a third of throughput here.
``allow_inf_nan=False`` makes NaN and Infinity a 422 naming the element.
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictFloat,
    StrictInt,
    Tag,
    model_validator,
)

# Strict: "1.5" as a string is a client bug, not a number to coerce. JSON ints pass.
Number = StrictFloat


def _vector_kind(value: Any) -> str:
    return BY_NAME if isinstance(value, dict) else BY_POSITION


# Discriminating list vs mapping up front keeps errors about the branch the
# client meant, instead of one error per union member.
BY_POSITION, BY_NAME = "by_position", "by_name"
FeatureVector = Annotated[
    Annotated[list[Number], Field(min_length=1), Tag(BY_POSITION)]
    | Annotated[dict[str, Number], Tag(BY_NAME)],
    Discriminator(_vector_kind),
]
UNION_TAGS = frozenset({BY_POSITION, BY_NAME})

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)


class PredictRequest(BaseModel):
    """One sample in ``features`` or several in ``instances``; each a list in
    feature order or a mapping by feature name."""

    model_config = ConfigDict(
        **_STRICT,
        json_schema_extra={
            "examples": [
                {"features": [0.0] * 64},
                {"features": {"pixel_0_0": 0.0, "pixel_0_1": 5.0}},
                {"instances": [[0.0] * 64, [1.0] * 64]},
            ]
        },
    )

    features: FeatureVector | None = None
    instances: Annotated[list[FeatureVector], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.features is None) == (self.instances is None):
            raise ValueError("give exactly one of 'features' (one sample) or 'instances' (a batch)")
        return self


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
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"prediction_id": "0192f3a1b2c3" + "0" * 20, "label": 3}]},
    )

    prediction_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    label: StrictInt | str = Field(description="The true class: its index or its name")


class FeedbackAccepted(BaseModel):
    status: str = "accepted"
    prediction_id: str


class ModelInfo(BaseModel):
    name: str
    version: str
    feature_names: list[str]
    class_names: list[str]
    test_accuracy: float


class Readiness(BaseModel):
    ready: bool
    model_loaded: bool
    redis: bool
    events_queued: int
    events_published: int
    events_dropped: int
