"""What every Driftwatch service reads from the environment: Redis and telemetry.

Each service has one settings module built on these classes
(``model_service/serving_settings.py``, ``monitor/monitor_settings.py``), so a
deployment sees at a glance which variables it reads. Settings are read once,
where a process starts (a CLI command, or ``create_app()`` called without
settings), and passed down: no module below that reads the environment.
A new variable is one field with its ``alias`` in the class of the service
that reads it.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILE = ".env"


class RedisSettings(BaseSettings):
    """Where the event streams live and how long they may grow (both sides must agree)."""

    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore")

    redis_url: str = Field(default="redis://127.0.0.1:6379/0", alias="REDIS_URL")
    # Name used in every key, so several models can share one Redis.
    model_name: str = Field(default="digits-mlp", alias="DRIFTWATCH_MODEL_NAME")
    # Streams are capped with MAXLEN ~ so a stalled monitor cannot exhaust Redis memory.
    stream_maxlen: int = Field(default=1_000_000, ge=1_000, alias="DRIFTWATCH_STREAM_MAXLEN")
    # Connections one process may open (shared/redis_pool.py); a request waits for a free one
    # at most DRIFTWATCH_REDIS_POOL_TIMEOUT_S, then gets 503 with Retry-After.
    redis_max_connections: int = Field(default=64, ge=2, le=10_000, alias="DRIFTWATCH_REDIS_MAX_CONNECTIONS")
    redis_pool_timeout_s: float = Field(default=5.0, gt=0, le=60, alias="DRIFTWATCH_REDIS_POOL_TIMEOUT_S")


class TelemetrySettings(BaseSettings):
    """The standard ``OTEL_*`` variables this code decides on itself.

    The SDK's exporters and reader read their own (endpoint, headers,
    timeouts, export interval, service name and resource attributes).
    """

    # An empty variable counts as unset, as the OpenTelemetry SDK reads them.
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore", env_ignore_empty=True)

    # As the SDK reads it: only "true" (any case) disables.
    sdk_disabled: bool = Field(default=False, alias="OTEL_SDK_DISABLED")
    # The signal-specific variable wins; grpc is the Python SDK's default.
    otlp_protocol: str = Field(
        default="grpc",
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
    )
    # Comma-separated: otlp, prometheus, console, none (see shared/telemetry/readers.py).
    metrics_exporter: str = Field(default="otlp", alias="OTEL_METRICS_EXPORTER")
    # Where the prometheus exporter serves its scrape endpoint.
    prometheus_host: str = Field(default="localhost", alias="OTEL_EXPORTER_PROMETHEUS_HOST")
    prometheus_port: int = Field(default=9464, ge=0, le=65535, alias="OTEL_EXPORTER_PROMETHEUS_PORT")
    # Health probes hit every few seconds; counting them would drown the request rate.
    excluded_urls: str = Field(default="/livez,/readyz", alias="OTEL_PYTHON_FASTAPI_EXCLUDED_URLS")

    @field_validator("sdk_disabled", mode="before")
    @classmethod
    def _only_true(cls, value: Any) -> Any:
        return value.strip().lower() == "true" if isinstance(value, str) else value

    @field_validator("otlp_protocol")
    @classmethod
    def _normalised(cls, value: str) -> str:
        return value.strip().lower() or "grpc"


class ServiceSettings(RedisSettings, TelemetrySettings):
    """What both HTTP services read: Redis, telemetry, where to listen, API keys."""

    host: str = Field(default="127.0.0.1", alias="DRIFTWATCH_HOST")
    api_key: SecretStr | None = Field(default=None, alias="DRIFTWATCH_API_KEY")
    # With a key set, also require it on read endpoints (not on /livez, /readyz).
    protect_reads: bool = Field(default=False, alias="DRIFTWATCH_PROTECT_READS")
