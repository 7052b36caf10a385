"""Publish the serving model's metadata and reference sample to Redis.

The monitor reads both from Redis, keyed by model version, so it needs no
shared disk and picks up a new version as soon as a model service serves it.
Registration retries in the background: a model service whose Redis is down
at start-up still serves (its events wait in the publisher's queue).

A name+version never changes meaning once registered: registering one whose
feature names, class names or training-data hash differ from what Redis
holds raises :class:`ModelIdentityConflict` (checked and written in one
``WATCH`` transaction), because the windows and reference already stored
under that version would be tested against a model they do not fit. The
same model registered again (a restart, a second replica) is fine.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from shared.keys import MODELS_INDEX, Keys
from shared.model_metadata import ModelMetadata, Reference

log = logging.getLogger(__name__)

FIELD_VERSION = "version"


def metadata_field(version: str) -> str:
    """Metadata is kept per version: windows of an older version still need theirs."""
    return f"metadata:{version}"


class ModelIdentityConflict(Exception):
    """A name+version already registered in Redis as a different model."""

    def __init__(self, registered: ModelMetadata, offered: ModelMetadata) -> None:
        self.registered = registered
        self.offered = offered
        super().__init__(
            f"model {offered.name!r} version {offered.version!r} is already registered in Redis as a "
            f"different model: Redis holds {_identity(registered)}; this model has {_identity(offered)}. "
            "A name+version never changes meaning: train or register this model under another "
            "--version (or --name), or point it at another Redis."
        )


def _identity(metadata: ModelMetadata) -> str:
    names = metadata.feature_names
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    kind = "regressor" if metadata.task == "regression" else f"{metadata.label_kind} labels"
    if not metadata.has_probabilities:
        kind += " without probabilities"
    return (
        f"{len(names)} features ({shown}), {kind}, classes {metadata.class_names[:10]}"
        f"{'...' if len(metadata.class_names) > 10 else ''}, data sha256 {metadata.data.sha256[:12]}"
        f" (source {metadata.data.source})"
    )


def _identity_of(m: ModelMetadata) -> tuple[object, ...]:
    return (m.feature_names, m.class_names, m.task, m.label_kind, m.has_probabilities, m.data.sha256)


def same_model(a: ModelMetadata, b: ModelMetadata) -> bool:
    """What makes a name+version mean one model: its inputs, outputs and training (or reference) data."""
    return _identity_of(a) == _identity_of(b)


async def register_model(
    client: aioredis.Redis, keys: Keys, metadata: ModelMetadata, reference: Reference
) -> None:
    """Register (or re-register) a version; raises :class:`ModelIdentityConflict`.

    The model's name joins :data:`shared.keys.MODELS_INDEX` (how a monitor
    discovers models) after the version is written, in its own command: the
    index and the model's keys live in different cluster slots. A name is
    therefore never listed before its metadata can be read.
    """
    field = metadata_field(metadata.version)
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.model_info)
                raw = await pipe.hget(keys.model_info, field)
                if raw is not None:
                    registered = ModelMetadata.model_validate_json(raw)
                    if not same_model(registered, metadata):
                        raise ModelIdentityConflict(registered, metadata)
                pipe.multi()
                # The reference of a version never changes: write it once.
                pipe.set(keys.reference(metadata.version), reference.to_bytes(), nx=True)
                pipe.hset(keys.model_info, mapping={FIELD_VERSION: metadata.version, field: metadata.model_dump_json()})
                await pipe.execute()
                break
            except WatchError:  # another replica registered meanwhile: check again
                continue
    await client.sadd(MODELS_INDEX, metadata.name)


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
        except ModelIdentityConflict:
            raise
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
