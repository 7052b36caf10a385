"""What a model version says about itself, and its reference sample.

Both services need it: the model service validates requests against the
feature and class names, the monitor tests windows against the reference. A
version comes from a training run here (a model directory, which the model
service publishes to Redis at start-up) or from ``driftwatch register`` (a
user's own model, described by a CSV/Parquet reference), so the monitor needs
no shared disk and treats both alike.

Every field added since the first trained models has a default that describes
those models (a probabilistic classifier with integer labels), so their
``metadata.json`` files stay valid.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.npz"
HOLDOUT_FILE = "holdout.npz"
LITERT_FILE = "model.tflite"
KERAS_FILE = "model.keras"


class TrainingSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_accuracy: float
    test_loss: float
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int
    n_train: int
    n_reference: int
    n_test: int


class DataSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str
    sha256: str = Field(description="Hash of the feature matrix and labels the model was trained on")
    label_column: str | None = None


Task = Literal["classification", "regression"]
LabelKind = Literal["string", "integer", "boolean"]
# How the monitor finds a label's prediction: "by-id" joins it through per-prediction join
# state in Redis; "carried" labels name their prediction's class and time themselves, so
# predictions store no join state at all (README "Labels that carry their prediction").
LabelJoin = Literal["by-id", "carried"]


class FeatureSummary(BaseModel):
    """Exact summaries of one feature over the whole reference file, not only the sample.

    ``count`` and ``missing`` are exact counts; ``min``, ``max`` and the quantiles
    are exact over the feature's float32 values (the precision events carry),
    quantiles as ``numpy.quantile``'s default (linear) method; ``mean`` is summed
    in float64. None where the feature has no value at all.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    count: int = Field(description="Rows with a value")
    missing: int = Field(description="Rows without one (empty cell, null or NaN)")
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    quantiles: list[float | None] = Field(default_factory=list, description="At ReferenceSummary.quantile_levels")


class ReferenceSummary(BaseModel):
    """What the stored reference sample was drawn from, and how."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(description="Rows in the whole reference file")
    sample_rows: int = Field(description="Rows kept as the reference sample")
    sample_seed: int = Field(description="Seed of the uniform sample without replacement (bottom-k random keys)")
    quantile_levels: list[float]
    features: list[FeatureSummary]
    prediction: FeatureSummary | None = Field(default=None, description="A regressor's numeric prediction")


class ModelMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    feature_names: list[str]
    class_names: list[str] = Field(
        description='Class labels as text ("0", "1", ...; "true"/"false" for booleans); empty for a regressor'
    )
    categorical: list[bool] = Field(description="Per feature: tested with chi-squared, not KS")
    task: Task = "classification"
    label_kind: LabelKind = Field(
        default="integer", description="The JSON type a class label has on the wire (class_names holds its text)"
    )
    has_probabilities: bool = Field(default=True, description="Whether predictions carry class probabilities")
    label_join: LabelJoin = Field(
        default="by-id",
        description='"by-id": labels name a prediction id, joined through per-prediction state; "carried": '
        "labels carry the prediction's class and time, and predictions store no join state",
    )
    training: TrainingSummary | None = Field(default=None, description="Set when Driftwatch trained the model")
    data: DataSummary
    reference_summary: ReferenceSummary | None = Field(
        default=None, description="Set when the reference came from a registered file"
    )
    created_at: str

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def load(cls, model_dir: Path) -> ModelMetadata:
        return cls.model_validate_json((model_dir / METADATA_FILE).read_bytes())

    def save(self, model_dir: Path) -> None:
        (model_dir / METADATA_FILE).write_text(self.model_dump_json(indent=2))


@dataclass(frozen=True, slots=True)
class Reference:
    """The sample drift is tested against.

    ``features`` come from the training data; ``predicted_classes``,
    ``probabilities`` and ``labels`` from a held-out sample the model did not
    train on, so that prediction drift and confidence are compared with what
    the model does on unseen data, not on data it memorised.

    A registered model may lack some of them: ``probabilities`` has zero
    columns when the model gives none, ``labels`` is empty without a label
    column, and a regressor's numeric predictions are ``predicted_values``
    (its ``predicted_classes`` is empty).

    ``labelled_features`` are the features of the rows ``labels`` describe,
    which the label-free accuracy bound (:mod:`monitor.class_mix`) reweights
    toward a window. ``driftwatch train`` writes its held-out split's; a
    registered reference sample, whose rows are one sample, repeats
    ``features``; empty where unknown (references written before it).

    ``feature_labels`` are the true classes of the ``features`` rows where
    they differ from the labelled ones (``driftwatch train``'s training
    rows): more labelled rows for the agreement estimate's neighbour vote
    (:mod:`monitor.agreement`), which a small held-out sample leaves weak.
    Empty where there are none (a registered sample, older references).
    """

    features: npt.NDArray[np.float32]
    predicted_classes: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    predicted_values: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    labelled_features: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    feature_labels: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            features=self.features,
            predicted_classes=self.predicted_classes,
            probabilities=self.probabilities,
            labels=self.labels,
            predicted_values=self.predicted_values,
            labelled_features=self.labelled_features,
            feature_labels=self.feature_labels,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Reference:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return cls(
                features=npz["features"].astype(np.float32, copy=False),
                predicted_classes=npz["predicted_classes"].astype(np.int64, copy=False),
                probabilities=npz["probabilities"].astype(np.float32, copy=False),
                labels=npz["labels"].astype(np.int64, copy=False),
                predicted_values=(
                    npz["predicted_values"].astype(np.float32, copy=False)
                    if "predicted_values" in npz.files
                    else np.zeros(0, np.float32)  # written before regressors existed
                ),
                labelled_features=(
                    npz["labelled_features"].astype(np.float32, copy=False)
                    if "labelled_features" in npz.files
                    else np.zeros((0, 0), np.float32)
                ),
                feature_labels=(
                    npz["feature_labels"].astype(np.int64, copy=False)
                    if "feature_labels" in npz.files
                    else np.zeros(0, np.int64)
                ),
            )

    @classmethod
    def load(cls, model_dir: Path) -> Reference:
        return cls.from_bytes((model_dir / REFERENCE_FILE).read_bytes())

    def save(self, model_dir: Path) -> None:
        (model_dir / REFERENCE_FILE).write_bytes(self.to_bytes())
