"""Settings of the model service (port 8000), read from ``DRIFTWATCH_*`` and ``.env``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.settings_base import ServiceSettings


class ModelServiceSettings(ServiceSettings):
    """Settings of the model service (port 8000)."""

    # The model to serve; unset (or DRIFTWATCH_INGEST_ONLY=true): no model of its own, the service
    # only logs registered models' events (POST /models/{name}/predictions, KServe).
    model_dir: Path | None = Field(default=None, alias="DRIFTWATCH_MODEL_DIR")
    ingest_only: bool = Field(default=False, alias="DRIFTWATCH_INGEST_ONLY")
    # How long a registered model's metadata is cached by the ingest endpoints (a new version is
    # used after at most this long; an unknown name is asked again after a second).
    registry_ttl_s: float = Field(default=5.0, gt=0, le=3_600, alias="DRIFTWATCH_REGISTRY_TTL_S")
    port: int = Field(default=8000, alias="DRIFTWATCH_PORT")
    # With DRIFTWATCH_API_KEY set, /predict needs it too; false leaves /predict open (internal
    # deployments whose callers cannot carry a key). Without a key nothing is protected.
    protect_predict: bool = Field(default=True, alias="DRIFTWATCH_PROTECT_PREDICT")
    # Same for /kserve: KServe's inference logger sends no header of its own, so with a key set a
    # deployment that points a logger here turns this off and keeps the route internal.
    protect_kserve: bool = Field(default=True, alias="DRIFTWATCH_PROTECT_KSERVE")
    # KServe: which registered model an InferenceService's events belong to, when not its own name:
    # JSON {"<isvc>": "<model>", "<namespace>/<isvc>": "<model>"}. POST /kserve/{name} names it too.
    kserve_models: dict[str, str] = Field(default_factory=dict, alias="DRIFTWATCH_KSERVE_MODELS")
    # How long the first half (request or response) of a logged inference waits for the other.
    kserve_pair_ttl_s: float = Field(default=60.0, gt=0, le=3_600, alias="DRIFTWATCH_KSERVE_PAIR_TTL_S")
    # While Redis is away halves wait in memory (then in a spill file at shutdown) up to this many bytes;
    # past it a half is refused with a 503 and counted (driftwatch.events.dropped, kserve_hold_full).
    kserve_hold_max_bytes: int = Field(default=64 << 20, ge=1 << 16, alias="DRIFTWATCH_KSERVE_HOLD_MAX_BYTES")
    # Publishing: events wait in memory and leave in pipelined batches.
    publish_batch_size: int = Field(default=256, ge=1, alias="DRIFTWATCH_PUBLISH_BATCH_SIZE")
    publish_queue_max: int = Field(default=100_000, ge=1, alias="DRIFTWATCH_PUBLISH_QUEUE_MAX")
    publish_enabled: bool = Field(default=True, alias="DRIFTWATCH_PUBLISH_ENABLED")
    # Light traffic waits this long between writes, so it still leaves in batches.
    publish_linger_ms: float = Field(default=10.0, ge=0, le=1_000, alias="DRIFTWATCH_PUBLISH_LINGER_MS")
    # Rows per /predict batch and per ingest batch (POST /models/{name}/predictions, /feedback); more: 422.
    max_batch_rows: int = Field(default=1_024, ge=1, le=100_000, alias="DRIFTWATCH_MAX_BATCH_ROWS")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1_024, alias="DRIFTWATCH_MAX_BODY_BYTES")
    # Spill file: where queued events go while Redis is unreachable or slow, replayed in order on return.
    spill_dir: Path = Field(default=Path("var/spill"), alias="DRIFTWATCH_SPILL_DIR")
    spill_max_bytes: int = Field(default=1 << 30, ge=1 << 16, alias="DRIFTWATCH_SPILL_MAX_BYTES")
    # "batch": fsync after every spilled batch; "never": leave it to the OS.
    spill_fsync: Literal["batch", "never"] = Field(default="batch", alias="DRIFTWATCH_SPILL_FSYNC")
    # Queue length past which the publisher stops waiting on Redis and spills to the file.
    publish_high_water: int = Field(default=20_000, ge=1, alias="DRIFTWATCH_PUBLISH_HIGH_WATER")
    # How long a batch id is remembered in Redis, so an ambiguous write retried within it lands once.
    publish_dedup_ttl_s: int = Field(default=3_600, ge=1, alias="DRIFTWATCH_PUBLISH_DEDUP_TTL_S")
    # Graceful shutdown: how long the queue may take to reach Redis before the rest is spilled.
    publish_close_timeout_s: float = Field(default=8.0, gt=0, alias="DRIFTWATCH_PUBLISH_CLOSE_TIMEOUT_S")
    # Micro-batching: /predict requests that reach the model in the same event-loop turn share one
    # interpreter call (and one metrics record, one publisher submit). Off: one call per request.
    micro_batch: bool = Field(default=True, alias="DRIFTWATCH_MICRO_BATCH")
