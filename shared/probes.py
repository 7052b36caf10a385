"""Is Redis up? The readiness check both services make."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from redis.exceptions import RedisError


async def redis_answers(client: aioredis.Redis, timeout_s: float = 0.5) -> bool:
    """PING within ``timeout_s``; any failure is "no", never an exception (readiness probes)."""
    try:
        return bool(await asyncio.wait_for(client.ping(), timeout_s))
    except (TimeoutError, OSError, RedisError):
        return False
