"""Events of models this service does not serve: looked up, checked, handed to the one publisher.

Whatever the source (``POST /models/{name}/predictions`` and ``/feedback``,
KServe's CloudEvents), events end in the same :class:`EventPublisher` as
``/predict``'s: one queue, one spill file, one exactly-once write per batch.
The publisher writes each event to the stream of the model it names
(``PredictionBlock.header``), so nothing here is bound to the served model.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status

from model_service.ingest_bodies import IngestBodies, split_valid
from model_service.ingest_rows import LoggedLabels, LoggedPredictions, logged_labels, logged_predictions
from model_service.publisher import EventPublisher
from model_service.registered_models import IngestSchema, RegisteredModels, UnreadableMetadata
from model_service.stream_writes import PredictionBlock
from shared.events import encode_feedback
from shared.http import RETRY_AFTER_S
from shared.telemetry import ModelServiceMetrics


class QueueFull(Exception):
    """The publisher's queue had no room for every accepted row (the caller answers 503)."""

    def __init__(self, dropped: int, of: int) -> None:
        super().__init__(f"the publish queue is full: {dropped} of {of} rows were not queued; retry the batch")
        self.dropped = dropped
        self.of = of


class IngestService:
    def __init__(
        self,
        models: RegisteredModels,
        publisher: EventPublisher,
        metrics: ModelServiceMetrics | None = None,
        *,
        max_rows: int = 1_024,
        publish: bool = True,
    ) -> None:
        self.models = models
        self.publisher = publisher
        self.metrics = metrics
        self.max_rows = max_rows
        self.publish = publish
        self._bodies: dict[tuple[str, str], tuple[IngestSchema, IngestBodies]] = {}

    async def schema(self, name: str) -> IngestSchema:
        """The registered model ``name``: 404 if there is none, 503 if its metadata is unreadable."""
        try:
            schema = await self.models.get(name)
        except UnreadableMetadata as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc), headers={"Retry-After": str(RETRY_AFTER_S)}
            ) from None
        if schema is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail=f"no model registered under the name {name[:200]!r}: register it first (driftwatch register)",
            )
        return schema

    def bodies(self, schema: IngestSchema) -> IngestBodies:
        """The model's request bodies, built once per version."""
        found = self._bodies.get((schema.name, schema.version))
        if found is None or found[0] is not schema:
            found = (schema, IngestBodies(schema, self.max_rows))
            self._bodies[schema.name, schema.version] = found
        return found[1]

    # -- predictions -------------------------------------------------------------
    def predictions(self, schema: IngestSchema, rows: list[Any], source: str = "predictions") -> LoggedPredictions:
        """Check a validated body's rows (``Row | raw``), queue the ones that fit, count both."""
        index, valid, raw = split_valid(rows)
        bodies = self.bodies(schema)
        errors = [e for i, row in raw for e in bodies.row_errors(row, i, "rows")]
        logged = logged_predictions(schema, index, valid, errors)
        self.publish_predictions(schema, logged, source=source, rejected=len(rows) - len(logged.ids))
        return logged

    def publish_predictions(
        self, schema: IngestSchema, logged: LoggedPredictions, *, source: str, rejected: int = 0
    ) -> None:
        """Queue accepted rows as one block of the model's stream; raises :class:`QueueFull`."""
        if self.metrics is not None:
            self.metrics.ingested(schema.name, schema.version, source, accepted=len(logged.ids), rejected=rejected)
            if logged.missing:
                self.metrics.missing_values(schema.name, schema.version, logged.missing)
        if not logged.ids or not self.publish:
            return
        dropped = self.publisher.submit_predictions(PredictionBlock(
            schema.header, logged.ids, logged.timestamps_ms, logged.features, logged.classes, logged.probabilities,
        ))  # fmt: skip
        if dropped:
            raise QueueFull(dropped, len(logged.ids))

    # -- feedback ------------------------------------------------------------------
    def labels(self, schema: IngestSchema, rows: list[Any]) -> tuple[LoggedLabels, list[str]]:
        """Check and queue a validated feedback body; also the ids of the accepted rows as sent."""
        index, valid, raw = split_valid(rows)
        bodies = self.bodies(schema)
        errors = [e for i, row in raw for e in bodies.row_errors(row, i, "labels")]
        logged = logged_labels(schema, index, valid, errors)
        refused = {e["loc"][2] for e in logged.errors}
        sent = [row.id for i, row in zip(index, valid, strict=True) if i not in refused]
        if self.metrics is not None:
            self.metrics.ingested(schema.name, schema.version, "feedback", accepted=len(logged.ids),
                                  rejected=len(rows) - len(logged.ids))
        if logged.ids and self.publish:
            stream = schema.keys.feedback
            entries = [
                (stream, encode_feedback(pid, label, at, predicted, made, version))
                for pid, label, at, predicted, made, version in zip(
                    logged.ids, logged.labels, logged.timestamps_ms, logged.predicted, logged.predicted_ms,
                    logged.versions, strict=True)
            ]
            dropped = self.publisher.submit(entries)
            if dropped:
                raise QueueFull(dropped, len(entries))
        return logged, sent
