"""Publish the serving model's metadata and reference sample to Redis.

The monitor reads both from Redis, keyed by model version, so it needs no
shared disk and picks up a new version as soon as a model service serves it.
Registration retries in the background: a model service whose Redis is down
at start-up still serves (its events wait in the publisher's queue).
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.keys import Keys
from shared.model_metadata import ModelMetadata, Reference

log = logging.getLogger(__name__)

FIELD_VERSION = "version"


def metadata_field(version: str) -> str:
    """Metadata is kept per version: windows of an older version still need theirs."""
    return f"metadata:{version}"


async def register_model(
    client: aioredis.Redis, keys: Keys, metadata: ModelMetadata, reference: Reference
) -> None:
    async with client.pipeline(transaction=True) as pipe:
        # The reference of a version never changes: write it once.
        pipe.set(keys.reference(metadata.version), reference.to_bytes(), nx=True)
        pipe.hset(
            keys.model_info,
            mapping={FIELD_VERSION: metadata.version, metadata_field(metadata.version): metadata.model_dump_json()},
        )
        await pipe.execute()


async def register_until_done(
    client: aioredis.Redis,
    keys: Keys,
    metadata: ModelMetadata,
    reference: Reference,
    max_backoff_s: float = 5.0,
) -> None:
    backoff = 0.1
    while True:
        try:
            await register_model(client, keys, metadata, reference)
            log.info("registered model %s version %s", metadata.name, metadata.version)
            return
        except (RedisError, OSError) as exc:
            log.warning("model registration failed (%s); retrying in %.1fs", exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)


async def read_current_version(client: aioredis.Redis, keys: Keys) -> str | None:
    raw = await client.hget(keys.model_info, FIELD_VERSION)
    return raw.decode() if raw is not None else None


async def read_registered_model(
    client: aioredis.Redis, keys: Keys, version: str
) -> tuple[ModelMetadata, Reference] | None:
    """A registered version's metadata and reference, or None if not registered (yet)."""
    raw = await client.hget(keys.model_info, metadata_field(version))
    if raw is None:
        return None
    metadata = ModelMetadata.model_validate_json(raw)
    blob = await client.get(keys.reference(metadata.version))
    if blob is None:
        return None
    return metadata, Reference.from_bytes(blob)
