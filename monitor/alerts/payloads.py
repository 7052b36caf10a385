"""The wire formats receivers already understand: Alertmanager's.

- The webhook payload (``version: "4"``) that Alertmanager POSTs to its
  webhook receivers, so any receiver written for Alertmanager (chat bridges,
  incident tools) takes Driftwatch's notifications unchanged.
- The ``postableAlerts`` body of Alertmanager's ``POST /api/v2/alerts``, for
  pushing straight into an Alertmanager that then groups, silences and routes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from monitor.alerts.instances import AlertInstance, AlertStatus, Transition

# Alertmanager's zero time: what its webhook shows as endsAt of a firing alert.
ZERO_TIME = "0001-01-01T00:00:00Z"
GROUP_LABELS = ("alertname", "model")


def rfc3339(ts: float | None) -> str:
    if ts is None:
        return ZERO_TIME
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generator_url(external_url: str, alertname: str, model: str | None = None) -> str:
    """Where a human sees the alert: the monitor's ``GET /models/{model}/alerts`` (``/alerts`` without a model).

    >>> generator_url("http://monitor:8001/", "DatasetDrift", "fraud v2")
    'http://monitor:8001/models/fraud%20v2/alerts?alertname=DatasetDrift'
    """
    if not external_url:
        return ""
    base = f"/models/{quote(model, safe='')}" if model else ""
    return f"{external_url.rstrip('/')}{base}/alerts?alertname={quote(alertname)}"


def group_key(labels: dict[str, str]) -> str:
    """Alertmanager's shape of a group key: route path ``{}`` and the group labels."""
    inner = ",".join(f'{k}="{labels[k]}"' for k in GROUP_LABELS if k in labels)
    return "{}:{" + inner + "}"


def webhook_payload(transition: Transition, *, receiver: str, external_url: str) -> dict[str, Any]:
    """One transition to firing or resolved, as an Alertmanager (v4) webhook notification."""
    status = "resolved" if transition.to_state is AlertStatus.resolved else "firing"
    alert = {
        "status": status,
        "labels": transition.labels,
        "annotations": transition.annotations,
        "startsAt": rfc3339(transition.starts_at if transition.starts_at is not None else transition.active_at),
        "endsAt": rfc3339(transition.ends_at if status == "resolved" else None),
        "generatorURL": generator_url(external_url, transition.alertname, transition.labels.get("model")),
        "fingerprint": transition.fingerprint,
    }
    return {
        "version": "4",
        "groupKey": group_key(transition.labels),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {k: transition.labels[k] for k in GROUP_LABELS if k in transition.labels},
        "commonLabels": transition.labels,
        "commonAnnotations": transition.annotations,
        "externalURL": external_url,
        "alerts": [alert],
    }


def postable_alert(instance: AlertInstance, *, now: float, valid_for_s: float, external_url: str) -> dict[str, Any]:
    """One instance for ``POST /api/v2/alerts``.

    A firing alert gets ``endsAt`` in the future (``now + valid_for_s``): if we
    stop re-sending (crash, partition), Alertmanager resolves it by itself then.
    A resolved one carries its real end time.
    """
    starts = instance.starts_at if instance.starts_at is not None else instance.active_at
    ends = instance.ends_at if instance.state is AlertStatus.resolved else now + valid_for_s
    return {
        "labels": instance.labels,
        "annotations": instance.annotations,
        "startsAt": rfc3339(starts),
        "endsAt": rfc3339(ends),
        "generatorURL": generator_url(external_url, instance.rule, instance.labels.get("model")),
    }
