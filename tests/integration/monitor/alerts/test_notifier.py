"""Notifications end to end: real Redis, real HTTP receiver, several replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import redis.asyncio as aioredis

from driftwatch.local_processes import LocalRedisServer
from monitor.alerts.lease import LeaderLease
from monitor.alerts.notifier import GROUP, ID_HEADER
from monitor.alerts.payloads import rfc3339
from monitor.alerts.rules import AlertRule
from monitor.alerts.service import NOTIFIER_TASK, AlertService
from monitor.alerts.snapshot import MetricSnapshot
from monitor.alerts.store import AlertStore
from monitor.monitor_settings import AlertSettings
from shared.keys import ALERT_LEADER, Keys
from tests.integration.monitor.alerts.receiver import Receiver

KEYS = Keys("digits-mlp")
DRIFT = AlertRule.model_validate(
    {
        "name": "DatasetDrift",
        "metric": "dataset_drift_share",
        "op": ">",
        "value": 0.2,
        "for": {"windows": 2},
        "labels": {"severity": "warning"},
        "annotations": {"summary": "{{ $value }} of features drifted"},
    }
)


def settings(**kw: Any) -> AlertSettings:
    base: dict[str, Any] = {
        "leader_ttl_s": 0.6,
        "backoff_initial_s": 0.02,
        "backoff_max_s": 0.1,
        "request_timeout_s": 2.0,
        "max_attempts": 3,
        "external_url": "http://monitor:8001",
    }
    return AlertSettings(**{**base, **kw})


def snap(window: int, share: float) -> MetricSnapshot:
    return MetricSnapshot(window=window, at=time.time(), dataset_drift_share=share)


async def wait_for(check: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def settled(redis: aioredis.Redis, within_s: float = 10.0) -> None:
    """Until every history entry was read by the notifiers' group and acknowledged: from
    then on nothing can be sent again (a duplicate could only come from a pending entry)."""
    deadline = time.monotonic() + within_s
    while True:
        groups = await redis.xinfo_groups(KEYS.alert_history)
        group = next(g for g in groups if g["name"] in (GROUP, GROUP.encode()))
        if group["pending"] == 0 and group.get("lag") == 0:
            return
        assert time.monotonic() < deadline, f"notifications not settled: {group}"
        await asyncio.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@asynccontextmanager
async def replicas(redis_url: str, n: int, s: AlertSettings) -> AsyncIterator[list[AlertService]]:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(n)]
    services = [AlertService.create(c, KEYS, s) for c in clients]
    try:
        for svc in services:
            await svc.start(install_defaults=False)
        yield services
    finally:
        for svc in services:
            await svc.stop()
        for c in clients:
            await c.aclose()


async def test_one_firing_and_one_resolved_across_replicas(redis_url: str, receiver: Receiver) -> None:
    s = settings(webhook_urls=[f"{receiver.url}/hook"])
    async with replicas(redis_url, 3, s) as services:
        await services[0].store.replace_rules([DRIFT])
        recorded = []
        for window, share in [(1, 0.5), (2, 0.5), (3, 0.6), (4, 0.0)]:
            results = await asyncio.gather(*(svc.evaluate(snap(window, share)) for svc in services))
            recorded += [(t.from_state, t.to_state, t.window) for r in results for t in r]
        assert recorded == [("inactive", "pending", 1), ("pending", "firing", 2), ("firing", "resolved", 4)]
        await wait_for(lambda: len(receiver.requests) >= 2)
        await settled(services[0].store.redis)

    bodies = receiver.bodies("/hook")
    assert [b["status"] for b in bodies] == ["firing", "resolved"]
    firing, resolved = bodies
    assert firing["version"] == "4" and firing["receiver"] == "driftwatch"
    assert firing["groupKey"] == '{}:{alertname="DatasetDrift",model="digits-mlp"}'
    assert firing["groupLabels"] == {"alertname": "DatasetDrift", "model": "digits-mlp"}
    (alert,) = firing["alerts"]
    assert alert["labels"] == {"model": "digits-mlp", "severity": "warning", "alertname": "DatasetDrift"}
    assert alert["annotations"] == {"summary": "0.5 of features drifted"}
    assert alert["status"] == "firing" and alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == "http://monitor:8001/models/digits-mlp/alerts?alertname=DatasetDrift"
    (done,) = resolved["alerts"]
    assert done["fingerprint"] == alert["fingerprint"] and done["startsAt"] == alert["startsAt"]
    assert done["endsAt"] > done["startsAt"] and done["endsAt"].endswith("Z")
    ids = [r.headers[ID_HEADER] for r in receiver.requests]
    assert len(set(ids)) == 2


async def test_retries_after_a_500(redis_url: str, aredis: aioredis.Redis) -> None:
    with Receiver(fail_first=1) as flaky:
        s = settings(webhook_urls=[flaky.url])
        async with replicas(redis_url, 1, s) as (svc,):
            await svc.store.replace_rules([DRIFT.model_copy(update={"for_": None})])
            await svc.evaluate(snap(1, 0.9))
            await wait_for(lambda: len(flaky.requests) == 2)
            await settled(aredis)
        first, second = flaky.requests
        assert first.body == second.body and first.headers[ID_HEADER] == second.headers[ID_HEADER]
        assert len(flaky.requests) == 2


async def test_gives_up_after_bounded_attempts_and_on_final_4xx(redis_url: str, aredis: aioredis.Redis) -> None:
    with Receiver(fail_first=100) as down, Receiver(fail_first=100, fail_status=400) as rejecting:
        s = settings(webhook_urls=[down.url, rejecting.url], max_attempts=3)
        async with replicas(redis_url, 1, s) as (svc,):
            await svc.store.replace_rules([DRIFT.model_copy(update={"for_": None})])
            await svc.evaluate(snap(1, 0.9))
            await wait_for(lambda: len(down.requests) == 3)
            await settled(aredis)
        assert len(down.requests) == 3 and len(rejecting.requests) == 1


async def test_next_leader_takes_over_abandoned_notifications(
    redis_url: str, aredis: aioredis.Redis, receiver: Receiver
) -> None:
    """The leader crashed holding its lease, with notifications read and not sent: the next
    replica waits for the lease to expire, then sends each pending notification exactly once."""
    s = settings(webhook_urls=[receiver.url], max_attempts=1, request_timeout_s=0.2, leader_ttl_s=3.0)
    store = AlertStore(aredis, KEYS)
    await store.replace_rules([DRIFT.model_copy(update={"for_": None})])
    async with replicas(redis_url, 1, s):
        pass  # creates the consumer group, then stops
    # A leader that took the lease, read two transitions and died before sending and acknowledging them:
    crashed = LeaderLease(aredis, ALERT_LEADER, s.leader_ttl_s, owner="dead-leader")
    assert await crashed.acquire_or_renew()
    await store.apply(snap(1, 0.9))
    await store.apply(snap(2, 0.0))
    read = await aredis.xreadgroup(GROUP, "dead-leader", {KEYS.alert_history: ">"})
    assert len(read[0][1]) == 2
    async with replicas(redis_url, 1, s) as (survivor,):
        assert not survivor.notifier.leader.is_set() and receiver.requests == []  # the lease still runs
        await wait_for(survivor.notifier.leader.is_set, within_s=s.leader_ttl_s + 5)
        assert await aredis.get(ALERT_LEADER) == survivor.notifier.consumer.encode()
        await wait_for(lambda: len(receiver.requests) == 2, within_s=s.claim_idle_s + 5)
        await settled(aredis)
    assert [b["status"] for b in receiver.bodies()] == ["firing", "resolved"]
    assert len({r.headers[ID_HEADER] for r in receiver.requests}) == 2  # each once


async def test_only_the_leader_sends_and_a_stopped_leader_hands_over(
    redis_url: str, aredis: aioredis.Redis, receiver: Receiver
) -> None:
    s = settings(webhook_urls=[receiver.url])
    async with replicas(redis_url, 2, s) as (first, second):
        await wait_for(lambda: first.notifier.leader.is_set() or second.notifier.leader.is_set())
        leader, follower = (first, second) if first.notifier.leader.is_set() else (second, first)
        assert not follower.notifier.leader.is_set()
        await leader.store.replace_rules([DRIFT.model_copy(update={"for_": None})])
        await leader.stop()
        await wait_for(lambda: follower.notifier.leader.is_set())
        await follower.evaluate(snap(1, 0.9))
        await wait_for(lambda: len(receiver.requests) == 1)


async def test_alertmanager_push_and_resend(redis_url: str) -> None:
    with Receiver() as am:
        s = settings(alertmanager_url=am.url, resend_interval_s=0.2)
        async with replicas(redis_url, 2, s) as services:
            await services[0].store.replace_rules([DRIFT.model_copy(update={"for_": None})])
            await services[0].evaluate(snap(1, 0.9))
            await wait_for(lambda: len(am.bodies("/api/v2/alerts")) >= 3)
            (resolution,) = await services[1].evaluate(snap(2, 0.0))
            resolved_end = rfc3339(resolution.ends_at)
            await wait_for(lambda: any(b[0]["endsAt"] == resolved_end for b in am.bodies()), within_s=3)
    pushes = am.bodies("/api/v2/alerts")
    (alert,) = pushes[0]
    assert alert["labels"]["alertname"] == "DatasetDrift" and alert["startsAt"] < alert["endsAt"]
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    # Re-sends move endsAt forward (4 re-send intervals ahead), so Alertmanager keeps the alert active.
    firing_ends = [b[0]["endsAt"] for b in pushes if b[0]["endsAt"] != resolved_end]
    assert firing_ends == sorted(firing_ends) and len(set(firing_ends)) >= 3
    assert all(end > resolved_end for end in firing_ends[-1:])


async def test_stop_ends_the_notifier_promptly_and_keeps_caller_cancellation(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    svc = AlertService.create(client, KEYS, settings())
    await svc.start()
    await wait_for(svc.notifier.leader.is_set, within_s=5)  # leader, then blocked in XREADGROUP
    started = time.monotonic()
    await svc.stop()
    assert time.monotonic() - started < 2 and not svc.tasks.running(NOTIFIER_TASK)
    assert await client.get(ALERT_LEADER) is None  # lease released for the next replica

    # A caller cancelled while stop() awaits the notifier is still cancelled.
    svc = AlertService.create(client, KEYS, settings())
    await svc.start()
    stopping = asyncio.create_task(svc.stop())
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await client.aclose()


async def test_a_redis_outage_is_one_line_per_failure_not_a_traceback(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """``driftwatch up`` restarting its redis-server printed a traceback per failed lease check and
    delivery round (every few seconds while Redis was away, then once per stale pooled connection)."""
    caplog.set_level(logging.WARNING, logger="monitor.alerts.notifier")
    with LocalRedisServer(appendonly=True) as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        svc = AlertService.create(client, KEYS, settings(webhook_urls=[receiver.url]))
        await svc.start(install_defaults=False)
        try:
            await wait_for(svc.notifier.leader.is_set)
            server.stop()
            await wait_for(lambda: not svc.notifier.leader.is_set())  # its lease check failed
            server.start()
            await wait_for(svc.notifier.leader.is_set)
            await svc.store.replace_rules([DRIFT.model_copy(update={"for_": None})])
            await svc.evaluate(snap(1, 0.9))
            await wait_for(lambda: len(receiver.requests) == 1)  # delivering again
        finally:
            await svc.stop()
            await client.aclose()
    failures = [r for r in caplog.records if r.name == "monitor.alerts.notifier" and r.levelno >= logging.WARNING]
    assert failures and all(r.exc_info is None for r in failures), [r.getMessage() for r in failures]


async def test_delivery_rounds_failing_while_redis_is_away_are_said_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A leader's delivery rounds failing while Redis was away logged a warning each (every second,
    until its next lease check): one warning now, the rest at DEBUG, and one line when Redis is back."""
    caplog.set_level(logging.DEBUG, logger="monitor.alerts.notifier")

    def lines(text: str, level: int | None = None) -> int:
        return sum(1 for r in caplog.records if r.name == "monitor.alerts.notifier" and text in r.getMessage()
                   and (level is None or r.levelno == level))

    with LocalRedisServer(appendonly=True) as server:
        client = aioredis.Redis.from_url(server.url, socket_timeout=1.0, socket_connect_timeout=1.0)
        svc = AlertService.create(client, KEYS, settings(webhook_urls=[receiver.url], leader_ttl_s=60.0))
        await svc.start(install_defaults=False)
        try:
            await wait_for(svc.notifier.leader.is_set)
            server.stop()
            deadline = time.monotonic() + 20
            while lines("alert notifications: Redis unavailable") < 3:  # three failed rounds
                assert time.monotonic() < deadline, "the delivery rounds never failed three times"
                svc.notifier.leader.set()  # a leader whose next lease check (every 20 s) has not come yet
                await asyncio.sleep(0.05)
            assert lines("alert notifications: Redis unavailable", logging.WARNING) == 1
            server.start()
            await wait_for(lambda: lines("alert notifications: Redis answers again") == 1, within_s=20)
        finally:
            await svc.stop()
            await client.aclose()
