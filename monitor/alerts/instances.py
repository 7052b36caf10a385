"""Alert instances and their transitions: the evaluator's output, the store's records.

An *instance* is one rule applied to one label set (one per feature for a
``feature="*"`` rule), identified by a fingerprint of its labels, as in
Prometheus and Alertmanager. Instances exist only while pending, firing, or
resolved within the retention period; ``inactive`` is the absence of one.

Times are Unix seconds (the snapshots' clock); the Alertmanager payloads
convert them to RFC 3339.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict, Field


class AlertStatus(StrEnum):
    inactive = "inactive"
    pending = "pending"
    firing = "firing"
    resolved = "resolved"


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit id of a label set (independent of key order and process)."""
    canonical = orjson.dumps(dict(sorted(labels.items())))
    return hashlib.sha256(canonical).hexdigest()[:16]


class AlertInstance(BaseModel):
    """The persisted state of one alert instance."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    rule: str = Field(description="Name of the rule that made the instance")
    state: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None = Field(default=None, description="Metric value at the last evaluation that held")
    active_at: float = Field(description="When the condition started holding (pending since)")
    starts_at: float | None = Field(default=None, description="When it started firing")
    ends_at: float | None = Field(default=None, description="When it resolved")
    last_window: int | None = Field(default=None, description="Window of the last evaluation that changed it")
    last_at: float = Field(description="Time of the last evaluation that changed it")
    hold_count: int = Field(default=0, description="Consecutive evaluations on which the condition held")
    clear_count: int = Field(default=0, description="Consecutive clear evaluations while kept firing")
    keep_firing_since: float | None = Field(default=None, description="When the condition cleared while firing")


class Transition(BaseModel):
    """One change of an instance's state, as recorded in the history and notified."""

    model_config = ConfigDict(extra="forbid")

    fingerprint: str
    alertname: str
    from_state: AlertStatus
    to_state: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    window: int | None
    at: float
    active_at: float
    starts_at: float | None
    ends_at: float | None

    @property
    def notifies(self) -> bool:
        """Receivers hear about firing and resolved alerts only, never pending ones."""
        return self.to_state in (AlertStatus.firing, AlertStatus.resolved)

    @classmethod
    def of(cls, before: AlertStatus, after: AlertInstance, window: int | None, at: float) -> Transition:
        return cls(
            fingerprint=after.fingerprint,
            alertname=after.rule,
            from_state=before,
            to_state=after.state,
            labels=after.labels,
            annotations=after.annotations,
            value=after.value,
            window=window,
            at=at,
            active_at=after.active_at,
            starts_at=after.starts_at,
            ends_at=after.ends_at,
        )
