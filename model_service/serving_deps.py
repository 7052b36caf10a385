"""What routes need from the app, as Annotated dependencies.

The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency in
its thread pool, which cost ~390 us per request here. ``serving`` is the same
lookup for routes that take the Request directly (``/predict``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from model_service.serving import ModelService
from model_service.serving_settings import ModelServiceSettings


def serving(request: Request) -> ModelService:
    """The loaded model service, or 503 while the model loads."""
    service: ModelService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="model not loaded yet")
    return service


async def get_service(request: Request) -> ModelService:
    return serving(request)


async def get_settings(request: Request) -> ModelServiceSettings:
    settings: ModelServiceSettings = request.app.state.settings
    return settings


Service = Annotated[ModelService, Depends(get_service)]
Settings = Annotated[ModelServiceSettings, Depends(get_settings)]
