from __future__ import annotations

from fastapi import APIRouter, Request, status

from model_service.schemas import LABEL_TAGS, FeedbackAccepted
from model_service.serving_deps import Service
from shared.api_auth import WriteAccess
from shared.http import parse_json_body

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
    prediction in whichever order the two arrive. The label is one of the
    served model's class indices or names (422 otherwise).
    """
    body = await parse_json_body(request, service.feedback_model, LABEL_TAGS)
    label = service.label_index(body.label)
    assert label is not None  # the served model's feedback_model admits its labels only
    service.record_feedback(body.prediction_id, label)
    return FeedbackAccepted(prediction_id=body.prediction_id)
