"""The registry as the monitor's reads list it (``GET /models``, ``/models/{name}``), each version's
metadata decoded once per content, not once per request.

Why: ``GET /models`` decoded every version's whole metadata JSON (feature names, kinds and a
reference summary per feature: ~18 kB a version at 64 features) on every request, on the event
loop: ~0.9 ms a version, most of the request's time, so under a burst of concurrent reads the
requests queued behind each other's decoding until the pool's timeout answered them 503.

What may be cached: a version's metadata is *not* frozen bytes in Redis. Registering the same
model again rewrites it (``shared.registry.register_model``: a new ``created_at``, reference
summary, training figures), and a model's hash may be removed and the name+version registered
again as another model. So the cache is keyed by the stored bytes themselves: every read still
takes each model's registry hash (one HGETALL a model, one pipeline for them all, as before: the
bytes cost ~2 ms for 25 models x 70 versions, their decoding ~60 ms) and decodes only a version
whose bytes differ from those it decoded last (a byte comparison). The answer is built from the
fields read now (status, retirement, current version), so it is never staler than the read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from shared.model_metadata import ModelMetadata
from shared.registry import (
    RegisteredModel,
    assemble_model,
    metadata_json,
    read_registry_hashes,
    registry_fields,
)

DECODE_INLINE_BYTES = 64 * 1024
"""Metadata JSON longer than this is decoded in a worker thread, not on the event loop (a version
of 4,096 features is ~1 MB and took ~78 ms to decode; one of 64 features ~18 kB, ~1 ms)."""

VersionKey = tuple[str, str]  # (model, version)


async def _decode(raw: bytes) -> ModelMetadata:
    if len(raw) <= DECODE_INLINE_BYTES:
        return ModelMetadata.model_validate_json(raw)
    return await asyncio.to_thread(ModelMetadata.model_validate_json, raw)


class RegistryReader:
    """Registered models and their versions, each version's metadata decoded once per stored content.

    Concurrent reads of a version not decoded yet share one decoding (a task per version and
    content), so a burst of reads right after a start or a registration decodes it once.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._decoded: dict[VersionKey, tuple[bytes, asyncio.Task[ModelMetadata]]] = {}
        self._running: set[asyncio.Task[ModelMetadata]] = set()  # held until done, even once replaced
        self.decodes = 0
        """Metadata JSON decoded so far: once per version and content, whatever the reads (tests)."""

    async def models(self, names: Sequence[str]) -> list[RegisteredModel]:
        """The registry entries of ``names`` (one round trip), in order; names with no version are left out."""
        infos = await read_registry_hashes(self.client, names)
        models_fields = [registry_fields(info) for info in infos]
        decoding: dict[VersionKey, asyncio.Task[ModelMetadata]] = {}
        for name, fields in zip(names, models_fields, strict=True):
            for version, raw in metadata_json(fields).items():
                decoding[name, version] = self._decoding(name, version, raw)
        self._forget(names, decoding)
        waiting = [task for task in decoding.values() if not task.done()]
        if waiting:
            # Not cancelled with this request: another read may be waiting for the same decoding.
            await asyncio.wait(waiting)
        found = []
        for name, fields in zip(names, models_fields, strict=True):
            decoded = {version: decoding[name, version].result() for version in metadata_json(fields)}
            if (model := assemble_model(name, fields, decoded)) is not None:
                found.append(model)
        return found

    async def model(self, name: str) -> RegisteredModel | None:
        """One model's registry entry; None if it holds no version."""
        found = await self.models([name])
        return found[0] if found else None

    def _decoding(self, name: str, version: str, raw: bytes) -> asyncio.Task[ModelMetadata]:
        """The decoding of these bytes of the version's metadata: the one done or under way, or a new one."""
        entry = self._decoded.get((name, version))
        if entry is not None and entry[0] == raw:
            return entry[1]
        task = asyncio.create_task(_decode(raw), name=f"decode-metadata-{name}-{version}")
        self._decoded[name, version] = (raw, task)
        self.decodes += 1
        self._running.add(task)
        task.add_done_callback(lambda done: self._done(name, version, done))
        return task

    def _done(self, name: str, version: str, task: asyncio.Task[ModelMetadata]) -> None:
        """Metadata that cannot be decoded is not kept: the next read tries it again (and fails as it did)."""
        self._running.discard(task)
        if task.cancelled() or task.exception() is not None:
            entry = self._decoded.get((name, version))
            if entry is not None and entry[1] is task:
                del self._decoded[name, version]

    def _forget(self, names: Sequence[str], present: dict[VersionKey, asyncio.Task[ModelMetadata]]) -> None:
        """Drop what was decoded for versions of ``names`` that their hashes no longer hold."""
        read = set(names)
        for key in [k for k in self._decoded if k[0] in read and k not in present]:
            del self._decoded[key]
