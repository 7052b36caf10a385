"""One prediction event per logged KServe inference, from its request and response halves.

The logger sends the request and the response separately, in either order,
possibly to different replicas of this service. Each half is read at once
(a body that cannot be read is a 422 for that half), reduced to arrays and
handed to ``kserve_pair.lua``, which keeps the first half of a pair in Redis
(``Keys.kserve_pending``, with a TTL: a response that never comes, or
``logger.mode: request``, leaves nothing behind) and gives it to whoever
brings the second, deleting it in the same step. So exactly one caller, on
any replica, holds both halves, and it queues the events through the ingest
path's publisher (spill, exactly-once writes).

Ids: row ``i`` of a request whose ``ce-id`` is ``X`` is known as ``X`` (one
row) or ``X/i`` (several), mapped to a Driftwatch id with the request's
``ce-time`` (``shared.ids.internal_prediction_id``). Feedback for it is
``{"id": "X", "prediction_timestamp": <ce-time>}`` on ``/models/{name}/feedback``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from model_service.ingest_rows import LoggedPredictions, now_ms
from model_service.ingest_service import IngestService
from model_service.kserve_events import InferenceEvent
from model_service.kserve_payloads import PayloadError, request_features, response_outputs
from model_service.registered_models import IngestSchema
from model_service.schemas import MAX_FEATURE_ABS
from shared.ids import MAX_STAMP_MS, internal_prediction_id
from shared.redis_scripts import register_script

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PairOutcome:
    status: str  # "waiting" (first half stored), "duplicate" (this half was there), "paired"
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


def _encode_half(event: InferenceEvent, schema: IngestSchema, received_ms: int) -> bytes:
    """A half as its arrays (MessagePack): features, or classes/probabilities/values, and its time."""
    at = event.time_ms if event.time_ms is not None else received_ms
    if event.is_request:
        x = request_features(event.data, schema)
        return msgpack.packb({"t": at, "n": len(x), "x": x.astype(np.float64).tobytes()})
    out = response_outputs(event.data, schema)
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
    at = min(max(pair.time_ms, 0), MAX_STAMP_MS)
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


class KServePairing:
    def __init__(self, client: aioredis.Redis, ingest: IngestService, *, ttl_s: float) -> None:
        self._ingest = ingest
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._pair = register_script(client, "model_service", "kserve_pair.lua")
        self.stats = {"waiting": 0, "duplicate": 0, "paired": 0}

    async def accept(self, event: InferenceEvent, schema: IngestSchema) -> PairOutcome:
        """Read this half (``PayloadError`` if it cannot be), pair it, publish when both are in."""
        half = _encode_half(event, schema, now_ms())
        key = schema.keys.kserve_pending(pair_key(event))
        answer = await self._pair(keys=[key], args=[event.kind, half, self._ttl_ms])
        if isinstance(answer, int):
            status = "waiting" if answer == 0 else "duplicate"
            self.stats[status] += 1
            return PairOutcome(status)
        other = msgpack.unpackb(answer[1:])
        mine = msgpack.unpackb(half)
        request, response = (mine, other) if event.is_request else (other, mine)
        try:
            pair = _decode_pair(request, response, schema)
        except PairMismatch:
            self._ingest.publish_predictions(schema, _nothing(schema), source="kserve", rejected=int(request["n"]))
            raise
        logged = _logged(event.id, pair, schema)
        rejected = len(pair.features) - len(logged.ids)
        if rejected:
            log.warning("kserve %s: %d of %d rows left out (values beyond %g)", event.id[:100], rejected,
                        len(pair.features), MAX_FEATURE_ABS)
        self._ingest.publish_predictions(schema, logged, source="kserve", rejected=rejected)
        self.stats["paired"] += 1
        return PairOutcome("paired", len(logged.ids), rejected)


def _nothing(schema: IngestSchema) -> LoggedPredictions:
    return LoggedPredictions([], [], np.zeros(0, np.int64), np.zeros((0, schema.event_width), np.float32),
                             np.zeros(0, np.int64), np.zeros((0, schema.probability_width), np.float32), {}, [])
