"""What routes need from the app, as Annotated dependencies.

The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in
its thread pool, which cost ~390 us per request here. ``serving`` is the same
lookup for routes that take the Request directly (``/predict``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from model_service.ingest_service import IngestService
from model_service.serving import ModelService
from model_service.serving_settings import ModelServiceSettings

INGEST_ONLY = (
    "this model service runs without a model of its own (--ingest-only, or no --model-dir): "
    "nothing to predict; log your model's predictions with POST /models/{name}/predictions"
)


def serving(request: Request) -> ModelService:
    """The loaded model service; 404 when there is none to load (ingest only), 503 while it loads."""
    service: ModelService | None = getattr(request.app.state, "service", None)
    if service is None:
        if getattr(request.app.state, "ingest_only", False):
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=INGEST_ONLY)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="model not loaded yet")
    return service


async def get_ingest(request: Request) -> IngestService:
    """The ingest path (other models' events), or 503 while the service starts or stops."""
    ingest: IngestService | None = getattr(request.app.state, "ingest", None)
    if ingest is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="service starting or stopping")
    return ingest


async def get_service(request: Request) -> ModelService:
    return serving(request)


async def get_settings(request: Request) -> ModelServiceSettings:
    settings: ModelServiceSettings = request.app.state.settings
    return settings


Service = Annotated[ModelService, Depends(get_service)]
Settings = Annotated[ModelServiceSettings, Depends(get_settings)]
