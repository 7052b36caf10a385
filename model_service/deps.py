"""Annotated dependencies the routes declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from model_service.service import ModelService
from model_service.settings_holder import service_settings
from shared.settings import ModelServiceSettings


def get_service(request: Request) -> ModelService:
    service: ModelService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail="model not loaded yet")
    return service


Service = Annotated[ModelService, Depends(get_service)]
Settings = Annotated[ModelServiceSettings, Depends(service_settings)]
