"""Where alert notifications go and how hard to try, read from ``DRIFTWATCH_ALERT_*``.

``DRIFTWATCH_ALERT_WEBHOOK_URLS`` takes a comma-separated list (or a JSON
list) of URLs that receive the Alertmanager webhook payload (version 4);
``DRIFTWATCH_ALERT_ALERTMANAGER_URL`` is an Alertmanager base URL to push to
``/api/v2/alerts``. Both empty: alerts are evaluated and visible in the API,
and nothing is sent.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _http_url(url: str) -> str:
    url = url.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url


class AlertSettings(BaseSettings):
    """Notification targets, retries, leadership and retention of the alerting part."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_ALERT_", env_file=".env", extra="ignore")

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
