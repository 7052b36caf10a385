"""The monitor against a real redis-server: windows, acks, idempotency, joins, dead letters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from monitor.performance_report import performance_report
from monitor.window_state import join_slots
from shared.keys import CONSUMER_GROUP
from tests.integration.monitor.helpers import eventually, holdout_rows, publish_feedback, publish_predictions, register

WINDOW = 200


@pytest.fixture
async def worker(aredis: aioredis.Redis, redis_url: str, model_dir: Path) -> AsyncIterator[MonitorParts]:
    await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)
    monitor = assemble_monitor(aredis, settings, "test-consumer")
    monitor.start()
    yield monitor
    await monitor.stop()


async def test_n_events_make_the_right_windows_and_are_all_acked(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    keys = worker.keys.for_version("1")
    x = holdout_rows(model_dir, 2 * WINDOW + 50)
    await publish_predictions(aredis, keys, x, np.zeros(len(x), dtype=np.int64))

    await eventually(lambda: worker.consumer.stats.predictions == len(x))
    await eventually(lambda: aredis.zcard(keys.drift_index))

    async def two_reports() -> bool:
        return await aredis.zcard(keys.drift_index) == 2

    await eventually(two_reports)
    assert int(await aredis.get(keys.ingested)) == len(x)
    assert await aredis.llen(keys.window_rows(2)) == 50  # the window in progress
    assert not await aredis.exists(keys.window_rows(0))  # reported windows drop their rows
    pending = await aredis.xpending(keys.predictions, CONSUMER_GROUP)
    assert pending["pending"] == 0
    reports = await worker.reports.history(10)
    assert [r.window for r in reports] == [1, 0]
    assert all(r.window_size == WINDOW for r in reports)


async def test_redelivered_events_change_no_count(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    keys = worker.keys.for_version("1")
    x = holdout_rows(model_dir, 30)
    ids = await publish_predictions(aredis, keys, x, np.arange(30) % 10)
    await publish_feedback(aredis, keys, ids, list(np.arange(30) % 10))
    await eventually(lambda: worker.consumer.stats.feedback == 30)

    # Deliver everything again, as after a crash between the state update and the ack.
    for stream in (keys.predictions, keys.feedback):
        entries = await aredis.xrange(stream)
        await worker.consumer.process(stream, entries)
    assert int(await aredis.get(keys.ingested)) == 30
    report = await performance_report(aredis, keys, [str(i) for i in range(10)], worker.window_index)
    assert report.labelled == 30
    assert report.feedback_duplicates == 30


async def test_feedback_before_its_prediction_is_joined(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    keys = worker.keys.for_version("1")
    from shared.ids import new_prediction_ids

    n = 40
    x = holdout_rows(model_dir, n)
    predicted = np.arange(n) % 10
    labels = predicted.copy()
    labels[:10] = (labels[:10] + 1) % 10  # 10 wrong out of 40
    # Feedback first: ids are made before the predictions are published.
    ids = new_prediction_ids(n)
    await publish_feedback(aredis, keys, ids, labels.tolist())
    await eventually(lambda: worker.consumer.stats.feedback == n)

    import time

    from shared.events import encode_predictions

    probs = np.eye(10, dtype=np.float32)[predicted]
    for entry in encode_predictions(ids, int(time.time() * 1000), keys.model, "1", x, predicted, probs):
        await aredis.xadd(keys.predictions, entry)
    await eventually(lambda: worker.consumer.stats.predictions == n)

    report = await performance_report(aredis, keys, [str(i) for i in range(10)], worker.window_index)
    assert report.labelled == n
    assert report.accuracy == pytest.approx(30 / 40)
    assert report.label_coverage == 1.0
    assert report.feedback_unmatched == 0
    confusion = np.array(report.confusion_matrix)
    assert confusion.sum() == n and np.trace(confusion) == 30


async def test_undecodable_entry_goes_to_the_dlq_and_the_rest_flows(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    keys = worker.keys.for_version("1")
    x = holdout_rows(model_dir, 10)
    await publish_predictions(aredis, keys, x[:5], np.zeros(5, dtype=np.int64))
    await aredis.xadd(keys.predictions, {"v": "1", "id": "garbage"})
    await aredis.xadd(keys.predictions, {"v": "1", "id": "f" * 32, "ts": "1", "m": "m", "mv": "1",
                                         "x": b"\x00" * 12, "y": "0", "p": b"\x00" * 40})  # 3 features, not 64
    await publish_predictions(aredis, keys, x[5:], np.zeros(5, dtype=np.int64))

    await eventually(lambda: worker.consumer.stats.predictions == 10)
    await eventually(lambda: worker.consumer.stats.dead_lettered == 2)
    dead = await aredis.xrange(keys.dlq)
    assert len(dead) == 2
    # In one read or two (the read linger may batch them), the same two entries, each with its reason.
    reasons = {fields[b"entry_id"]: fields[b"reason"] for _, fields in dead}
    garbage, narrow = sorted(reasons, key=lambda entry_id: [int(p) for p in entry_id.split(b"-")])
    assert b"missing field" in reasons[garbage]
    assert b"features" in reasons[narrow]
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0


async def test_labels_without_a_prediction_wait_then_expire_counted(
    worker: MonitorParts, aredis: aioredis.Redis, model_dir: Path
) -> None:
    keys = worker.keys.for_version("1")
    from shared.ids import new_prediction_ids

    x = holdout_rows(model_dir, 4)
    ids = await publish_predictions(aredis, keys, x, np.zeros(4, dtype=np.int64))
    orphans = new_prediction_ids(3)  # labels for predictions that never come
    await publish_feedback(aredis, keys, [*ids[:2], *orphans], [0, 0, 1, 1, 1])
    await eventually(lambda: worker.consumer.stats.feedback == 5)

    report = await performance_report(aredis, keys, [str(i) for i in range(10)], worker.window_index)
    assert (report.labelled, report.feedback_waiting, report.feedback_expired) == (2, 3, 0)

    # One orphan's prediction turns up late after all: it joins, one fewer waits.
    import time as _time

    from shared.events import encode_predictions

    probs = np.eye(10, dtype=np.float32)[[1]]
    entry = encode_predictions([orphans[0]], int(_time.time() * 1000), keys.model, "1", x[:1], np.array([1]), probs)
    await aredis.xadd(keys.predictions, entry[0])
    await eventually(lambda: worker.consumer.stats.predictions == 5)
    report = await performance_report(aredis, keys, [str(i) for i in range(10)], worker.window_index)
    assert (report.labelled, report.feedback_waiting, report.feedback_expired) == (3, 2, 0)

    # The retention passes for the others (their bucket expires): counted as expired.
    slots = join_slots(orphans[1:], worker.consumer.state.join_shards)
    await aredis.delete(*(keys.joined_labels(b, s) for b, s in zip(slots.buckets, slots.shards, strict=True)),
                        *(keys.waiting_labels(b) for b in slots.buckets))
    report = await performance_report(aredis, keys, [str(i) for i in range(10)], worker.window_index)
    assert (report.labelled, report.feedback_waiting, report.feedback_expired) == (3, 0, 2)
    assert report.feedback_unmatched == 2


async def test_every_replica_exports_the_newest_report_whoever_made_it(
    aredis: aioredis.Redis, redis_url: str, model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a replica keeps showing the drift of the last window it closed, and the
    alert rules' ``max by (model)`` over replicas never resolves."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from driftwatch.cli.simulate import Scenario, make_traffic
    from shared.telemetry import MonitorMetrics

    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    _, keys = await register(aredis, model_dir)
    settings = MonitorSettings(REDIS_URL=redis_url, DRIFTWATCH_WINDOW_SIZE=WINDOW, DRIFTWATCH_READ_BLOCK_MS=50)
    replicas = []
    for name in ("a", "b"):
        reader = InMemoryMetricReader()
        metrics = MonitorMetrics(MeterProvider(metric_readers=[reader]).get_meter("driftwatch"), model=keys.model)
        replicas.append((assemble_monitor(aredis, settings, name, metrics=metrics, stats_interval_s=3600), reader))
    for worker, _ in replicas:
        worker.start()
    try:
        with np.load(model_dir / "holdout.npz") as holdout:
            x, y = holdout["features"], holdout["labels"]
        for scenario in (Scenario.covariate_shift, Scenario.none):
            traffic = make_traffic(scenario, x, y, WINDOW, seed=5, window=WINDOW)
            await publish_predictions(aredis, keys, traffic.features, traffic.labels)

        async def two_reports() -> bool:
            return await aredis.zcard(keys.drift_index) == 2

        await eventually(two_reports)
        reports = {r.window: r for r in await replicas[0][0].reports.history(2)}
        assert reports[0].dataset_drift and not reports[1].dataset_drift
        for worker, _ in replicas:
            await worker.worker.refresh_stats()
    finally:
        for worker, _ in replicas:
            await worker.stop()

    for _, reader in replicas:
        data = reader.get_metrics_data()
        assert data is not None
        (detected,) = [m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                       if m.name == "driftwatch.dataset.drift.detected"]  # fmt: skip
        assert [p.value for p in detected.data.data_points] == [0]
