"""The settings an app was created with, as a dependency."""

from __future__ import annotations

from fastapi import Request

from shared.settings import ModelServiceSettings


def service_settings(request: Request) -> ModelServiceSettings:
    settings: ModelServiceSettings = request.app.state.settings
    return settings
