"""Alertmanager wire formats and notifier settings, without servers."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from pydantic import ValidationError

from monitor.alerts.instances import AlertInstance, AlertStatus, Transition
from monitor.alerts.notifier import raise_if_cancelling
from monitor.alerts.payloads import ZERO_TIME, group_key, postable_alert, rfc3339, webhook_payload
from monitor.monitor_settings import AlertSettings

LABELS = {"model": "m", "severity": "critical", "alertname": "LowAccuracy"}


def transition(to: AlertStatus) -> Transition:
    return Transition(
        fingerprint="abcd",
        alertname="LowAccuracy",
        from_state=AlertStatus.firing if to is AlertStatus.resolved else AlertStatus.pending,
        to_state=to,
        labels=LABELS,
        annotations={"summary": "low"},
        value=0.5,
        window=3,
        at=1_700_000_100.0,
        active_at=1_700_000_000.0,
        starts_at=1_700_000_050.0,
        ends_at=1_700_000_100.0 if to is AlertStatus.resolved else None,
    )


def test_rfc3339() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1.5) == "1970-01-01T00:00:01.500Z"
    assert rfc3339(None) == ZERO_TIME


def test_webhook_payload_has_the_alertmanager_v4_shape() -> None:
    body = webhook_payload(transition(AlertStatus.firing), receiver="r", external_url="http://mon")
    assert set(body) == {
        "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
        "commonLabels", "commonAnnotations", "externalURL", "alerts",
    }  # fmt: skip
    assert body["version"] == "4" and body["status"] == "firing" and body["externalURL"] == "http://mon"
    (alert,) = body["alerts"]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["startsAt"] == rfc3339(1_700_000_050.0) and alert["endsAt"] == ZERO_TIME
    resolved = webhook_payload(transition(AlertStatus.resolved), receiver="r", external_url="")
    assert resolved["status"] == resolved["alerts"][0]["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == rfc3339(1_700_000_100.0)
    assert resolved["alerts"][0]["generatorURL"] == ""


def test_group_key() -> None:
    assert group_key(LABELS) == '{}:{alertname="LowAccuracy",model="m"}'


def test_postable_alert_ends_in_the_future_while_firing() -> None:
    inst = AlertInstance(
        fingerprint="abcd", rule="LowAccuracy", state=AlertStatus.firing, labels=LABELS, annotations={},
        active_at=10.0, starts_at=20.0, last_at=30.0,
    )  # fmt: skip
    body = postable_alert(inst, now=100.0, valid_for_s=240.0, external_url="http://mon")
    assert body["startsAt"] == rfc3339(20.0) and body["endsAt"] == rfc3339(340.0)
    assert body["generatorURL"] == "http://mon/models/m/alerts?alertname=LowAccuracy"
    done = inst.model_copy(update={"state": AlertStatus.resolved, "ends_at": 50.0})
    assert postable_alert(done, now=100.0, valid_for_s=240.0, external_url="")["endsAt"] == rfc3339(50.0)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWATCH_ALERT_WEBHOOK_URLS", "http://a/hook, https://b/hook")
    monkeypatch.setenv("DRIFTWATCH_ALERT_ALERTMANAGER_URL", "http://am:9093/")
    monkeypatch.setenv("DRIFTWATCH_ALERT_RESEND_INTERVAL_S", "30")
    s = AlertSettings()
    assert s.webhook_urls == ["http://a/hook", "https://b/hook"]
    assert s.alertmanager_url == "http://am:9093" and s.resend_interval_s == 30
    monkeypatch.setenv("DRIFTWATCH_ALERT_WEBHOOK_URLS", '["http://c"]')
    assert AlertSettings().webhook_urls == ["http://c"]
    monkeypatch.setenv("DRIFTWATCH_ALERT_WEBHOOK_URLS", "ftp://nope")
    with pytest.raises(ValidationError):
        AlertSettings()


def test_claim_idle_covers_a_whole_delivery() -> None:
    s = AlertSettings(max_attempts=3, request_timeout_s=5, backoff_initial_s=1, backoff_max_s=1.5, leader_ttl_s=15)
    assert s.claim_idle_s == 3 * 5 + (1 + 1.5) + 15


async def test_a_swallowed_cancel_is_raised_again() -> None:
    looping = asyncio.Event()

    async def swallowing_loop() -> None:
        while True:
            raise_if_cancelling()
            looping.set()
            # Swallowing, as asyncio.wait_for does on Python 3.11 when the inner call completes too.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.01)

    task = asyncio.create_task(swallowing_loop())
    await asyncio.wait_for(looping.wait(), 2)  # inside the loop, in its sleep
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
