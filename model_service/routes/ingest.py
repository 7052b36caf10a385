"""POST /models/{name}/predictions and /models/{name}/feedback: log a registered model's events.

For models this service does not serve: a team's own model logs its
predictions (and later its labels) here, over HTTP or through
``driftwatch.Client``. Each row is checked against the model's registered
metadata; rows that fit are queued for the model's stream through the same
publisher as ``/predict`` (spill file while Redis is away, exactly-once
writes), and rows that do not are named in a 422 that also lists what was
accepted: a batch is accepted in part, never lost whole for one bad row.
Retrying a whole batch is safe: ids dedupe in the monitor.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status

from model_service.ingest_bodies import (
    UNION_TAGS,
    FeedbackAccepted,
    PartlyAccepted,
    PredictionsAccepted,
)
from model_service.ingest_service import IngestService, QueueFull
from model_service.serving_deps import get_ingest
from shared.api_auth import WriteAccess
from shared.http import RETRY_AFTER_S, parse_json_body, validation_error, validation_response

router = APIRouter(tags=["ingest"])

Ingest = Annotated[IngestService, Depends(get_ingest)]
ModelName = Annotated[str, Path(description="The registered model's name", max_length=200)]
_JSON = "application/json"


def _documented(body: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{body}"}}}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No model is registered under this name"},
    422: {"model": PartlyAccepted, "description": "Rows that do not fit the model, named; the rest were accepted "
          "(a body that is wrong as a whole has no accepted rows)"},
}


def _queue_full(exc: QueueFull) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc),
                         headers={"Retry-After": str(RETRY_AFTER_S)})


@router.post("/models/{name}/predictions", status_code=status.HTTP_202_ACCEPTED, response_model=PredictionsAccepted,
             responses=_RESPONSES, openapi_extra=_documented("LoggedPredictionsBody"))
async def log_predictions(name: ModelName, request: Request, ingest: Ingest, _: WriteAccess) -> Response:
    """Log predictions a model made elsewhere: ``{"rows": [{"features", "prediction", ...}]}``.

    Accepted (202) means queued for the model's stream. A row that does not
    fit the model's registered schema is named in a 422 (``detail``, with
    ``accepted_ids`` for the rows that were accepted).
    """
    schema = await ingest.schema(name)
    body = await parse_json_body(request, ingest.bodies(schema).predictions, UNION_TAGS)
    rows: list[Any] = body.rows  # type: ignore[attr-defined]
    try:
        logged = ingest.predictions(schema, rows)
    except QueueFull as exc:
        raise _queue_full(exc) from None
    if logged.errors:
        return validation_response(logged.errors, accepted=len(logged.ids), accepted_ids=logged.ids)
    return Response(orjson.dumps({"ids": logged.ids, "accepted": len(logged.ids)}), status_code=202, media_type=_JSON)


@router.post("/models/{name}/feedback", status_code=status.HTTP_202_ACCEPTED, response_model=FeedbackAccepted,
             responses=_RESPONSES, openapi_extra=_documented("LoggedFeedbackBody"))
async def log_feedback(name: ModelName, request: Request, ingest: Ingest, _: WriteAccess) -> Response:
    """Log true labels: ``{"labels": [{"id", "label", "timestamp"?, "prediction_timestamp"?, "prediction"?,
    "version"?}]}``.

    ``id`` is the prediction's id as it was logged. A Driftwatch id needs
    nothing else; any other id needs ``prediction_timestamp`` (the time the
    prediction was logged with), because the prediction's Driftwatch id is
    made from both and no mapping is stored. A label that also carries
    ``prediction`` (the predicted class) is counted without any state kept per
    prediction; a model registered with ``label_join: carried`` takes only such labels.
    """
    schema = await ingest.schema(name)
    if schema.is_regressor:
        raise validation_error(("labels",), f"model {schema.name!r} is a regressor: feedback takes class labels")
    body = await parse_json_body(request, ingest.bodies(schema).feedback, UNION_TAGS)
    rows: list[Any] = body.labels  # type: ignore[attr-defined]
    try:
        logged, sent = ingest.labels(schema, rows)
    except QueueFull as exc:
        raise _queue_full(exc) from None
    if logged.errors:
        return validation_response(logged.errors, accepted=len(logged.ids), accepted_ids=sent)
    return Response(orjson.dumps({"accepted": len(logged.ids)}), status_code=202, media_type=_JSON)
