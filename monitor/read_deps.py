"""Annotated dependencies of the monitor's routes."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request

from monitor.worker import MonitorWorker
from shared.settings import MonitorSettings


async def get_worker(request: Request) -> MonitorWorker:
    worker: MonitorWorker = request.app.state.worker
    return worker


async def get_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.redis
    return client


async def get_settings(request: Request) -> MonitorSettings:
    settings: MonitorSettings = request.app.state.settings
    return settings


Worker = Annotated[MonitorWorker, Depends(get_worker)]
Redis = Annotated[aioredis.Redis, Depends(get_redis)]
Settings = Annotated[MonitorSettings, Depends(get_settings)]
