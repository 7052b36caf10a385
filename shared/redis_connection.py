"""Redis clients from a URL: a single server, or a Redis Cluster.

``redis://`` / ``rediss://`` / ``unix://`` give a client for one server.
``redis+cluster://host:port`` (or ``rediss+cluster://``) gives a Redis Cluster
client that discovers the other nodes from the one named. Everything
Driftwatch does on Redis works on both: every key of a model carries the
model's hash tag, and every Lua script receives its keys in ``KEYS``.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

CLUSTER_SUFFIX = "+cluster"


def is_cluster_url(url: str) -> bool:
    return url.partition("://")[0].endswith(CLUSTER_SUFFIX)


def single_node_url(url: str) -> str:
    """``redis+cluster://h:p/0`` -> ``redis://h:p`` (a cluster has only database 0)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.removesuffix(CLUSTER_SUFFIX)}://{rest.split('/', 1)[0]}"


def connect(url: str, **options: Any) -> aioredis.Redis:
    """A client for ``url``; the options are redis-py's connection options."""
    if is_cluster_url(url):
        client: Any = RedisCluster.from_url(single_node_url(url), **options)
        return client  # the same command API; typed as Redis for the callers
    return aioredis.Redis.from_url(url, **options)
