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


class RedisProbe:
    """Readiness PINGs, coalesced: callers that ask while a PING is in flight share its answer.

    1,000 concurrent ``/readyz`` once made 1,000 PINGs at once, which took
    every pooled connection and reported ``redis: false`` while Redis was
    fine. One PING at a time answers them all, however many ask.
    """

    def __init__(self, client: aioredis.Redis, timeout_s: float = 1.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._inflight: asyncio.Task[bool] | None = None

    async def answers(self) -> bool:
        task = self._inflight
        if task is None or task.done():
            task = self._inflight = asyncio.ensure_future(redis_answers(self.client, self.timeout_s))
        # Shielded: a caller that gives up (client gone) must not cancel the others' PING.
        return await asyncio.shield(task)

