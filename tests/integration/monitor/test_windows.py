"""Drift windows against a real redis-server: sliding, minimum size, time-window reports."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.assembly import MonitorParts, assemble_monitor
from monitor.drift import DriftConfig, sliding
from monitor.monitor_settings import MonitorSettings
from monitor.reports import DriftReporter, ModelCatalog, ReferencePolicy, WindowDriftReport
from monitor.window_state import WindowState
from monitor.windows import WindowPolicy
from shared.events import FLOAT, decode_predictions
from shared.series import SeriesOrdinals
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_predictions, register

STEP = 100


async def start_worker(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> MonitorParts:
    """A worker built through the existing call sites; windows come from the environment."""
    env.setdefault("DRIFTWATCH_WINDOW_SIZE", str(STEP))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=STEP, DRIFTWATCH_READ_BLOCK_MS=50)
    worker = assemble_monitor(aredis, settings, "test-consumer")
    worker.start()
    return worker


@pytest.fixture
async def stop_later() -> AsyncIterator[list[MonitorParts]]:
    workers: list[MonitorParts] = []
    yield workers
    for w in workers:
        await w.stop()


async def reports_of(aredis: aioredis.Redis, worker: MonitorParts, n: int) -> list:  # type: ignore[type-arg]
    async def done() -> bool:
        return bool(await aredis.zcard(worker.keys.for_version("1").drift_index) == n)

    await eventually(done)
    return list(reversed(await worker.reports.history(100)))


async def test_sliding_windows_report_every_step_over_the_last_span(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorParts],
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
    keys = worker.keys.for_version("1")
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
    state = WindowState(aredis, keys, policy, 3600)  # the ingest script alone, no worker
    await state.ingest_predictions(decode_predictions(fields), [f[b"x"] for f in fields])
    catalog = ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy())
    a = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    b = DriftReporter(aredis, keys, catalog, 100, windows=policy)
    r0 = await a.report_window(0, "1")
    r1 = await a.report_window(1, "1")  # a: builds window 1 (steps 0-1) in full
    r2 = await b.report_window(2, "1")  # b never saw window 1: full build of steps 1-2
    assert r0 is not None and r1 is not None and r2 is not None
    assert (a.incremental_steps, b.incremental_steps) == (0, 0)
    assert (r1.window_first, r2.window_first) == (0, 1)
    assert await b.report_window(2, "1") is None  # stored already: nothing twice
    assert [await aredis.llen(keys.window_rows(w)) for w in range(3)] == [0, 0, STEP]


async def _sliding_reports(
    aredis: aioredis.Redis, model_dir: Path, x: np.ndarray
) -> tuple[list[WindowDriftReport], DriftReporter]:
    """Windows 0-4 of ``x`` (sliding, 300 rows by steps of 100) reported by one reporter, on a fresh series."""
    await aredis.flushdb()
    _, keys = await register(aredis, model_dir)
    policy = WindowPolicy("sliding", step=STEP, size=3 * STEP)
    await publish_predictions(aredis, keys, x, np.arange(len(x)) % 10)
    fields = [f for _, f in await aredis.xrange(keys.predictions)]
    await WindowState(aredis, keys, policy, 3600).ingest_predictions(
        decode_predictions(fields), [f[b"x"] for f in fields]
    )
    reporter = DriftReporter(aredis, keys, ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy()), 100,
                             windows=policy)
    reports = [await reporter.report_window(w, "1") for w in range(5)]
    assert all(r is not None for r in reports)
    return [r for r in reports if r is not None], reporter


async def test_sliding_reports_are_the_same_whether_ks_is_stepped_or_tested_whole(
    aredis: aioredis.Redis, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reporter steps a SlidingKS only where that beats testing the window whole
    (``incremental_pays``): not for 300 rows by steps of 100 against the model's reference.
    Forced to step (the ratio at 0), the reports say the same."""
    x = holdout_rows(model_dir, 5 * STEP, seed=5)
    x[400:500] += 6.0  # the fifth step drifts
    whole, reporter = await _sliding_reports(aredis, model_dir, x)
    assert (reporter.incremental_steps, reporter.ks_steps) == (2, 0)  # windows 3, 4: one new step read, KS whole
    monkeypatch.setattr(sliding, "INCREMENTAL_MIN_RATIO", 0)
    stepped, reporter = await _sliding_reports(aredis, model_dir, x)
    assert (reporter.incremental_steps, reporter.ks_steps) == (2, 2)
    assert whole[4].dataset_drift

    def same_fields(report: WindowDriftReport) -> dict[str, object]:
        # Not compared here: when it was computed, and the prediction times of the rows (each
        # run publishes them anew); effect sizes apart, below.
        out = report.model_dump(exclude={"computed_at", "window_start", "window_end"})
        for feature in out["features"]:
            feature["effect_size"] = None
        return out

    assert [same_fields(r) for r in whole] == [same_fields(r) for r in stepped]
    for a, b in zip(whole, stepped, strict=True):
        for fa, fb in zip(a.features, b.features, strict=True):
            if fb.effect_size is None:  # windows tested with a SlidingKS (2-4): significant features only
                assert not fb.significant and a.window >= 2
            else:  # the same up to rounding (summed in another order)
                assert fb.effect_size == pytest.approx(fa.effect_size, rel=1e-9)
    assert all(f.effect_size is not None for r in whole for f in r.features)


async def test_count_windows_below_the_minimum_report_insufficient_data(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorParts],
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
    series = worker.keys.for_version("1")
    assert not await aredis.exists(series.window_rows(0), series.window_rows(1))


async def test_time_windows_take_their_bounds_from_the_index(aredis: aioredis.Redis, model_dir: Path) -> None:
    """The reporter side of time windows, on state written as the time-indexed ingest script would."""
    _, keys = await register(aredis, model_dir)
    await SeriesOrdinals(aredis, keys).ordinal("1")  # the series exists (the consumer makes it on a first event)
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
    await SeriesOrdinals(aredis, keys).ordinal("1")  # the series exists (the consumer makes it on a first event)
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
            pipe.zadd(reporter.store("1").open_windows, {str(window): window})
            await pipe.execute()
    reports = await reporter.report_pending()
    assert [r.window for r in reports] == [now_window - 2]  # the current one is still open
    assert await aredis.zrange(reporter.store("1").open_windows, 0, -1) == [str(now_window).encode()]
    assert int(await aredis.get(reporter.store("1").closed_upto)) >= now_window - 2


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        WindowPolicy("sliding", step=300, size=1000)
    with pytest.raises(ValueError):
        WindowPolicy("count", step=100, size=200)
    assert WindowPolicy("sliding", step=100, size=1000).members(3) == [0, 1, 2, 3]
    assert WindowPolicy("sliding", step=100, size=300).members(10) == [8, 9, 10]
    with pytest.raises(ValueError, match="multiple of its step of 60 s"):
        WindowPolicy("sliding-time", seconds=60, sliding_seconds=150)
    timed = WindowPolicy("sliding-time", seconds=60, sliding_seconds=300)
    assert (timed.span, timed.window_ms, timed.members(10)) == (5, 60_000, [6, 7, 8, 9, 10])
    start, end = timed.time_bounds(10)
    assert (start.timestamp(), end.timestamp()) == (6 * 60, 11 * 60)


def test_sliding_time_windows_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTWATCH_WINDOW_MODE", "sliding-time")
    monkeypatch.setenv("DRIFTWATCH_WINDOW_SECONDS", "120")
    monkeypatch.setenv("DRIFTWATCH_SLIDING_SECONDS", "3600")
    policy = WindowPolicy.from_settings(MonitorSettings())
    assert (policy.mode, policy.span, policy.window_ms) == ("sliding-time", 30, 120_000)


async def test_time_windows_through_the_ingest_script(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorParts],
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
    worker.worker.stats_interval_s = 0.5
    stop_later.append(worker)
    keys = worker.keys.for_version("1")
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


async def test_sliding_time_windows_span_their_slots_and_release_rows_no_window_needs(
    aredis: aioredis.Redis, model_dir: Path
) -> None:
    """Slots of 60 s, windows of 180 s: window w holds the rows of slots w-2..w (empty
    slots included in its span), shifted slots leave the window after three slots,
    and a slot's rows go once no window can still use them."""
    from scipy.stats import ks_2samp

    from shared.events import encode_predictions
    from shared.ids import new_prediction_ids
    from shared.model_metadata import Reference

    _, keys = await register(aredis, model_dir)
    policy = WindowPolicy("sliding-time", seconds=60, sliding_seconds=180, min_size=30)
    slot_ms = 60_000
    base = int(time.time() * 1000) // slot_ms - 100  # slots long past: no waiting
    state = WindowState(aredis, keys, policy, 3600)
    reporter = DriftReporter(aredis, keys, ModelCatalog(aredis, keys, DriftConfig(), ReferencePolicy()), 100,
                             windows=policy)

    def slot(offset: int, seed: int, shift: float = 0.0) -> list[dict[bytes, bytes]]:
        rows = holdout_rows(model_dir, 40, seed=seed) + np.float32(shift)
        at = (base + offset) * slot_ms + 1_000
        probs = np.eye(10, dtype=np.float32)[np.zeros(40, dtype=np.int64)]
        return encode_predictions(new_prediction_ids(40, at), at, keys.model, "1", rows,
                                  np.zeros(40, np.int64), probs)

    async def ingest(fields: list[dict[bytes, bytes]]) -> None:
        await state.ingest_predictions(decode_predictions(fields), [f[b"x"] for f in fields])

    async def lengths(offsets: range) -> list[int]:
        return [int(await aredis.llen(keys.window_rows(base + k))) for k in offsets]

    shifted = {1: slot(1, seed=11, shift=6.0), 2: slot(2, seed=12, shift=6.0)}
    await ingest([*slot(0, seed=10), *shifted[1], *shifted[2], *slot(3, seed=13)])  # closes slots 0-2
    reports = [await reporter.report_window(base + k, "1") for k in range(3)]
    assert [(r.window - base, r.window_size, r.window_first - base) for r in reports if r] == [
        (0, 40, -2), (1, 80, -1), (2, 120, 0)]
    assert reports[0] is not None and reports[0].window_start.timestamp() * 1000 == (base - 2) * slot_ms
    assert reports[0].window_end.timestamp() * 1000 == (base + 1) * slot_ms
    # Slot 0 is needed by no open window any more; slots 1-2 are, by window 3 (still open).
    assert await lengths(range(4)) == [0, 40, 40, 40]

    await ingest(slot(6, seed=16))  # closes slot 3; slots 4 and 5 stay empty
    later = await reporter.report_pending()  # closes slot 6 too: its time is long over
    assert [(r.window - base, r.window_size, r.window_first - base) for r in later] == [(3, 120, 1), (6, 40, 4)]
    drifted = {r.window - base: r.dataset_drift for r in [*reports, *later] if r}
    assert drifted == {0: False, 1: True, 2: True, 3: True, 6: False}  # the shift leaves after three slots

    # Window 3 is slots 1-3: its statistics are scipy's on exactly those rows.
    window3 = np.concatenate([decode_predictions(f).features for f in (shifted[1], shifted[2], slot(3, seed=13))])
    reference = Reference.load(model_dir).features
    for feature in later[0].features[:8]:
        column = int(feature.name.split("_")[1]) * 8 + int(feature.name.split("_")[2])
        expected = ks_2samp(reference[:, column], window3[:, column]).statistic
        assert feature.statistic == pytest.approx(expected, abs=1e-12)

    assert await lengths(range(7)) == [0] * 7  # every slot's rows released
    assert await aredis.zcard(keys.windows_retained) == 0
    assert await reporter.report_window(base + 3, "1") is None  # stored already: nothing twice


async def test_the_worker_reports_sliding_time_windows_configured_in_the_environment(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch,
    stop_later: list[MonitorParts],
) -> None:
    """Slots of 1 s, windows of 2 s, through the consumer and the worker's closing of quiet slots."""
    import asyncio

    from shared.events import encode_predictions
    from shared.ids import new_prediction_ids

    worker = await start_worker(aredis, redis_url, model_dir, monkeypatch, DRIFTWATCH_WINDOW_MODE="sliding-time",
                                DRIFTWATCH_WINDOW_SECONDS="1", DRIFTWATCH_SLIDING_SECONDS="2",
                                DRIFTWATCH_WINDOW_GRACE_S="0.3")
    worker.worker.stats_interval_s = 0.2
    stop_later.append(worker)
    x = holdout_rows(model_dir, 90)

    async def publish(rows: np.ndarray) -> int:
        at = int(time.time() * 1000)
        probs = np.eye(10, dtype=np.float32)[np.zeros(len(rows), dtype=np.int64)]
        for entry in encode_predictions(new_prediction_ids(len(rows), at), at, worker.keys.model, "1", rows,
                                        np.zeros(len(rows), np.int64), probs):
            await aredis.xadd(worker.keys.predictions, entry)
        return at // 1000

    await asyncio.sleep(1 - time.time() % 1 + 0.05)  # the start of a fresh slot
    first = await publish(x[:40])
    await asyncio.sleep(1 - time.time() % 1 + 0.05)
    assert await publish(x[40:]) == first + 1  # closes slot `first`
    reports = await reports_of(aredis, worker, 2)  # slot `first + 1` closes when its time and grace are over
    assert [(r.window - first, r.window_size, r.window_mode) for r in reports] == [
        (0, 40, "sliding-time"), (1, 90, "sliding-time")]
    assert reports[1].window_start.timestamp() == first and reports[1].window_end.timestamp() == first + 2
