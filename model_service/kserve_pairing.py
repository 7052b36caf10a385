"""One prediction event per logged KServe inference, from its request and response halves.

The logger sends the request and the response separately, in either order,
possibly to different replicas of this service. Each half is read at once
(a body that cannot be read is a 422 for that half), reduced to arrays and
handed to ``kserve_pair.lua``, which keeps the first half of a pair in Redis
(``Keys.kserve_pending``, with a TTL: a response that never comes, or
``logger.mode: request``, leaves nothing behind) and gives it to whoever
brings the second, deleting it in the same step. So exactly one caller, on
any replica, holds both halves, and it queues the events through the ingest
path's publisher (spill, exactly-once writes). While Redis is away the same
happens in this process (:mod:`model_service.kserve_hold`), and held halves
go to the script when Redis answers again.

Ids: row ``i`` of a request whose ``ce-id`` is ``X`` is known as ``X`` (one
row) or ``X/i`` (several), mapped to a Driftwatch id with the request's
``ce-time`` (``shared.ids.internal_prediction_id``). Feedback for it is
``{"id": "X", "prediction_timestamp": <ce-time>}`` on ``/models/{name}/feedback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from model_service.ingest_rows import LoggedPredictions, now_ms
from model_service.ingest_service import IngestService, QueueFull
from model_service.kserve_events import InferenceEvent
from model_service.kserve_hold import HeldHalf, HeldHalves, as_entries, from_entries
from model_service.kserve_payloads import PayloadError, request_features, response_outputs
from model_service.registered_models import IngestSchema
from model_service.schemas import MAX_FEATURE_ABS
from model_service.spill import SpillCorruptError, SpillFile, encode_batch
from shared.ids import MAX_EVENT_MS, internal_prediction_id
from shared.log_context import bound_model
from shared.redis_scripts import register_script

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PairOutcome:
    # "waiting" (first half stored), "held" (in this process: Redis is away),
    # "duplicate" (this half was there), "paired"
    status: str
    published: int = 0
    rejected: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "published": self.published, "rejected": self.rejected}


class PairMismatch(PayloadError):
    """The two halves do not describe the same rows (the second half's sender gets a 422)."""


def pair_key(event: InferenceEvent) -> str:
    """What both halves of one logged inference share, hashed to a bounded key part.

    The component is part of it: a transformer and its predictor may both
    log with the same ``ce-id``.
    """
    raw = "\0".join((event.namespace, event.service or "", event.component, event.id)).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def _at_most(n: int, max_rows: int) -> None:
    """A half of more rows than one ingest batch takes is refused before it is stored.

    A 4 MB body holds ~400,000 one-feature rows: more than the publish queue
    (``DRIFTWATCH_PUBLISH_QUEUE_MAX``) ever holds, so its pair was accepted in part
    and answered 503, and the logger, which never resends, lost the rest.
    """
    if n > max_rows:
        raise PayloadError((), f"{n} rows: one logged inference takes at most {max_rows} (DRIFTWATCH_MAX_BATCH_ROWS)")


def _encode_half(event: InferenceEvent, schema: IngestSchema, received_ms: int, max_rows: int) -> bytes:
    """A half as its arrays (MessagePack): features, or classes/probabilities/values, and its time."""
    at = event.time_ms if event.time_ms is not None else received_ms
    if event.is_request:
        x = request_features(event.data, schema)
        _at_most(len(x), max_rows)
        return msgpack.packb({"t": at, "n": len(x), "x": x.astype(np.float64).tobytes()})
    out = response_outputs(event.data, schema)
    _at_most(len(out), max_rows)
    half: dict[str, Any] = {"t": at, "n": len(out), "y": out.classes.tobytes(), "k": out.probabilities.shape[1],
                            "p": out.probabilities.tobytes()}
    if out.values is not None:
        half["r"] = out.values.tobytes()
    return msgpack.packb(half)


@dataclass(frozen=True, slots=True)
class _Pair:
    time_ms: int
    features: npt.NDArray[np.float64]
    classes: npt.NDArray[np.int64]
    probabilities: npt.NDArray[np.float32]
    values: npt.NDArray[np.float64] | None


def _decode_pair(request: Mapping[str, Any], response: Mapping[str, Any], schema: IngestSchema) -> _Pair:
    n = int(request["n"])
    if int(response["n"]) != n:
        raise PairMismatch((), f"the request logged {n} rows and its response {int(response['n'])}")
    features = np.frombuffer(request["x"], dtype=np.float64)
    k = int(response["k"])
    if features.size != n * schema.n_features or k != schema.probability_width:
        # A version with other widths was registered between the two halves.
        raise PairMismatch((), f"the halves no longer fit model {schema.name!r} version {schema.version}")
    values = np.frombuffer(response["r"], dtype=np.float64) if "r" in response else None
    if schema.is_regressor and values is None:
        raise PairMismatch((), f"model {schema.name!r} is a regressor; the response held classes")
    return _Pair(
        int(request["t"]), features.reshape(n, schema.n_features), np.frombuffer(response["y"], dtype=np.int64),
        np.frombuffer(response["p"], dtype=np.float32).reshape(n, k), values,
    )  # fmt: skip


def _logged(event_id: str, pair: _Pair, schema: IngestSchema) -> LoggedPredictions:
    """The pair's rows as events; rows with values beyond ``MAX_FEATURE_ABS`` are left out."""
    matrix = pair.features if pair.values is None else np.column_stack([pair.features, pair.values])
    keep = ~(np.abs(np.nan_to_num(matrix, nan=0.0)) > MAX_FEATURE_ABS).any(axis=1)
    n = len(matrix)
    external = [event_id] if n == 1 else [f"{event_id}/{i}" for i in range(n)]
    at = min(max(pair.time_ms, 0), MAX_EVENT_MS)
    kept = np.flatnonzero(keep).tolist()
    features = matrix[keep].astype(np.float32)
    missing = np.isnan(features[:, : schema.n_features]).sum(axis=0)
    return LoggedPredictions(
        index=kept,
        ids=[internal_prediction_id(external[i], at) for i in kept],
        timestamps_ms=np.full(len(kept), at, dtype=np.int64),
        features=features,
        classes=pair.classes[keep],
        probabilities=pair.probabilities[keep],
        missing={schema.metadata.feature_names[j]: int(c) for j, c in enumerate(missing.tolist()) if c},
        errors=[],
    )


class HoldFull(Exception):
    """Redis is away and the halves held in memory fill ``max_bytes`` (the caller answers 503)."""


_AWAY = (RedisConnectionError, RedisTimeoutError, OSError)


class KServePairing:
    """Pairs halves in Redis; while Redis is away, in this process (:mod:`model_service.kserve_hold`)."""

    def __init__(
        self, client: aioredis.Redis, ingest: IngestService, *, ttl_s: float, hold_max_bytes: int = 64 << 20,
        store: SpillFile | None = None, left: Sequence[SpillFile] = (),
        backoff_initial_s: float = 0.05, backoff_max_s: float = 2.0,
    ) -> None:
        """``store``: where halves still held at shutdown go; ``left``: such files of earlier
        (or dead) processes, read back by :meth:`start`."""
        self._client = client
        self._store = store
        self._left = [*left, *([store] if store else [])]
        self._ingest = ingest
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._pair = register_script(client, "model_service", "kserve_pair.lua")
        self._held = HeldHalves(hold_max_bytes)
        self._away = False  # the last call to Redis failed: hold halves until the flusher gets through
        self._flusher: asyncio.Task[None] | None = None
        self._backoff = (backoff_initial_s, backoff_max_s)
        self.last_error: str | None = None
        self.stats = {"waiting": 0, "duplicate": 0, "paired": 0, "held": 0, "flushed": 0, "hold_full": 0}

    def start(self) -> None:
        """Take back the halves an earlier run held at its shutdown; they go to Redis once it answers."""
        loaded = 0
        for spill in self._left:
            try:
                halves = from_entries(spill.read_all())
            except (SpillCorruptError, ValueError):
                log.exception("kserve: unreadable held halves in %s", spill.path)
                halves = []
            for half in halves:
                with contextlib.suppress(HoldFull, PayloadError):
                    self._hold(half)
                    loaded += 1
            spill.clear()
            if spill is not self._store:
                spill.close(remove_if_empty=True)
        if loaded:
            log.warning("kserve: %d halves held by an earlier run; handing them to Redis", loaded)
            self._redis_away(ConnectionError("halves held by an earlier run"))

    @property
    def held(self) -> int:
        """Halves waiting in this process for Redis (or for their other half)."""
        return len(self._held)

    @property
    def held_bytes(self) -> int:
        return self._held.bytes

    async def accept(self, event: InferenceEvent, schema: IngestSchema) -> PairOutcome:
        """Read this half (``PayloadError`` if it cannot be), pair it, publish when both are in.

        Raises :class:`HoldFull` when Redis is away and there is no room to hold it.
        """
        half = HeldHalf(schema.keys.kserve_pending(pair_key(event)), event.kind,
                        _encode_half(event, schema, now_ms(), self._ingest.max_rows), event.id, schema)
        if not self._away:
            try:
                answer = await self._pair(keys=[half.key], args=[half.kind, half.half, self._ttl_ms])
            except _AWAY as exc:
                self._redis_away(exc)
            else:
                return self._settle(half, answer)
        return self._hold(half)

    def _settle(self, half: HeldHalf, answer: int | bytes) -> PairOutcome:
        """What the pairing script answered for ``half``: it waits, it was there, or its pair is complete."""
        if isinstance(answer, int):
            status = "waiting" if answer == 0 else "duplicate"
            self.stats[status] += 1
            return PairOutcome(status)
        return self._publish(half, msgpack.unpackb(answer[1:]))

    def _publish(self, half: HeldHalf, other: Mapping[str, Any]) -> PairOutcome:
        mine = msgpack.unpackb(half.half)
        request, response = (mine, other) if half.kind == "q" else (other, mine)
        schema = half.schema
        try:
            pair = _decode_pair(request, response, schema)
        except PairMismatch:
            self._ingest.publish_predictions(schema, _nothing(schema), source="kserve", rejected=int(request["n"]))
            raise
        logged = _logged(half.event_id, pair, schema)
        rejected = len(pair.features) - len(logged.ids)
        if rejected:
            with bound_model(schema.name, schema.version):
                log.warning("kserve %s: %d of %d rows left out (values beyond %g)", half.event_id[:100], rejected,
                            len(pair.features), MAX_FEATURE_ABS)
        self._ingest.publish_predictions(schema, logged, source="kserve", rejected=rejected)
        self.stats["paired"] += 1
        return PairOutcome("paired", len(logged.ids), rejected)

    # -- while Redis is away -------------------------------------------------------
    def _hold(self, half: HeldHalf) -> PairOutcome:
        """Pair with a half held here, or hold this one (``held``) until Redis answers."""
        other = self._held.get(half.key)
        if other is not None:
            if other.kind == half.kind:
                self.stats["duplicate"] += 1
                return PairOutcome("duplicate")
            self._held.pop(half.key)
            return self._publish(half, msgpack.unpackb(other.half))
        if not self._held.has_room(half):
            self.stats["hold_full"] += 1
            if self._ingest.metrics is not None:
                self._ingest.metrics.dropped(int(msgpack.unpackb(half.half)["n"]), "kserve_hold_full",
                                             model=half.schema.name, model_version=half.schema.version)
            raise HoldFull(f"Redis is unreachable and the KServe halves held in memory fill "
                           f"{self._held.max_bytes} bytes (DRIFTWATCH_KSERVE_HOLD_MAX_BYTES)")
        self._held.put(half)
        self.stats["held"] += 1
        return PairOutcome("held")

    def _redis_away(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._away:
            log.warning("kserve: Redis unreachable (%s); holding halves in memory until it answers", exc)
        self._away = True
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_when_back(), name="kserve-hold-flush")

    async def _flush_when_back(self) -> None:
        """Probe Redis with backoff; once it answers, hand every held half to the pairing script."""
        initial, most = self._backoff
        delay = initial
        while True:
            await asyncio.sleep(delay)
            try:
                await self._client.ping()
                await self._flush()
            except _AWAY as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(delay * 2, most)
                continue
            if not self._held:  # nothing arrived during the flush: back to pairing in Redis
                self._away = False
                log.warning("kserve: Redis answers again; halves held meanwhile handed to it")
                return
            delay = initial

    async def _flush(self) -> None:
        for half in self._held:  # a snapshot: halves that arrive meanwhile wait for the next round
            if self._held.get(half.key) is not half:
                continue  # its other half came meanwhile and took it
            self._held.pop(half.key)
            try:
                answer = await self._pair(keys=[half.key], args=[half.kind, half.half, self._ttl_ms])
            except _AWAY:
                with contextlib.suppress(HoldFull, PayloadError):
                    self._hold(half)  # back in line (or paired with its other half, come meanwhile)
                raise
            self.stats["flushed"] += 1
            try:
                self._settle(half, answer)
            except (PayloadError, QueueFull) as exc:  # counted where they happen
                with bound_model(half.schema.name, half.schema.version):
                    log.warning("kserve %s: held pair not published: %s", half.event_id[:100], exc)

    async def close(self) -> None:
        """Stop probing; one last flush if Redis answers; what is still held goes to the store."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._held:
            with contextlib.suppress(*_AWAY):
                await self._flush()
        if self._held and self._store is not None:
            entries = as_entries(self._held)
            try:
                stored = self._store.append(encode_batch(os.urandom(16), entries), len(entries))
            except OSError:
                log.exception("kserve: cannot write the held halves to %s", self._store.path)
                stored = False
            if stored:
                log.warning("kserve: %d halves held while Redis is away stay in %s for the next start",
                            len(entries), self._store.path)
                self._held = HeldHalves(self._held.max_bytes)
        if self._held:
            log.error("kserve: %d halves held while Redis was away are lost at shutdown", len(self._held))
        if self._store is not None:
            self._store.close()


def _nothing(schema: IngestSchema) -> LoggedPredictions:
    return LoggedPredictions([], [], np.zeros(0, np.int64), np.zeros((0, schema.event_width), np.float32),
                             np.zeros(0, np.int64), np.zeros((0, schema.probability_width), np.float32), {}, [])
