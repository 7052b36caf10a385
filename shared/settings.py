"""Process settings, read from the environment (and an optional ``.env`` file).

Each service gets one settings class so a deployment can see at a glance which
variables it reads. Redis settings are shared because both sides must agree on
the stream names and caps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class RedisSettings(BaseSettings):
    """Where the event streams live and how long they may grow."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # Name used in every key, so several models can share one Redis.
    model_name: str = Field(default="digits-mlp", alias="DRIFTWATCH_MODEL_NAME")
    # Streams are capped with MAXLEN ~ so a stalled monitor cannot exhaust Redis memory.
    stream_maxlen: int = Field(default=1_000_000, ge=1_000, alias="DRIFTWATCH_STREAM_MAXLEN")


class ModelServiceSettings(RedisSettings):
    """Settings of the model service (port 8000)."""

    model_dir: Path = Field(default=Path("models/default"), alias="DRIFTWATCH_MODEL_DIR")
    host: str = Field(default="127.0.0.1", alias="DRIFTWATCH_HOST")
    port: int = Field(default=8000, alias="DRIFTWATCH_PORT")
    # Publishing: events wait in memory and leave in pipelined batches.
    publish_batch_size: int = Field(default=256, ge=1, alias="DRIFTWATCH_PUBLISH_BATCH_SIZE")
    publish_queue_max: int = Field(default=100_000, ge=1, alias="DRIFTWATCH_PUBLISH_QUEUE_MAX")
    publish_enabled: bool = Field(default=True, alias="DRIFTWATCH_PUBLISH_ENABLED")
    # Light traffic waits this long between writes, so it still leaves in batches.
    publish_linger_ms: float = Field(default=10.0, ge=0, le=1_000, alias="DRIFTWATCH_PUBLISH_LINGER_MS")
    max_batch_rows: int = Field(default=1_024, ge=1, alias="DRIFTWATCH_MAX_BATCH_ROWS")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1_024, alias="DRIFTWATCH_MAX_BODY_BYTES")
    api_key: SecretStr | None = Field(default=None, alias="DRIFTWATCH_API_KEY")
    # With a key set, also require it on read endpoints (not on /livez, /readyz).
    protect_reads: bool = Field(default=False, alias="DRIFTWATCH_PROTECT_READS")
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


class MonitorSettings(RedisSettings):
    """Settings of the monitor (port 8001)."""

    host: str = Field(default="127.0.0.1", alias="DRIFTWATCH_HOST")
    port: int = Field(default=8001, alias="DRIFTWATCH_PORT")
    window_size: int = Field(default=1_000, ge=2, alias="DRIFTWATCH_WINDOW_SIZE")
    alpha: float = Field(default=0.05, gt=0, lt=1, alias="DRIFTWATCH_ALPHA")
    correction: Literal["bonferroni", "fdr_bh", "none"] = Field(
        default="bonferroni", alias="DRIFTWATCH_CORRECTION"
    )
    read_count: int = Field(default=500, ge=1, alias="DRIFTWATCH_READ_COUNT")
    read_block_ms: int = Field(default=1_000, ge=1, alias="DRIFTWATCH_READ_BLOCK_MS")
    # A pending entry idle this long belongs to a dead consumer and is claimed.
    claim_idle_ms: int = Field(default=30_000, ge=100, alias="DRIFTWATCH_CLAIM_IDLE_MS")
    max_deliveries: int = Field(default=5, ge=1, alias="DRIFTWATCH_MAX_DELIVERIES")
    # How long join state (prediction class, label) is kept for late feedback.
    join_retention_s: int = Field(default=7 * 24 * 3600, ge=60, alias="DRIFTWATCH_JOIN_RETENTION_S")
    history_max: int = Field(default=1_000, ge=1, alias="DRIFTWATCH_HISTORY_MAX")
    # Time windows: how long after its end a window waits for late predictions.
    window_grace_s: float = Field(default=5.0, ge=0, alias="DRIFTWATCH_WINDOW_GRACE_S")
    api_key: SecretStr | None = Field(default=None, alias="DRIFTWATCH_API_KEY")
    protect_reads: bool = Field(default=False, alias="DRIFTWATCH_PROTECT_READS")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1_024, alias="DRIFTWATCH_MAX_BODY_BYTES")
    alerts_enabled: bool = Field(default=True, alias="DRIFTWATCH_ALERTS_ENABLED")
    # Lag (undelivered entries) above this share of the stream cap is reported as a warning.
    lag_warn_ratio: float = Field(default=0.8, gt=0, le=1, alias="DRIFTWATCH_LAG_WARN_RATIO")
    # Drift windows (monitor/windows.py). count: tumbling windows of
    # DRIFTWATCH_WINDOW_SIZE predictions (default); time: tumbling windows of
    # DRIFTWATCH_WINDOW_SECONDS of prediction time (needs the time-indexed
    # ingest script); sliding: windows of DRIFTWATCH_SLIDING_SIZE rows that
    # advance by DRIFTWATCH_WINDOW_SIZE rows (a multiple of it); sliding-time:
    # windows of DRIFTWATCH_SLIDING_SECONDS of prediction time that advance by
    # DRIFTWATCH_WINDOW_SECONDS (a multiple of it).
    window_mode: Literal["count", "time", "sliding", "sliding-time"] = Field(
        default="count", alias="DRIFTWATCH_WINDOW_MODE"
    )
    window_seconds: int = Field(default=300, ge=1, alias="DRIFTWATCH_WINDOW_SECONDS")
    sliding_size: int = Field(default=10_000, ge=2, alias="DRIFTWATCH_SLIDING_SIZE")
    sliding_seconds: int = Field(default=3_600, ge=1, alias="DRIFTWATCH_SLIDING_SECONDS")
    # A window with fewer rows reports insufficient_data, never "no drift".
    min_window_size: int = Field(default=30, ge=1, alias="DRIFTWATCH_MIN_WINDOW_SIZE")
    # The drift reference: the training sample registered with the model, or
    # the first DRIFTWATCH_REFERENCE_SIZE predictions served by each version.
    reference: Literal["training", "production"] = Field(default="training", alias="DRIFTWATCH_REFERENCE")
    reference_size: int = Field(default=1_000, ge=2, alias="DRIFTWATCH_REFERENCE_SIZE")
