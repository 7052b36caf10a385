from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from model_service.deps import Service
from model_service.schemas import ModelInfo, Readiness
from model_service.service import ModelService

router = APIRouter(tags=["health"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers; says nothing about Redis or the model."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request, response: Response) -> Readiness:
    """Ready when the model is loaded and Redis answers."""
    service: ModelService | None = getattr(request.app.state, "service", None)
    redis_ok = service is not None and await service.redis_ok()
    stats = service.publisher.stats if service else None
    readiness = Readiness(
        ready=service is not None and redis_ok,
        model_loaded=service is not None,
        redis=redis_ok,
        events_queued=service.publisher.queued if service else 0,
        events_published=stats.published if stats else 0,
        events_dropped=stats.dropped if stats else 0,
    )
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


@router.get("/model", response_model=ModelInfo, tags=["model"])
async def model_info(service: Service) -> ModelInfo:
    meta = service.metadata
    return ModelInfo(
        name=meta.name,
        version=meta.version,
        feature_names=meta.feature_names,
        class_names=meta.class_names,
        test_accuracy=meta.training.test_accuracy,
    )
