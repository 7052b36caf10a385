"""Prediction blocks: the packed-columns script writes exactly the entries the generic codec describes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis

from model_service.publisher import EventPublisher, _Batch
from model_service.spill import SpillFile
from model_service.stream_writes import BlockHeader, PredictionBlock, predictions_script_args
from shared.events import decode_predictions, encode_feedback
from shared.ids import new_prediction_ids

PREDICTIONS = "driftwatch:{blocks}:predictions"
FEEDBACK = "driftwatch:{blocks}:feedback"
pytestmark = pytest.mark.timeout(60)


def block(seed: int, rows: int, *, version: str = "3", classes: int = 12, features: int = 5) -> PredictionBlock:
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(classes), rows).astype(np.float32)
    stamp = 1_700_000_000_000 + seed
    return PredictionBlock(
        BlockHeader(PREDICTIONS, "mlp", version), new_prediction_ids(rows, stamp), stamp,
        rng.normal(size=(rows, features)).astype(np.float32), probabilities.argmax(axis=1), probabilities,
    )


async def fields_on(client: aioredis.Redis, stream: str) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in await client.xrange(stream)]


async def drain(publisher: EventPublisher) -> None:
    publisher.start()
    for _ in range(300):
        if not publisher.queued:
            break
        await asyncio.sleep(0.01)
    await publisher.close()


async def test_blocks_write_the_same_entries_as_the_generic_codec(aredis: aioredis.Redis) -> None:
    blocks = [block(1, 1), block(2, 7), block(3, 1)]  # several requests, each with its own timestamp
    publisher = EventPublisher(aredis, maxlen=1_000)
    for b in blocks:
        publisher.submit_predictions(b)
    await drain(publisher)

    expected = [fields for b in blocks for _, fields in b.entries()]
    assert await fields_on(aredis, PREDICTIONS) == expected  # field for field, in order
    decoded = decode_predictions(expected)
    assert decoded.timestamps_ms.tolist() == [1_700_000_000_001] + [1_700_000_000_002] * 7 + [1_700_000_000_003]
    np.testing.assert_array_equal(decoded.features, np.concatenate([b.features for b in blocks]))
    assert publisher.stats.published == 9


async def test_a_block_batch_is_written_once_however_often_it_is_retried(aredis: aioredis.Redis) -> None:
    publisher = EventPublisher(aredis, maxlen=1_000)
    batch = _Batch(b"0123456789abcdef", [], [block(4, 3)])
    assert await publisher._write(batch) is True
    assert await publisher._write(batch) is False
    assert len(await fields_on(aredis, PREDICTIONS)) == 3


async def test_blocks_and_other_entries_keep_their_order_across_batches(aredis: aioredis.Redis) -> None:
    publisher = EventPublisher(aredis, maxlen=1_000, batch_size=4)
    first, second, other_version = block(5, 3), block(6, 3), block(7, 2, version="4")
    label = encode_feedback(first.ids[0], 2, 1_700_000_000_100)
    publisher.submit_predictions(first)
    publisher.submit([(FEEDBACK, label)])
    publisher.submit_predictions(second)
    publisher.submit_predictions(other_version)
    assert publisher.queued == 9
    await drain(publisher)

    predictions = decode_predictions(await fields_on(aredis, PREDICTIONS))
    assert predictions.ids == [*first.ids, *second.ids, *other_version.ids]
    assert predictions.model_versions == ["3"] * 6 + ["4"] * 2
    assert await fields_on(aredis, FEEDBACK) == [label]
    assert publisher.queued == 0 and publisher.stats.published == 9


async def test_blocks_of_other_widths_are_written_apart(aredis: aioredis.Redis) -> None:
    # One script call splits rows by the first block's widths: a block with
    # other widths must not join it, or its rows would be cut wrongly.
    publisher = EventPublisher(aredis, maxlen=1_000)
    blocks = [block(13, 2), block(14, 2, features=7), block(15, 2, classes=3), block(16, 2)]
    for b in blocks:
        publisher.submit_predictions(b)
    await drain(publisher)
    assert await fields_on(aredis, PREDICTIONS) == [fields for b in blocks for _, fields in b.entries()]


async def test_a_full_queue_keeps_the_rows_that_fit_and_counts_the_rest(aredis: aioredis.Redis) -> None:
    publisher = EventPublisher(aredis, maxlen=1_000, queue_max=5)
    big = block(8, 4)
    assert publisher.submit_predictions(big) == 0
    assert publisher.submit_predictions(block(9, 3)) == 2  # one row fits
    assert publisher.submit_predictions(block(10, 1)) == 1
    assert publisher.queued == 5 and publisher.stats.dropped_queue_full == 3
    await drain(publisher)
    assert len(await fields_on(aredis, PREDICTIONS)) == 5


async def test_blocks_spilled_while_redis_is_away_replay_as_the_same_entries(
    aredis: aioredis.Redis, tmp_path: Path
) -> None:
    spill = SpillFile(tmp_path / "blocks.spill", max_bytes=1 << 20)
    publisher = EventPublisher(aredis, maxlen=1_000, spill=spill)
    blocks = [block(11, 2), block(12, 5)]
    for b in blocks:
        publisher.submit_predictions(b)
    await publisher.close()  # never started: everything goes to the spill file
    assert publisher.stats.spilled == 7

    replay = SpillFile(tmp_path / "blocks.spill", max_bytes=1 << 20)
    assert replay.pending_events == 7
    await drain(EventPublisher(aredis, maxlen=1_000, spill=replay))
    assert await fields_on(aredis, PREDICTIONS) == [fields for b in blocks for _, fields in b.entries()]


def test_ids_of_another_width_are_refused() -> None:
    bad = PredictionBlock(BlockHeader(PREDICTIONS, "mlp", "1"), ["short"], 0, np.zeros((1, 2), np.float32),
                          np.zeros(1, np.int64), np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="32 characters"):
        predictions_script_args([bad])


def logged_block(rows: int, *, probabilities: bool) -> PredictionBlock:
    """Rows logged from another service: each with its own time, missing values, maybe no probabilities."""
    rng = np.random.default_rng(rows)
    features = rng.normal(size=(rows, 4)).astype(np.float32)
    features[0, 1] = np.nan
    stamps = 1_700_000_000_000 + np.arange(rows, dtype=np.int64) * 1_000
    p = rng.dirichlet(np.ones(3), rows).astype(np.float32) if probabilities else np.zeros((rows, 0), np.float32)
    ids = [new_prediction_ids(1, int(t))[0] for t in stamps]
    return PredictionBlock(BlockHeader(PREDICTIONS, "logged", "2"), ids, stamps, features,
                           rng.integers(0, 3, rows), p)


@pytest.mark.parametrize("probabilities", [True, False])
async def test_logged_blocks_write_their_rows_times_and_empty_probabilities(
    aredis: aioredis.Redis, tmp_path: Path, probabilities: bool
) -> None:
    blocks = [logged_block(3, probabilities=probabilities), logged_block(2, probabilities=probabilities)]
    publisher = EventPublisher(aredis, maxlen=1_000)
    for b in blocks:
        publisher.submit_predictions(b)
    await drain(publisher)
    written = await fields_on(aredis, PREDICTIONS)
    assert written == [fields for b in blocks for _, fields in b.entries()]  # the script and the codec agree
    decoded = decode_predictions(written)
    assert decoded.timestamps_ms.tolist() == [*blocks[0].timestamp_ms.tolist(), *blocks[1].timestamp_ms.tolist()]
    assert decoded.probabilities.shape == (5, 3 if probabilities else 0)
    assert np.isnan(decoded.features[0, 1]) and np.isnan(decoded.features[3, 1])

    # The same through the spill file and its replay.
    await aredis.delete(PREDICTIONS)
    spill = SpillFile(tmp_path / "logged.spill", max_bytes=1 << 20)
    spilled = EventPublisher(aredis, maxlen=1_000, spill=spill)
    for b in blocks:
        spilled.submit_predictions(b)
    await spilled.close()
    await drain(EventPublisher(aredis, maxlen=1_000, spill=SpillFile(tmp_path / "logged.spill", max_bytes=1 << 20)))
    assert await fields_on(aredis, PREDICTIONS) == written


async def test_a_full_queue_counts_its_drops_for_the_model_of_each_stream(
    aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED")  # tests/conftest.py disables the SDK for app tests
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from shared.telemetry import ModelServiceMetrics

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("t")
    metrics = ModelServiceMetrics(meter, model="served", model_version="1")
    publisher = EventPublisher(aredis, maxlen=1_000, queue_max=2, metrics=metrics)
    publisher.submit_predictions(logged_block(3, probabilities=False))
    publisher.submit([(FEEDBACK, encode_feedback("0" * 32, 1, 5))])
    await drain(publisher)
    data = reader.get_metrics_data()
    assert data is not None
    points = {
        (m.name, p.attributes["model"], p.attributes["stream"], p.attributes.get("reason")): p.value
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
        if m.name.startswith("driftwatch.events.") and m.name != "driftwatch.events.queued"
        for p in m.data.data_points
    }
    assert points[("driftwatch.events.dropped", "blocks", "predictions", "queue_full")] == 1
    assert points[("driftwatch.events.dropped", "blocks", "feedback", "queue_full")] == 1
    assert points[("driftwatch.events.published", "blocks", "predictions", None)] == 2
