from __future__ import annotations

from fastapi import APIRouter, Request, status

from model_service.schemas import FeedbackAccepted, FeedbackRequest
from model_service.serving_deps import Service
from shared.api_auth import WriteAccess
from shared.http import parse_json_body, validation_error

router = APIRouter(tags=["feedback"])


@router.post(
    "/feedback",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=FeedbackAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackRequest"}}},
        }
    },
)
async def feedback(request: Request, service: Service, _: WriteAccess) -> FeedbackAccepted:
    """The true label of an earlier prediction, whenever it becomes known.

    Accepted (202) means queued for the monitor, which joins it to its
    prediction in whichever order the two arrive.
    """
    body = await parse_json_body(request, FeedbackRequest)
    label = service.label_index(body.label)
    if label is None:
        raise validation_error(
            ("label",), f"unknown label; expected 0..{service.metadata.n_classes - 1} or a class name", body.label
        )
    service.record_feedback(body.prediction_id, label)
    return FeedbackAccepted(prediction_id=body.prediction_id)
