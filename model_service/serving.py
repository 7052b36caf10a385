"""What the model service holds while it runs, and the request-to-event path.

Routes stay thin: they parse and validate, then call into ``ModelService``,
which owns the model and the publisher.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from model_service.publisher import EventPublisher
from model_service.schemas import feedback_model_for, request_model_for
from model_service.stream_writes import BlockHeader, PredictionBlock
from shared.events import encode_feedback
from shared.ids import new_prediction_ids
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from shared.telemetry import ModelServiceMetrics

if TYPE_CHECKING:
    from model_service.batching import MicroBatcher
    from model_service.runtime import LiteRTModel


@dataclass(frozen=True, slots=True)
class PredictionResult:
    ids: list[str]
    classes: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    timestamp_ms: int = 0


class ModelService:
    def __init__(
        self,
        model: LiteRTModel,
        client: aioredis.Redis,
        publisher: EventPublisher,
        keys: Keys,
        metrics: ModelServiceMetrics | None = None,
        *,
        publish: bool = True,
        max_batch_rows: int = 1_024,
    ) -> None:
        self.metrics = metrics
        self.model = model
        self.client = client
        self.publisher = publisher
        self.keys = keys
        self.publish = publish
        self._feature_index = {name: i for i, name in enumerate(model.metadata.feature_names)}
        self._class_index = {name: i for i, name in enumerate(model.metadata.class_names)}
        # Bodies are validated against this model's own shape (model_service.schemas).
        self.request_model = request_model_for(model.metadata.feature_names, max_batch_rows)
        self.feedback_model = feedback_model_for(model.metadata.class_names)
        self._block_header = BlockHeader(keys.predictions, model.metadata.name, model.metadata.version)
        # Set by the /predict route on first use when micro-batching is on (model_service.batching).
        self.micro_batcher: MicroBatcher | None = None

    @property
    def metadata(self) -> ModelMetadata:
        return self.model.metadata

    def feature_position(self, name: str) -> int | None:
        return self._feature_index.get(name)

    def label_index(self, label: int | str) -> int | None:
        """A label given as index or class name, as an index; None if unknown."""
        if isinstance(label, int):
            return label if 0 <= label < self.metadata.n_classes else None
        return self._class_index.get(label)

    def predict(self, features: npt.NDArray[np.float32]) -> PredictionResult:
        """Score a (rows, F) matrix and queue one stream event per row."""
        result = self.score(features)
        self.publish_predictions(features, result)
        return result

    def score(self, features: npt.NDArray[np.float32]) -> PredictionResult:
        """Score without publishing: one interpreter call, its metrics, fresh ids."""
        started = time.perf_counter()
        probabilities = self.model.predict_proba(features)
        classes = probabilities.argmax(axis=1).astype(np.int64)
        if self.metrics is not None:
            self.metrics.record_inference(time.perf_counter() - started, n=len(features))
            self.metrics.record_predictions(classes)
        now_ms = time.time_ns() // 1_000_000
        return PredictionResult(new_prediction_ids(len(features), now_ms), classes, probabilities, now_ms)

    def publish_predictions(self, features: npt.NDArray[np.float32], result: PredictionResult) -> None:
        """Queue the events of a scored matrix (one per row), unless publishing is off.

        Rows whose probabilities are not finite (the model overflowed) are left out:
        their requests get a 422, and one NaN would poison a window's estimates.
        """
        finite = np.isfinite(result.probabilities).all(axis=1)
        if not finite.all():
            keep = np.flatnonzero(finite)
            features = features[keep]
            result = PredictionResult(
                [result.ids[i] for i in keep], result.classes[keep], result.probabilities[keep], result.timestamp_ms
            )
        if self.publish and result.ids:
            self.publisher.submit_predictions(PredictionBlock(
                self._block_header, result.ids, result.timestamp_ms, features, result.classes, result.probabilities
            ))

    def record_feedback(self, prediction_id: str, label: int) -> None:
        entry = encode_feedback(prediction_id, label, time.time_ns() // 1_000_000)
        self.publisher.submit([(self.keys.feedback, entry)])
