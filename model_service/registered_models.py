"""The registered models the ingest endpoints log for, read from Redis and cached briefly.

A model logged through ``POST /models/{name}/...`` or KServe is described by
its registered metadata (``driftwatch register``, or a model service's own
registration): its feature names fix the width of the events, its class names
the index a label maps to. The ingest path looks a model up on every request,
so lookups are cached:

- a known model for ``ttl_s`` (a few seconds), so a new version registered
  under the same name is used within that time;
- an unknown name for ``miss_ttl_s`` only (a second), so a model registered
  just now is seen almost at once while a client that posts to a wrong name
  does not cost a Redis round trip per request;
- an expired entry is refreshed, the request waiting at most
  ``REFRESH_WAIT_S`` for it: the first request after the TTL uses a new
  version (rows refused by the old schema would be refused for good). While
  Redis is slow or away the last known schema keeps being used, so rows are
  accepted into the publisher's spill file like ``/predict``'s, and a request
  never waits on Redis for longer than that for a model it has seen. Only a
  name never seen needs Redis (503 while it is away).
- the model this service serves itself is pinned: known without Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from model_service.stream_writes import BlockHeader
from shared.keys import Keys
from shared.model_metadata import ModelMetadata
from shared.outage_log import OutageLog
from shared.registry import metadata_field, read_current_version, read_versions

log = logging.getLogger(__name__)

# How long a request waits for an expired entry's refresh before using the entry as it is.
REFRESH_WAIT_S = 0.25
# A model name as it may appear in a key's hash tag: no braces, no whitespace, bounded.
_MODEL_NAME = re.compile(r"^[^{}\s]{1,200}$")


class UnreadableMetadata(Exception):
    """Redis holds metadata for the model that this version of Driftwatch cannot read."""


def valid_model_name(name: str) -> bool:
    """Whether ``name`` can name a model's keys (``driftwatch:{name}:...``).

    >>> valid_model_name("churn-model"), valid_model_name("a}b"), valid_model_name("")
    (True, False, False)
    """
    return bool(_MODEL_NAME.match(name))


def label_text(value: Any) -> str | None:
    """A label as it is written in ``class_names``: JSON ``true``/``false``, an integer's
    digits, a string as it is; None for what can name no class (a fraction, a list...).

    >>> [label_text(v) for v in (True, 3, 3.0, "cat", 2.5, None)]
    ['true', '3', '3', 'cat', None, None]
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class IngestSchema:
    """One registered model version as the ingest path uses it, its lookups built once."""

    metadata: ModelMetadata
    # Every registered version of the model (what a label's ``version`` may name); None: not checked
    # (the model this service serves itself, known without Redis).
    versions: frozenset[str] | None = None
    keys: Keys = field(init=False)
    # One header object per version: the publisher writes blocks with the same header together.
    header: BlockHeader = field(init=False)
    feature_index: dict[str, int] = field(init=False)
    class_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        keys = Keys(self.metadata.name)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "header", BlockHeader(keys.predictions, self.metadata.name, self.metadata.version))
        object.__setattr__(self, "feature_index", {n: i for i, n in enumerate(self.metadata.feature_names)})
        object.__setattr__(self, "class_index", {n: i for i, n in enumerate(self.metadata.class_names)})

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def version(self) -> str:
        return self.metadata.version

    @property
    def n_features(self) -> int:
        return self.metadata.n_features

    @property
    def is_regressor(self) -> bool:
        return self.metadata.task == "regression"

    @property
    def event_width(self) -> int:
        """Values in an event's ``x``: the features, and a regressor's prediction after them."""
        return self.n_features + (1 if self.is_regressor else 0)

    @property
    def probability_width(self) -> int:
        """Values in an event's ``p``: one per class, or none for a model without probabilities."""
        return self.metadata.n_classes if self.metadata.has_probabilities and not self.is_regressor else 0

    def class_of(self, label: Any) -> int | None:
        """The class index of a label as the client sent it (see :func:`label_text`), or None."""
        text = label_text(label)
        return None if text is None else self.class_index.get(text)


@dataclass(slots=True)
class _Entry:
    schema: IngestSchema | None
    expires_at: float


class RegisteredModels:
    """Registered model versions by name, from Redis, cached (see the module's docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        ttl_s: float = 5.0,
        miss_ttl_s: float = 1.0,
        pinned: Iterable[ModelMetadata] = (),
        on_new: Callable[[IngestSchema], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._miss_ttl_s = miss_ttl_s
        self._clock = clock
        self._on_new = on_new
        self._pinned = {m.name: IngestSchema(m) for m in pinned}
        self._entries: dict[str, _Entry] = {}
        self._refreshing: dict[str, asyncio.Task[IngestSchema | None]] = {}
        # Refreshes failing while Redis is away are said once, not once per model per TTL.
        self._outage = OutageLog(log, "registered models")

    async def get(self, name: str) -> IngestSchema | None:
        """The model's current version, or None if no model is registered under ``name``.

        Raises Redis' errors (a 503 for the client) only for a name not seen
        before, and :class:`UnreadableMetadata` for metadata this code cannot read.
        """
        pinned = self._pinned.get(name)
        if pinned is not None:
            return pinned
        if not valid_model_name(name):
            return None
        entry = self._entries.get(name)
        if entry is not None and (entry.expires_at > self._clock() or entry.schema is not None):
            if entry.expires_at <= self._clock():
                # Its read's done callback files the result before this await resumes. Redis errors
                # and a slow Redis leave the known entry in place (see _after_read).
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._refresh(name)), REFRESH_WAIT_S)
                entry = self._entries.get(name, entry)
            return entry.schema
        return await asyncio.shield(self._refresh(name))

    def _refresh(self, name: str) -> asyncio.Task[IngestSchema | None]:
        """One read of ``name`` at a time, whoever asks (a cold miss awaits it, a stale hit does not)."""
        task = self._refreshing.get(name)
        if task is None:
            task = asyncio.create_task(self._read(name), name=f"registered-model:{name}")
            self._refreshing[name] = task
            task.add_done_callback(lambda done: self._after_read(name, done))
        return task

    def _after_read(self, name: str, task: asyncio.Task[IngestSchema | None]) -> None:
        self._refreshing.pop(name, None)
        if task.cancelled():
            return
        error = task.exception()
        entry = self._entries.get(name)
        if error is not None:
            if entry is not None and entry.schema is not None:
                # Keep what is known; try again after another TTL rather than on every request.
                entry.expires_at = self._clock() + self._ttl_s
                if isinstance(error, RedisConnectionError | RedisTimeoutError | OSError):
                    self._outage.failed(error, f"using the versions known (model {name!r}: {entry.schema.version})")
                else:
                    log.warning("registered model %r: refresh failed (%s); using version %s",
                                name, error, entry.schema.version)
            return
        self._outage.answered()
        schema = task.result()
        known = entry.schema if entry is not None else None
        ttl = self._ttl_s if schema is not None else self._miss_ttl_s
        if schema is not None and known is not None and (schema.metadata, schema.versions) == (
            known.metadata, known.versions
        ):
            schema = known  # same version: keep its header object (blocks of it keep joining)
        self._entries[name] = _Entry(schema, self._clock() + ttl)
        if schema is not None and schema is not known and self._on_new is not None:
            with contextlib.suppress(Exception):
                self._on_new(schema)

    async def _read(self, name: str) -> IngestSchema | None:
        keys = Keys(name)
        version = await read_current_version(self._client, keys)
        if version is None:
            return None
        raw = await self._client.hget(keys.model_info, metadata_field(version))
        if raw is None:
            return None
        try:
            return IngestSchema(ModelMetadata.model_validate_json(raw), await read_versions(self._client, keys))
        except ValidationError as exc:
            raise UnreadableMetadata(
                f"model {name!r} version {version!r} is registered with metadata this service cannot read "
                f"(registered by a newer Driftwatch?): {exc.error_count()} error(s), first: {exc.errors()[0]['msg']}"
            ) from None

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)
