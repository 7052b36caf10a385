from __future__ import annotations

import orjson
from fastapi import APIRouter, Request, Response

from model_service.deps import get_service
from model_service.features import request_matrix
from model_service.schemas import UNION_TAGS, BatchPrediction, Prediction, PredictRequest
from shared.http import parse_json_body

router = APIRouter(tags=["predict"])

_JSON = "application/json"


@router.post(
    "/predict",
    response_model=Prediction | BatchPrediction,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
        }
    },
    responses={422: {"description": "Malformed sample: the `loc` names the field at fault"}},
)
async def predict(request: Request) -> Response:
    """Predict one sample (``features``) or a batch (``instances``).

    Every prediction is queued for the Redis stream; the answer never waits for Redis.
    """
    service = get_service(request)
    body = await parse_json_body(request, PredictRequest, UNION_TAGS)
    matrix = request_matrix(body, service, request.app.state.settings.max_batch_rows)
    result = service.predict(matrix)
    version = service.metadata.version
    names = service.metadata.class_names
    items = [
        {
            "prediction_id": pid,
            "class": int(cls),
            "class_name": names[cls],
            "probabilities": probs,
            "model_version": version,
        }
        for pid, cls, probs in zip(result.ids, result.classes.tolist(), result.probabilities.tolist(), strict=True)
    ]
    payload = items[0] if body.features is not None else {"predictions": items, "model_version": version}
    return Response(orjson.dumps(payload), media_type=_JSON)
