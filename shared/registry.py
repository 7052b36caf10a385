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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError, WatchError

from shared.keys import MODELS_INDEX, Keys
from shared.model_metadata import ModelMetadata, Reference
from shared.startup import StartupRefused

log = logging.getLogger(__name__)

FIELD_VERSION = "version"


def metadata_field(version: str) -> str:
    """Metadata is kept per version: windows of an older version still need theirs."""
    return f"metadata:{version}"


STATUS_ACTIVE, STATUS_RETIRED = "active", "retired"


def status_field(version: str) -> str:
    """``active`` or ``retired``; absent for versions registered before retirement existed (active)."""
    return f"status:{version}"


def retired_field(version: str) -> str:
    """When a version was retired, in epoch seconds: stored so, as always (a replica not upgraded
    yet reads it); read as a UTC datetime (:func:`retired_time`), which the API shows as RFC 3339."""
    return f"retired-at:{version}"


def retired_time(raw: bytes | str) -> datetime:
    """A ``retired-at`` field as an aware UTC datetime.

    >>> retired_time(b"1764633600").isoformat()
    '2025-12-02T00:00:00+00:00'
    """
    return datetime.fromtimestamp(int(raw), UTC)


class ModelIdentityConflict(StartupRefused):
    """A name+version already registered in Redis as a different model (a model service
    serving it refuses to start: :class:`StartupRefused`, logged as its message alone)."""

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
) -> bool:
    """Register (or re-register) a version; True if it was new. Raises :class:`ModelIdentityConflict`.

    Registering a retired version again (the same model) makes it active
    again, and its reference no longer expires.

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
                pipe.persist(keys.reference(metadata.version))
                pipe.hset(keys.model_info, mapping={
                    FIELD_VERSION: metadata.version, field: metadata.model_dump_json(),
                    status_field(metadata.version): STATUS_ACTIVE,
                })
                pipe.hdel(keys.model_info, retired_field(metadata.version))
                await pipe.execute()
                break
            except WatchError:  # another replica registered meanwhile: check again
                continue
    await client.sadd(MODELS_INDEX, metadata.name)
    return raw is None


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


async def read_versions(client: aioredis.Redis, keys: Keys) -> frozenset[str]:
    """Every version registered under the model, retired ones included (their metadata stays)."""
    prefix = metadata_field("")
    fields = await client.hkeys(keys.model_info)
    return frozenset(t[len(prefix):] for f in fields if (t := f.decode()).startswith(prefix))


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


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    metadata: ModelMetadata
    status: str
    retired_at: datetime | None = None

    @property
    def version(self) -> str:
        return self.metadata.version


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    name: str
    current_version: str | None
    versions: list[RegisteredVersion]  # oldest registration first

    @property
    def status(self) -> str:
        """Active while any version is."""
        return STATUS_ACTIVE if any(v.status == STATUS_ACTIVE for v in self.versions) else STATUS_RETIRED


def registry_fields(info: Mapping[bytes, bytes]) -> dict[str, bytes]:
    """A model's registry hash (HGETALL's reply) with its field names as text."""
    return {k.decode(): v for k, v in info.items()}


def metadata_json(fields: Mapping[str, bytes]) -> dict[str, bytes]:
    """Each version's metadata JSON in a model's registry hash, by the version its field names."""
    prefix = metadata_field("")
    return {key[len(prefix):]: raw for key, raw in fields.items() if key.startswith(prefix)}


def assemble_model(
    name: str, fields: Mapping[str, bytes], metadata: Mapping[str, ModelMetadata]
) -> RegisteredModel | None:
    """A model from its registry hash (:func:`registry_fields`) and its versions' decoded metadata
    (``metadata``, by :func:`metadata_json`'s keys); None if it holds no version.

    Kept apart from the decoding so that a reader may decode each version's metadata once (the
    monitor's :mod:`monitor.registry_reads`) and still build every answer from the fields read now.
    """
    versions = []
    for decoded in metadata.values():
        status = fields.get(status_field(decoded.version), STATUS_ACTIVE.encode()).decode()
        retired = fields.get(retired_field(decoded.version))
        versions.append(RegisteredVersion(decoded, status, retired_time(retired) if retired is not None else None))
    if not versions:
        return None
    versions.sort(key=lambda v: (v.metadata.created_at, v.version))
    current = fields.get(FIELD_VERSION)
    return RegisteredModel(name, current.decode() if current is not None else None, versions)


def _registered_model(name: str, info: dict[bytes, bytes]) -> RegisteredModel | None:
    """A model's registry hash, decoded; None if it holds no version."""
    fields = registry_fields(info)
    decoded = {v: ModelMetadata.model_validate_json(raw) for v, raw in metadata_json(fields).items()}
    return assemble_model(name, fields, decoded)


async def model_names(client: aioredis.Redis) -> list[str]:
    """Every registered model's name, sorted."""
    return sorted(n.decode() for n in await client.smembers(MODELS_INDEX))


async def active_models(client: aioredis.Redis, names: Sequence[str]) -> set[str]:
    """Those of ``names`` with a version not retired (one round trip, field names only).

    A version is retired exactly when its ``retired-at`` field exists (set by
    :func:`retire_version`, removed by :func:`register_model`); a name whose
    hash holds no version at all was removed.
    """
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hkeys(Keys(name).model_info)
        replies = await pipe.execute()
    active = set()
    for name, raw in zip(names, replies, strict=True):
        fields = {f.decode() if isinstance(f, bytes) else f for f in raw}
        versions = {f.removeprefix("metadata:") for f in fields if f.startswith("metadata:")}
        if any(retired_field(v) not in fields for v in versions):
            active.add(name)
    return active


async def read_registry_hashes(client: aioredis.Redis, names: Sequence[str]) -> list[dict[bytes, bytes]]:
    """The registry hash of each of ``names`` (one round trip, one HGETALL a model), undecoded."""
    async with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(Keys(name).model_info)
        infos: list[dict[bytes, bytes]] = await pipe.execute()
    return infos


async def read_models(client: aioredis.Redis, names: list[str]) -> list[RegisteredModel]:
    """The registry entries of ``names`` (one round trip); names with no version are left out."""
    infos = await read_registry_hashes(client, names)
    return [m for name, info in zip(names, infos, strict=True) if (m := _registered_model(name, info)) is not None]


async def read_model(client: aioredis.Redis, name: str) -> RegisteredModel | None:
    return _registered_model(name, await client.hgetall(Keys(name).model_info))


async def retire_version(
    client: aioredis.Redis, keys: Keys, version: str, retention_s: int, now_s: int, data_keys: Sequence[str] = ()
) -> RegisteredModel | None:
    """Mark a version retired and let its data expire after ``retention_s``; None if it is not registered.

    Its metadata stays (a small hash field, kept for good): a name+version
    never changes meaning, so the identity check must still refuse another
    model under a retired version. What expires is its data: the reference
    sample, its production reference, every key of its window series
    (``driftwatch:{model}:v:<version>:*``, found with SCAN once the version is
    marked) and ``data_keys``. If it was the current version, the newest
    still-active version becomes current. Retiring again changes nothing (the
    first retirement's clock runs on). Keys that the version's traffic creates
    after it was retired do not expire: retire a version once its traffic stopped.
    """
    async with client.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(keys.model_info)
                model = _registered_model(keys.model, await pipe.hgetall(keys.model_info))
                entry = next((v for v in model.versions if v.version == version), None) if model else None
                if model is None or entry is None:
                    return None
                if entry.status == STATUS_RETIRED:
                    return model
                pipe.multi()
                pipe.hset(keys.model_info, mapping={status_field(version): STATUS_RETIRED,
                                                    retired_field(version): str(now_s)})
                active = [v.version for v in model.versions if v.status == STATUS_ACTIVE and v.version != version]
                if model.current_version == version and active:
                    pipe.hset(keys.model_info, FIELD_VERSION, active[-1])
                for key in (keys.reference(version), keys.production_reference(version), *data_keys):
                    pipe.expire(key, retention_s)
                await pipe.execute()
                break
            except WatchError:
                continue
    await _expire_matching(client, glob_escape(Keys(keys.model, version).series_prefix) + ":*", retention_s)
    return await read_model(client, keys.model)


def glob_escape(text: str) -> str:
    r"""``text`` matched literally by a SCAN pattern.

    >>> print(glob_escape("driftwatch:{m[1]}:v:*"))
    driftwatch:{m\[1\]}:v:\*
    """
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def _expire_matching(client: aioredis.Redis, pattern: str, seconds: int, batch: int = 500) -> None:
    """EXPIRE every key matching ``pattern`` (SCAN, then pipelines of ``batch``)."""
    found: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=batch):
        found.append(key)
        if len(found) >= batch:
            await _expire_all(client, found, seconds)
            found = []
    await _expire_all(client, found, seconds)


async def _expire_all(client: aioredis.Redis, keys: list[bytes], seconds: int) -> None:
    if keys:
        async with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.expire(key, seconds)
            await pipe.execute()
