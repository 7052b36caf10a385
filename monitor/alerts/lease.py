"""A leader lease in Redis: one monitor replica at a time sends notifications.

``SET key me NX PX ttl`` takes the lease when nobody holds it; the holder
renews it with a compare-and-expire script well before it runs out; a crashed
holder's lease expires and another replica takes over within one TTL. Renewal
and release compare the value, so a replica never extends or deletes a lease
that meanwhile went to someone else.
"""

from __future__ import annotations

import os
import socket
import uuid

import redis.asyncio as aioredis

from shared.redis_scripts import register_script


def replica_id() -> str:
    """Unique per process start, so a restarted replica never mistakes an old lease for its own."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class LeaderLease:
    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: float, owner: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.owner = owner or replica_id()
        self._renew = register_script(redis, "monitor.alerts", "renew_lease.lua")
        self._release = register_script(redis, "monitor.alerts", "release_lease.lua")

    async def acquire_or_renew(self) -> bool:
        """True while this replica holds the lease (taking it if free)."""
        renewed = await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms])
        if renewed:
            return True
        return bool(await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.owner])
