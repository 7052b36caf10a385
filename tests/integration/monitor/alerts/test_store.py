"""AlertStore against a real redis-server: persistence, defaults, concurrent evaluation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from monitor.alerts.evaluator import Evaluation, evaluate
from monitor.alerts.instances import AlertStatus
from monitor.alerts.rules import AlertRule, default_rules
from monitor.alerts.snapshot import MetricSnapshot
from monitor.alerts.store import AlertStore
from shared.keys import Keys

KEYS = Keys("digits-mlp")
DRIFT = AlertRule.model_validate(
    {
        "name": "Drift",
        "metric": "dataset_drift_share",
        "op": ">",
        "value": 0.2,
        "for": {"windows": 2},
        "labels": {"severity": "warning"},
        "annotations": {"summary": "share {{ $value }}"},
    }
)


def snap(window: int, share: float) -> MetricSnapshot:
    return MetricSnapshot(window=window, at=1_000.0 + window, dataset_drift_share=share)


async def test_rules_and_states_survive_a_new_store(redis_url: str) -> None:
    first = aioredis.Redis.from_url(redis_url)
    store = AlertStore(first, KEYS)
    await store.replace_rules([DRIFT])
    await store.apply(snap(1, 0.5))
    await store.apply(snap(2, 0.5))
    await first.aclose()

    second = aioredis.Redis.from_url(redis_url, decode_responses=True)  # either client flavour works
    restarted = AlertStore(second, KEYS)
    assert await restarted.rules() == [DRIFT]
    (state,) = await restarted.states()
    assert state.state is AlertStatus.firing and state.labels["model"] == "digits-mlp"
    assert state.annotations == {"summary": "share 0.5"}
    history = await restarted.history()
    assert [(h.from_state, h.to_state) for h in history] == [
        (AlertStatus.pending, AlertStatus.firing),
        (AlertStatus.inactive, AlertStatus.pending),
    ]
    # The restarted store continues the episode where the old one left it.
    (resolved,) = await restarted.apply(snap(3, 0.0))
    assert (resolved.from_state, resolved.to_state) == (AlertStatus.firing, AlertStatus.resolved)
    await second.aclose()


async def test_resolved_alerts_are_shown_for_the_retention_then_pruned(aredis: aioredis.Redis) -> None:
    store = AlertStore(aredis, KEYS, resolved_retention_s=600)
    await store.replace_rules([DRIFT])
    for window, share in ((1, 0.5), (2, 0.5), (3, 0.0)):
        await store.apply(snap(window, share))
    ended = snap(3, 0.0).at
    (shown,) = await store.states(now=ended + 599)
    assert shown.state is AlertStatus.resolved
    # Past the retention it is no longer shown, and the next evaluation deletes it from Redis.
    assert await store.states(now=ended + 601) == []
    await store.apply(MetricSnapshot(window=4, at=ended + 601, dataset_drift_share=0.0))
    assert await aredis.hlen(KEYS.alert_states) == 0


async def test_defaults_install_once_and_deleted_rules_stay_deleted(aredis: aioredis.Redis) -> None:
    store = AlertStore(aredis, KEYS)
    assert await store.ensure_defaults() is True
    names = [r.name for r in default_rules()]
    assert sorted(r.name for r in await store.rules()) == sorted(names)
    assert await store.delete_rule("StreamLag") is True
    assert await store.delete_rule("StreamLag") is False
    assert await store.ensure_defaults() is False
    assert "StreamLag" not in [r.name for r in await store.rules()]
    await store.replace_rules([])
    assert await store.ensure_defaults() is False
    assert await store.rules() == []


async def test_put_get_delete_rule(aredis: aioredis.Redis) -> None:
    store = AlertStore(aredis, KEYS)
    assert await store.get_rule("Drift") is None
    assert await store.put_rule(DRIFT) is True
    changed = DRIFT.model_copy(update={"value": 0.3})
    assert await store.put_rule(changed) is False
    assert await store.get_rule("Drift") == changed
    assert await store.get_rule("#initialized") is None
    assert await store.ensure_defaults() is False  # a user write counts as "rules were set"


async def test_concurrent_replicas_record_one_transition(redis_url: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(4)]
    stores = [AlertStore(c, KEYS) for c in clients]
    await stores[0].replace_rules([DRIFT.model_copy(update={"for_": None})])
    for window in range(3):
        share = 0.5 if window < 2 else 0.0
        results = await asyncio.gather(*(s.apply(snap(window, share)) for s in stores))
        recorded = [t for r in results for t in r]
        expected = 1 if window in (0, 2) else 0
        assert len(recorded) == expected, (window, recorded)
    history = await stores[0].history()
    assert [(h.from_state, h.to_state) for h in reversed(history)] == [
        (AlertStatus.inactive, AlertStatus.firing),
        (AlertStatus.firing, AlertStatus.resolved),
    ]
    for c in clients:
        await c.aclose()


async def test_history_is_capped(aredis: aioredis.Redis) -> None:
    store = AlertStore(aredis, KEYS, history_maxlen=10)
    await store.replace_rules([DRIFT.model_copy(update={"for_": None})])
    for window in range(400):
        await store.apply(snap(window, 0.5 if window % 2 == 0 else 0.0))
    assert await aredis.xlen(KEYS.alert_history) < 400
    assert len(await store.history(limit=5)) == 5


async def test_a_conflicting_write_makes_evaluation_retry(
    aredis: aioredis.Redis, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another replica's write between our read and our EXEC aborts ours; the retry sees it."""
    store = AlertStore(aredis, KEYS)
    await store.replace_rules([DRIFT.model_copy(update={"for_": None})])
    calls: list[int] = []

    def racing_evaluate(*args: Any, **kwargs: Any) -> Evaluation:
        calls.append(1)
        if len(calls) == 1:
            # The other replica records the same window first (synchronously, mid-transaction).
            other = evaluate(*args, **kwargs)
            redis_client.hset(KEYS.alert_states, mapping={fp: s.model_dump_json() for fp, s in other.states.items()})
        return evaluate(*args, **kwargs)

    monkeypatch.setattr("monitor.alerts.store.evaluate", racing_evaluate)
    assert await store.apply(snap(1, 0.9)) == []  # the retry found the transition already made
    assert len(calls) == 2
    (state,) = await store.states()
    assert state.state is AlertStatus.firing
