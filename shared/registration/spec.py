"""What a registration declares about a model and its reference columns.

The same declaration comes from ``driftwatch register``'s options and from the
``metadata`` part of ``PUT /models/{name}/versions/{version}``: which columns
are features, which hold the prediction, the class probabilities and the true
label, the task, and optionally the class names and categorical features.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.json_numbers import JsonInt
from shared.model_metadata import LabelJoin, LabelKind, ReferenceSummary, Task

# A name or version travels inside Redis keys (``driftwatch:{name}:...``) and URL paths.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
DEFAULT_SAMPLE_ROWS = 10_000
MAX_SAMPLE_ROWS = 50_000  # the trainer's cap too: KS on 50k rows resolves any shift that matters
MAX_FEATURES = 4_096
MAX_CLASSES = 1_000
# A feature name travels into every report, histogram, metric attribute and alert label: an alert
# rule's `feature` takes at most 256 characters (monitor.alerts.rules), so a longer name could never be
# named by one. A class name is a label the ingest endpoints take at most 1,000 characters of
# (model_service.ingest_bodies). Unbounded, a 1 MB feature name was registered, and every GET /models
# parsed it again.
MAX_FEATURE_NAME_CHARS = 256
MAX_CLASS_NAME_CHARS = 1_000
FeatureName = Annotated[str, Field(max_length=MAX_FEATURE_NAME_CHARS)]
ClassName = Annotated[str, Field(max_length=MAX_CLASS_NAME_CHARS)]


class RegistrationSpec(BaseModel):
    """A reference file's layout and the model's kind (the ``metadata`` of a registration)."""

    model_config = ConfigDict(extra="forbid")

    feature_names: list[FeatureName] = Field(
        min_length=1, max_length=MAX_FEATURES, description="Feature columns, in order"
    )
    task: Task = "classification"
    prediction_column: str | None = Field(
        default=None, description="The model's prediction: a class label, or a number for a regressor"
    )
    probability_columns: list[str] = Field(
        default_factory=list, max_length=MAX_CLASSES, description="One per class, in class_names order"
    )
    label_column: str | None = Field(default=None, description="The true label (classifiers); empty cells allowed")
    class_names: list[ClassName] | None = Field(
        default=None, max_length=MAX_CLASSES,
        description="Class labels in the model's order; default: the labels seen, sorted (scikit-learn's classes_)",
    )
    label_kind: LabelKind | None = Field(default=None, description="Default: detected from the labels")
    label_join: LabelJoin = Field(
        default="by-id", description='"carried": feedback carries its prediction\'s class and time, and '
        "predictions store no join state in Redis (README \"Labels that carry their prediction\")",
    )
    categorical: list[str] | Literal["auto", "none"] = Field(
        default="auto",
        description="Features tested with chi-squared; auto: integer-valued with 2 to 10 levels over the whole file",
    )
    source: str = Field(default="upload", max_length=1_000, description="Where the reference came from")
    sample_rows: JsonInt = Field(default=DEFAULT_SAMPLE_ROWS, ge=1, le=MAX_SAMPLE_ROWS)
    sample_seed: JsonInt = Field(default=0, ge=0)
    # Set when the columns sent are a sample of a larger file (what `driftwatch register --monitor-url`
    # sends): the whole file's content hash and exact summaries, which a sample cannot give.
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    reference_summary: ReferenceSummary | None = None

    @model_validator(mode="after")
    def _columns_are_distinct(self) -> RegistrationSpec:
        roles = [*self.feature_names, *self.probability_columns]
        roles += [c for c in (self.prediction_column, self.label_column) if c is not None]
        repeated = sorted(c for c, n in Counter(roles).items() if n > 1)
        if repeated:
            raise ValueError(f"columns named twice (a column has one role): {repeated}")
        if self.task == "regression":
            if self.probability_columns or self.class_names or self.label_kind:
                raise ValueError("a regressor has no probability_columns, class_names or label_kind")
            if self.label_column is not None:
                raise ValueError("label_column: a regressor's true values are not used (feedback is for classifiers)")
            if self.prediction_column is None:
                raise ValueError("prediction_column: a regressor's reference needs its predictions (tested with KS "
                                 "as a column named 'prediction')")
        return self

    @property
    def columns(self) -> list[str]:
        """Every column the registration reads."""
        extra = [c for c in (self.prediction_column, self.label_column) if c is not None]
        return [*self.feature_names, *self.probability_columns, *extra]

    @property
    def text_columns(self) -> list[str]:
        """Columns holding class labels (read as text; the label kind is decided over the whole file)."""
        if self.task == "regression":
            return []
        return [c for c in (self.prediction_column, self.label_column) if c is not None]
