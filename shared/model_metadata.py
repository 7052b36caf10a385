"""What a trained model directory says about itself, and its reference sample.

Both services need it: the model service validates requests against the
feature and class names, the monitor tests windows against the reference. The
model service publishes both to Redis at start-up so the monitor needs no
shared disk.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

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


class ModelMetadata(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    version: str
    feature_names: list[str]
    class_names: list[str]
    categorical: list[bool] = Field(description="Per feature: tested with chi-squared, not KS")
    training: TrainingSummary
    data: DataSummary
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
    """

    features: npt.NDArray[np.float32]
    predicted_classes: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            features=self.features,
            predicted_classes=self.predicted_classes,
            probabilities=self.probabilities,
            labels=self.labels,
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
            )

    @classmethod
    def load(cls, model_dir: Path) -> Reference:
        return cls.from_bytes((model_dir / REFERENCE_FILE).read_bytes())

    def save(self, model_dir: Path) -> None:
        (model_dir / REFERENCE_FILE).write_bytes(self.to_bytes())
