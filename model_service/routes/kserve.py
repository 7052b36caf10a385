"""POST /kserve and /kserve/{name}: KServe's inference logger, pointed at Driftwatch.

An InferenceService with ``spec.predictor.logger: {mode: all, url:
http://<this service>/kserve}`` sends each request and response here as a
CloudEvent; once both halves of one inference are in, its rows are logged as
predictions of the registered model named by ``/kserve/{name}``, by
``DRIFTWATCH_KSERVE_MODELS`` or by the InferenceService's own name
(``ce-inferenceservicename``). Answers 200 (KServe's logger treats any other
status as an error in its log), 422 naming what it cannot read, 404 for a
model that is not registered.

The logger never resends a half, so a Redis outage must not refuse one: while
Redis is away halves are held and paired in this process (``"held"``) and
handed to Redis when it answers (:mod:`model_service.kserve_hold`). 503 only
when that hold is full (``DRIFTWATCH_KSERVE_HOLD_MAX_BYTES``), the publish
queue is full, or the model was never seen before the outage.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError

from model_service.ingest_service import IngestService, QueueFull
from model_service.kserve_events import REQUEST_TYPE, RESPONSE_TYPE, EventError, InferenceEvent, read_event
from model_service.kserve_pairing import HoldFull, KServePairing
from model_service.kserve_payloads import PayloadError
from model_service.serving_deps import get_ingest
from shared.api_auth import KServeAccess
from shared.http import RETRY_AFTER_S, validation_response

router = APIRouter(tags=["kserve"])

Ingest = Annotated[IngestService, Depends(get_ingest)]
_JSON = "application/json"


async def get_pairing(request: Request) -> KServePairing:
    pairing: KServePairing | None = getattr(request.app.state, "kserve", None)
    if pairing is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="service starting or stopping")
    return pairing


Pairing = Annotated[KServePairing, Depends(get_pairing)]


def _header(name: str, description: str) -> Any:
    return Header(alias=name, description=description)


# Documented for clients and fuzzers; read from the request itself (structured mode has none of them).
CeId = Annotated[str | None, _header("ce-id", "The inference's id: the same on its request and its response")]
CeType = Annotated[str | None, _header("ce-type", f"{REQUEST_TYPE} or {RESPONSE_TYPE}")]
CeSource = Annotated[str | None, _header("ce-source", "Where the event comes from (set by the logger)")]
CeSpec = Annotated[str | None, _header("ce-specversion", "CloudEvents version: 1.0")]
CeTime = Annotated[str | None, _header("ce-time", "When the inference was made (RFC 3339)")]
CeService = Annotated[str | None, _header("ce-inferenceservicename", "The InferenceService's name")]

_BODY = {
    "requestBody": {
        "required": True,
        "description": "The logged inference request or response as the InferenceService got or gave it "
                       "(V1 instances/predictions or V2 inputs/outputs), or a structured-mode CloudEvent",
        "content": {
            _JSON: {"schema": {}, "examples": {
                "v1-request": {"value": {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}},
                "v1-response": {"value": {"predictions": [1, 1]}},
                "v2-request": {"value": {"inputs": [
                    {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}]}},
                "v2-response": {"value": {"outputs": [
                    {"name": "output-0", "shape": [1], "datatype": "INT64", "data": [0]}]}},
            }},
            "application/cloudevents+json": {"schema": {"type": "object"}},
        },
    }
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No model is registered under the name the event maps to"},
    422: {"description": "Not a KServe inference-logger CloudEvent, or a body that does not fit the model"},
}


def model_name(event: InferenceEvent, path_name: str | None, mapping: dict[str, str]) -> str:
    """The registered model an event belongs to: the path's name, the configured mapping
    (``namespace/service`` before ``service``), else the InferenceService's own name."""
    if path_name:
        return path_name
    service = event.service
    if service is None:
        raise EventError(("header", "ce-inferenceservicename"),
                         "required to find the model (or post to /kserve/{name})")
    return mapping.get(f"{event.namespace}/{service}") or mapping.get(service) or service


async def _accept(request: Request, path_name: str | None, ingest: IngestService, pairing: KServePairing) -> Response:
    body = await request.body()
    try:
        event = read_event(request.headers, body)
        name = model_name(event, path_name, request.app.state.settings.kserve_models)
    except EventError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": exc.loc, "msg": exc.msg, "input": None}]) from None
    schema = await ingest.schema(name)
    try:
        outcome = await pairing.accept(event, schema)
    except PayloadError as exc:
        return validation_response([{"type": "value_error", "loc": exc.loc, "msg": exc.msg}])
    except (QueueFull, HoldFull) as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc),
                            headers={"Retry-After": str(RETRY_AFTER_S)}) from None
    return Response(orjson.dumps(outcome.as_json()), media_type=_JSON)


@router.post("/kserve", openapi_extra=_BODY, responses=_RESPONSES)
async def kserve(
    request: Request, ingest: Ingest, pairing: Pairing, _: KServeAccess,
    ce_id: CeId = None, ce_type: CeType = None, ce_source: CeSource = None, ce_specversion: CeSpec = None,
    ce_time: CeTime = None, ce_inferenceservicename: CeService = None,
) -> Response:
    """One half (request or response) of an inference KServe's logger recorded.

    The model is the InferenceService's name (``ce-inferenceservicename``),
    or what ``DRIFTWATCH_KSERVE_MODELS`` maps it to. Answers
    ``{"status": "waiting" | "held" | "duplicate" | "paired", "published": n, "rejected": n}``
    (``held``: waiting in this process while Redis is away).
    """
    return await _accept(request, None, ingest, pairing)


@router.post("/kserve/{name}", openapi_extra=_BODY, responses=_RESPONSES)
async def kserve_for_model(
    name: Annotated[str, Path(description="The registered model these events belong to", max_length=200)],
    request: Request, ingest: Ingest, pairing: Pairing, _: KServeAccess,
    ce_id: CeId = None, ce_type: CeType = None, ce_source: CeSource = None, ce_specversion: CeSpec = None,
    ce_time: CeTime = None, ce_inferenceservicename: CeService = None,
) -> Response:
    """As ``/kserve``, for the registered model ``name`` whatever the InferenceService is called."""
    return await _accept(request, name, ingest, pairing)
