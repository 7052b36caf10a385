"""Settings of the monitor (port 8001), alerting included, read from ``DRIFTWATCH_*`` and ``.env``.

``MonitorSettings`` holds the consumer, windows, drift tests and API;
``MonitorSettings.alerts`` (``AlertSettings``, variables ``DRIFTWATCH_ALERT_*``)
says where alert notifications go and how hard to try.

``DRIFTWATCH_ALERT_WEBHOOK_URLS`` takes a comma-separated list (or a JSON
list) of URLs that receive the Alertmanager webhook payload (version 4);
``DRIFTWATCH_ALERT_ALERTMANAGER_URL`` is an Alertmanager base URL to push to
``/api/v2/alerts``. Both empty: alerts are evaluated and visible in the API,
and nothing is sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.settings_base import ENV_FILE, ServiceSettings


def _http_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


class AlertSettings(BaseSettings):
    """Notification targets, retries, leadership and retention of the alerting part."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_ALERT_", env_file=ENV_FILE, extra="ignore")

    webhook_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    alertmanager_url: str | None = None
    # Alertmanager resolves an alert whose endsAt passes: active alerts are re-sent
    # this often with endsAt = now + 4 * resend_interval_s (as Prometheus does).
    resend_interval_s: float = Field(default=60.0, gt=0)
    request_timeout_s: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    # Only the holder of this lease sends; another replica takes over within a TTL.
    leader_ttl_s: float = Field(default=15.0, gt=0.1)
    # Transitions older than this when a (new) leader gets to them are dropped, not
    # sent: a receiver paged hours late about a long-resolved alert is noise.
    max_notification_age_s: float = Field(default=3600.0, gt=0)
    resolved_retention_s: float = Field(default=900.0, ge=0)
    history_maxlen: int = Field(default=10_000, ge=10)
    receiver: str = "driftwatch"
    # Opt-in: one FeatureDrift alert per drifted feature besides the dataset alert.
    # Only read when the default rules are installed (a fresh Redis).
    per_feature: bool = False
    # Base URL of the monitor, for externalURL and each alert's generatorURL.
    external_url: str = ""

    @field_validator("webhook_urls", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part for part in text.split(",") if part.strip()]
        return value

    @field_validator("webhook_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        return [_http_url(u) for u in urls]

    @field_validator("alertmanager_url")
    @classmethod
    def _am_url(cls, url: str | None) -> str | None:
        return _http_url(url).rstrip("/") if url else None

    @property
    def claim_idle_s(self) -> float:
        """Longest one notification can take with every retry: an entry idle longer was abandoned."""
        backoff, total = self.backoff_initial_s, 0.0
        for _ in range(self.max_attempts - 1):
            total += min(backoff, self.backoff_max_s)
            backoff *= 2
        return self.max_attempts * self.request_timeout_s + total + self.leader_ttl_s


class MonitorSettings(ServiceSettings):
    """Settings of the monitor (port 8001)."""

    port: int = Field(default=8001, alias="DRIFTWATCH_PORT")
    # A stable name per replica (a StatefulSet ordinal, a pod name) lets a restarted
    # monitor find its own pending entries at once; unset: ``<host>-<pid>``.
    consumer_name: str | None = Field(default=None, alias="DRIFTWATCH_CONSUMER_NAME")
    window_size: int = Field(default=1_000, ge=2, alias="DRIFTWATCH_WINDOW_SIZE")
    # At least monitor.drift.correlation.MIN_ALPHA (not imported: settings load without numpy/scipy);
    # the multivariate test simulates max(1000, 1 / alpha) null windows per model version.
    alpha: float = Field(default=0.05, ge=1e-5, lt=1, alias="DRIFTWATCH_ALPHA")
    correction: Literal["bonferroni", "fdr_bh", "none"] = Field(
        default="bonferroni", alias="DRIFTWATCH_CORRECTION"
    )
    # KS p-values (monitor/drift/detector.py DriftConfig.p_values): near-level reports every
    # one, as scipy computes it near the decision level and from Kolmogorov's limit far from
    # it; all computes every one as scipy does (slower at unequal sizes; same decisions).
    p_values: Literal["near-level", "all", "drifted"] = Field(default="near-level", alias="DRIFTWATCH_P_VALUES")
    # A significant feature is drift only beyond what the reference's own chunks of the
    # window's size show (monitor/drift/reference_chunks.py); none: the tests alone decide.
    effect_floor: Literal["reference-chunks", "none"] = Field(
        default="reference-chunks", alias="DRIFTWATCH_EFFECT_FLOOR"
    )
    # Threads of the compiled KS kernel (monitor/drift/_kernels.py); unset: every core numba
    # sees (NUMBA_NUM_THREADS). Reports are the same for any value.
    drift_threads: int | None = Field(default=None, ge=1, alias="DRIFTWATCH_DRIFT_THREADS")
    read_count: int = Field(default=500, ge=1, alias="DRIFTWATCH_READ_COUNT")
    read_block_ms: int = Field(default=1_000, ge=1, alias="DRIFTWATCH_READ_BLOCK_MS")
    # After a read that was not full, the next waits this long: a slow stream (one of many
    # models) is then read in batches, not an entry at a time (monitor/fleet.py, README).
    read_linger_ms: int = Field(default=250, ge=0, le=10_000, alias="DRIFTWATCH_READ_LINGER_MS")
    # After a read of fewer than a tenth of DRIFTWATCH_READ_COUNT entries (a stream that slow: one of
    # many models), the next waits this long instead: fewer, fuller batches (benchmarks/fleet.py).
    read_linger_slow_ms: int = Field(default=1_000, ge=0, le=10_000, alias="DRIFTWATCH_READ_LINGER_SLOW_MS")
    # A pending entry idle this long belongs to a dead consumer and is claimed.
    claim_idle_ms: int = Field(default=30_000, ge=100, alias="DRIFTWATCH_CLAIM_IDLE_MS")
    max_deliveries: int = Field(default=5, ge=1, alias="DRIFTWATCH_MAX_DELIVERIES")
    # How long join state (prediction class, label) is kept for late feedback.
    join_retention_s: int = Field(default=7 * 24 * 3600, ge=60, alias="DRIFTWATCH_JOIN_RETENTION_S")
    # Hashes per hour of join state (a multiple of 16): about peak events/s x 56 keeps
    # each under 128 entries, listpack-encoded (README "Sizing"). Fixed by the first
    # monitor in Redis; later values are ignored with a warning.
    join_shards: int = Field(default=4_096, ge=16, multiple_of=16, alias="DRIFTWATCH_JOIN_SHARDS")
    history_max: int = Field(default=1_000, ge=1, alias="DRIFTWATCH_HISTORY_MAX")
    # Time windows: how long after its end a window waits for late predictions.
    window_grace_s: float = Field(default=5.0, ge=0, alias="DRIFTWATCH_WINDOW_GRACE_S")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1_024, alias="DRIFTWATCH_MAX_BODY_BYTES")
    # PUT /models/{name}/versions/{version} carries a reference sample (up to 50,000 rows).
    max_registration_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1_024, alias="DRIFTWATCH_MAX_REGISTRATION_BYTES"
    )
    # A retired version's reference and window series are kept this long, then expire (its metadata stays).
    retired_retention_s: int = Field(default=30 * 24 * 3600, ge=60, alias="DRIFTWATCH_RETIRED_RETENTION_S")
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
    # Many models (monitor/fleet.py): every model registered in Redis is watched,
    # plus DRIFTWATCH_MODEL_NAME (the default model, always; none with DRIFTWATCH_NO_DEFAULT_MODEL,
    # see ``default_model``). DRIFTWATCH_MODELS (comma-separated) restricts this replica to those names.
    # A flag, not an empty DRIFTWATCH_MODEL_NAME: an empty variable counts as unset here (TelemetrySettings).
    no_default_model: bool = Field(default=False, alias="DRIFTWATCH_NO_DEFAULT_MODEL")
    models: Annotated[list[str], NoDecode] = Field(default_factory=list, alias="DRIFTWATCH_MODELS")
    # At most this many models per replica (the default model first, then by name); each
    # watched model holds up to 2 Redis connections for its blocking reads.
    max_models: int = Field(default=100, ge=1, le=1_000, alias="DRIFTWATCH_MAX_MODELS")
    # How often the registry is polled for new models (also on each request for an unknown one).
    discovery_interval_s: float = Field(default=2.0, gt=0, le=300, alias="DRIFTWATCH_DISCOVERY_INTERVAL_S")
    # Models whose metrics are exported (the first watched); the rest are read through the API.
    metrics_max_models: int = Field(default=50, ge=1, le=1_000, alias="DRIFTWATCH_METRICS_MAX_MODELS")
    # The pool of the consumers' connections (blocking XREADGROUP, ingest scripts, acks),
    # apart from DRIFTWATCH_REDIS_MAX_CONNECTIONS (HTTP reads, reports, alerts), so N
    # models' blocking reads never starve a request. Unset: 2 x DRIFTWATCH_MAX_MODELS + 4.
    redis_stream_max_connections: int | None = Field(
        default=None, ge=4, le=10_000, alias="DRIFTWATCH_REDIS_STREAM_MAX_CONNECTIONS"
    )
    # Read from DRIFTWATCH_ALERT_* when the monitor settings are read.
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @field_validator("models", mode="before")
    @classmethod
    def _model_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return orjson.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def default_model(self) -> str | None:
        """The model of the unprefixed reads (``/drift`` ...), watched registered or not; None with
        ``DRIFTWATCH_NO_DEFAULT_MODEL``: a monitor of registered models only (``driftwatch up
        --ingest-only``), whose unprefixed reads answer 404 rather than show a model nobody logs.

        >>> MonitorSettings(DRIFTWATCH_NO_DEFAULT_MODEL=True).default_model is None
        True
        """
        return None if self.no_default_model else self.model_name

    @property
    def stream_max_connections(self) -> int:
        """Connections the consumers of every watched model may hold (see ``redis_stream_max_connections``)."""
        return self.redis_stream_max_connections or 2 * self.max_models + 4
