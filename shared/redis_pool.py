"""The Redis client each service process uses, on a bounded, blocking connection pool.

redis-py's default asyncio pool fails at once (``MaxConnectionsError``) when
its connections are all busy: 200 concurrent ``GET /performance`` gave 58
500s. A ``BlockingConnectionPool`` sized from the settings makes a request
wait for a free connection instead, up to ``DRIFTWATCH_REDIS_POOL_TIMEOUT_S``;
past that the request gets 503 with ``Retry-After`` (shared/http.py), as it
does when Redis is down. Bounding the pool also bounds what one process can
open on Redis (``maxclients`` is shared by every replica).

A Redis Cluster URL (shared/redis_connection.py) gets the cluster client,
whose per-node pools are bounded by the same ``max_connections``.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.redis_connection import connect, is_cluster_url
from shared.settings_base import RedisSettings


def redis_client(settings: RedisSettings, *, socket_timeout_s: float) -> aioredis.Redis:
    """A client that owns its pool (``aclose`` closes both).

    ``socket_timeout_s`` bounds one command's round trip; a process whose
    commands block on purpose (the monitor's XREADGROUP) passes one longer
    than its block time.
    """
    options = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": 2.0}
    if is_cluster_url(settings.redis_url):
        return connect(settings.redis_url, max_connections=settings.redis_max_connections, **options)
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_s,
        health_check_interval=10,
        **options,
    )
    return aioredis.Redis.from_pool(pool)
