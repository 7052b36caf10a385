"""Drift windows against a real redis-server: sliding, minimum size, time-window reports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.drift import DriftConfig
from monitor.reports import DriftReporter, ModelCatalog, ReferencePolicy
from monitor.state import WindowState
from monitor.windows import WindowPolicy
from monitor.worker import MonitorWorker
from shared.events import FLOAT, decode_predictions
from shared.settings import MonitorSettings
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_predictions, register

STEP = 100


async def start_worker(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> MonitorWorker:
    """A worker built through the existing call sites; windows come from the environment."""
    env.setdefault("DRIFTWATCH_WINDOW_SIZE", str(STEP))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=STEP, DRIFTWATCH_READ_BLOCK_MS=50)
    worker = MonitorWorker(aredis, settings, "test-consumer")
    worker.start()
    return worker


@pytest.fixture
async def stop_later() -> AsyncIterator[list[MonitorWorker]]:
    workers: list[MonitorWorker] = []
    yield workers
    for w in workers:
        await w.stop()


async def reports_of(aredis: aioredis.Redis, worker: MonitorWorker, n: int) -> list:  # type: ignore[type-arg]
    async def done() -> bool:
        return bool(await aredis.zcard(worker.keys.drift_index) == n)

    await eventually(done)
    return list(reversed(await worker.reporter.history(100)))


async def test_sliding_windows_report_every_step_over_the_last_span(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorWorker],
) -> None:
    worker = await start_worker(
        aredis, redis_url, model_dir, monkeypatch,
        DRIFTWATCH_WINDOW_MODE="sliding", DRIFTWATCH_SLIDING_SIZE="300", DRIFTWATCH_MIN_WINDOW_SIZE="150",
    )
    stop_later.append(worker)
    assert worker.reporter.windows == WindowPolicy("sliding", step=STEP, size=300, min_size=150)
    x = holdout_rows(model_dir, 5 * STEP + 50)
    x[400:500] += 6.0  # the fifth step drifts
    classes = np.arange(len(x)) % 10
    await publish_predictions(aredis, worker.keys, x, classes)

    reports = await reports_of(aredis, worker, 5)
    keys = worker.keys
    assert [r.window for r in reports] == [0, 1, 2, 3, 4]
    assert [r.window_first for r in reports] == [0, 0, 0, 1, 2]
    assert [r.window_size for r in reports] == [100, 200, 300, 300, 300]
    assert reports[0].status == "insufficient_data"  # 100 rows < minimum 150
    assert reports[0].features == []
    assert {r.window_mode for r in reports} == {"sliding"}
    assert {r.window_step for r in reports} == {STEP}
    assert {r.min_window_size for r in reports} == {150}
    assert reports[4].dataset_drift  # the shifted step is in window 4 only
    # Windows 3 and 4 came from SlidingKS steps, not rebuilds.
    assert worker.reporter.incremental_steps == 2
    # Rows are gone only for steps no later window needs: 0, 1, 2 (step 3 is still in window 5).
    lengths = [await aredis.llen(keys.window_rows(w)) for w in range(6)]
    assert lengths == [0, 0, 0, STEP, STEP, 50]

    # Same numbers as a full test of the same rows (the incremental path leaves
    # the effect sizes of non-significant features out).
    _, detector = await worker.catalog.get("1")  # type: ignore[misc]
    for r in reports[2:]:
        lo = r.window_first * STEP
        full = detector.test(x[lo : (r.window + 1) * STEP], classes[lo : (r.window + 1) * STEP])
        assert [f.statistic for f in r.features] == [f.statistic for f in full.features]
        assert [f.p_value for f in r.features] == [f.p_value for f in full.features]
        assert r.drifted_features == full.drifted_features
        assert r.prediction_drift == full.prediction_drift
        for a, b in zip(r.features, full.features, strict=True):
            if a.significant:
                assert a.effect_size == pytest.approx(b.effect_size, rel=1e-9)


async def test_sliding_report_by_another_replica_is_rebuilt(aredis: aioredis.Redis, model_dir: Path) -> None:
    """A replica that did not report the previous step builds the window from its members."""
    _, keys = await register(aredis, model_dir)
    policy = WindowPolicy("sliding", step=STEP, size=200)
    x = holdout_rows(model_dir, 3 * STEP, seed=3)
    await publish_predictions(aredis, keys, x, np.zeros(len(x), dtype=np.int64))
    fields = [f for _, f in await aredis.xrange(keys.predictions)]
    state = WindowState(aredis, keys, STEP, 3600)  # the ingest script alone, no worker
    await state.ingest_predictions(decode_predictions(fields), [f[b"x"] for f in fields])
    catalog = ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy())
    a = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    b = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    r0 = await a.report_window(0)
    r1 = await a.report_window(1)  # a: builds window 1 (steps 0-1) in full
    r2 = await b.report_window(2)  # b never saw window 1: full build of steps 1-2
    assert r0 is not None and r1 is not None and r2 is not None
    assert (a.incremental_steps, b.incremental_steps) == (0, 0)
    assert (r1.window_first, r2.window_first) == (0, 1)
    assert await b.report_window(2) is None  # stored already: nothing twice
    assert [await aredis.llen(keys.window_rows(w)) for w in range(3)] == [0, 0, STEP]


async def test_count_windows_below_the_minimum_report_insufficient_data(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorWorker],
) -> None:
    worker = await start_worker(aredis, redis_url, model_dir, monkeypatch, DRIFTWATCH_MIN_WINDOW_SIZE="101")
    stop_later.append(worker)
    x = holdout_rows(model_dir, 2 * STEP)
    await publish_predictions(aredis, worker.keys, x, np.zeros(len(x), dtype=np.int64))
    reports = await reports_of(aredis, worker, 2)
    assert [(r.window, r.status, r.window_size, r.window_first) for r in reports] == [
        (0, "insufficient_data", STEP, 0), (1, "insufficient_data", STEP, 1)
    ]
    assert reports[0].window_mode == "count" and reports[0].reference_source == "training"
    assert not await aredis.exists(worker.keys.window_rows(0), worker.keys.window_rows(1))


async def test_time_windows_take_their_bounds_from_the_index(aredis: aioredis.Redis, model_dir: Path) -> None:
    """The reporter side of time windows, on state written as the time-indexed ingest script would."""
    _, keys = await register(aredis, model_dir)
    policy = WindowPolicy("time", step=STEP, size=STEP, seconds=60)
    x = holdout_rows(model_dir, 80)
    window = 29_000_000  # minute index of 2025-02-21T05:20Z
    async with aredis.pipeline(transaction=True) as pipe:
        pipe.rpush(keys.window_rows(window), *[row.astype(FLOAT).tobytes() for row in x])
        pipe.hset(keys.window_classes(window), mapping={"0": 80})
        pipe.hset(keys.window_meta(window), mapping={
            "model_version": "1", "first_ts": window * 60_000 + 5, "last_ts": window * 60_000 + 59_000})
        pipe.sadd(keys.windows_to_report, window)
        await pipe.execute()
    catalog = ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy())
    reporter = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    (report,) = await reporter.report_pending()
    assert report.window == window and report.window_mode == "time" and report.window_size == 80
    assert report.window_start.timestamp() == window * 60
    assert report.window_end.timestamp() == (window + 1) * 60
    assert not await aredis.exists(keys.window_rows(window))
    assert await aredis.smembers(keys.windows_to_report) == set()


async def test_elapsed_time_windows_close_without_a_later_event(aredis: aioredis.Redis, model_dir: Path) -> None:
    _, keys = await register(aredis, model_dir)
    policy = WindowPolicy("time", step=STEP, size=STEP, seconds=60)
    catalog = ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy())
    reporter = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    now_window = int(time.time()) // 60
    x = holdout_rows(model_dir, 40)
    for window in (now_window - 2, now_window):  # an old window still open, and the current one
        async with aredis.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.window_rows(window), *[row.tobytes() for row in x])
            pipe.hset(keys.window_classes(window), mapping={"1": 40})
            pipe.hset(keys.window_meta(window), mapping={"model_version": "1"})
            pipe.zadd(reporter.store.open_windows, {str(window): window})
            await pipe.execute()
    reports = await reporter.report_pending()
    assert [r.window for r in reports] == [now_window - 2]  # the current one is still open
    assert await aredis.zrange(reporter.store.open_windows, 0, -1) == [str(now_window).encode()]
    assert int(await aredis.get(reporter.store.closed_upto)) >= now_window - 2


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        WindowPolicy("sliding", step=300, size=1000)
    with pytest.raises(ValueError):
        WindowPolicy("count", step=100, size=200)
    assert WindowPolicy("sliding", step=100, size=1000).members(3) == [0, 1, 2, 3]
    assert WindowPolicy("sliding", step=100, size=300).members(10) == [8, 9, 10]


async def test_time_windows_through_the_ingest_script(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorWorker],
) -> None:
    """Predictions land in the time slot of their timestamp; a prediction in a later slot
    closes the earlier one, and a quiet slot closes once its time (plus grace) is over;
    a prediction for a closed slot is counted late and not tested."""
    import asyncio

    from shared.events import encode_predictions
    from shared.ids import new_prediction_ids

    slot_ms = 2_000
    worker = await start_worker(aredis, redis_url, model_dir, monkeypatch,
                                DRIFTWATCH_WINDOW_MODE="time", DRIFTWATCH_WINDOW_SECONDS="2")
    worker.stats_interval_s = 0.5
    stop_later.append(worker)
    keys = worker.keys
    x = holdout_rows(model_dir, 120)

    async def publish(rows: np.ndarray, at_ms: int) -> None:
        ids = new_prediction_ids(len(rows), at_ms)
        probs = np.eye(10, dtype=np.float32)[np.zeros(len(rows), dtype=np.int64)]
        for entry in encode_predictions(ids, at_ms, keys.model, "1", rows, np.zeros(len(rows), np.int64), probs):
            await aredis.xadd(keys.predictions, entry)

    first = int(time.time() * 1000) // slot_ms + 1
    await asyncio.sleep((first * slot_ms - time.time() * 1000) / 1000 + 0.05)  # the start of a fresh slot
    await publish(x[:50], int(time.time() * 1000))
    await asyncio.sleep((first + 1) * slot_ms / 1000 - time.time() + 0.05)
    await publish(x[50:110], int(time.time() * 1000))  # closes slot `first` at once
    reports = await reports_of(aredis, worker, 1)
    assert [(r.window, r.window_size, r.window_mode) for r in reports] == [(first, 50, "time")]
    assert reports[0].window_start.timestamp() * 1000 == first * slot_ms

    await publish(x[110:], first * slot_ms + 100)  # too late for its closed slot
    await eventually(lambda: worker.consumer.stats.predictions == 120)
    assert await aredis.hget(keys.windows_late, "predictions") == b"10"

    # Nothing more arrives: slot `first + 1` closes when its time and the grace are over.
    reports = await reports_of(aredis, worker, 2)
    assert [(r.window, r.window_size) for r in reports] == [(first, 50), (first + 1, 60)]
