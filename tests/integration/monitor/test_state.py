"""The ingest script against a real redis-server: one series per version, atomic ack, redelivery."""

from __future__ import annotations

import time

import numpy as np
import redis.asyncio as aioredis

from monitor.window_state import WindowState, split_window_rows
from monitor.windows import WindowPolicy
from shared.events import decode_predictions, encode_predictions
from shared.ids import new_prediction_ids
from shared.keys import CONSUMER_GROUP, Keys


async def test_one_script_stores_state_and_acks(aredis: aioredis.Redis) -> None:
    keys = Keys("state-test")
    await aredis.xgroup_create(keys.predictions, CONSUMER_GROUP, id="0", mkstream=True)
    n = 6
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4)
    probs = np.eye(10, dtype=np.float32)[[1, 2, 2, 3, 3, 3]]
    now = int(time.time() * 1000)
    entries = encode_predictions(new_prediction_ids(n, now), now, keys.model, "1", x, probs.argmax(1), probs)
    entries[-1][b"mv"] = b"2"  # the last event comes from a newer model version: its own series
    for entry in entries:
        await aredis.xadd(keys.predictions, entry)
    read = (await aredis.xreadgroup(CONSUMER_GROUP, "c", {keys.predictions: ">"}))[0][1]
    batch = decode_predictions([f for _, f in read])
    state = WindowState(aredis, keys, WindowPolicy(step=100, size=100), retention_s=600)
    ack = (keys.predictions, CONSUMER_GROUP, [entry_id for entry_id, _ in read])

    result = await state.ingest_predictions(batch, [f[b"x"] for _, f in read], ack)
    assert result.new == n
    assert (await aredis.xpending(keys.predictions, CONSUMER_GROUP))["pending"] == 0
    v1, v2 = keys.for_version("1"), keys.for_version("2")
    assert await aredis.hgetall(v1.window_classes(0)) == {b"1": b"1", b"2": b"2", b"3": b"2"}
    assert await aredis.hgetall(v2.window_classes(0)) == {b"3": b"1"}  # window 0 of version 2's series
    assert await aredis.hget(v1.window_meta(0), "model_version") == b"1"
    assert await aredis.hget(v2.window_meta(0), "model_version") == b"2"
    meta = await aredis.hgetall(v1.window_meta(0))
    assert int(meta[b"first_ts"]) == now and int(meta[b"last_ts"]) == now
    # Each row: its features, then its predicted class (what the agreement estimate pairs).
    features, classes = split_window_rows(await aredis.lrange(v1.window_rows(0), 0, -1), 4)
    np.testing.assert_array_equal(features, x[:-1])
    assert classes is not None and classes.tolist() == [1, 2, 2, 3, 3]
    assert await aredis.lrange(v2.window_rows(0), 0, -1) == [x[-1].tobytes() + np.float32(3).tobytes()]

    again = await state.ingest_predictions(batch, [f[b"x"] for _, f in read], ack)  # a redelivery
    assert again.new == 0 and int(await aredis.get(v1.ingested)) == n - 1 and int(await aredis.get(v2.ingested)) == 1


def _batch(n: int, at_ms: int) -> tuple[list[dict[bytes, bytes]], np.ndarray]:
    x = np.arange(n * 4, dtype=np.float32).reshape(n, 4) + at_ms % 1000
    probs = np.eye(10, dtype=np.float32)[np.arange(n) % 10]
    entries = encode_predictions(new_prediction_ids(n, at_ms), at_ms, "race", "1", x, probs.argmax(1), probs)
    return entries, x


async def test_two_replicas_share_the_count_windows_through_the_counter_protocol(aredis: aioredis.Redis) -> None:
    """Replicas A and B each remember the counter they saw last; every call after the
    other replica's is refused ({-1}, nothing written) and retried with the windows of
    the counter Redis holds, so the windows fill exactly as one replica would fill them."""
    keys, series = Keys("race"), Keys("race", "1")
    policy = WindowPolicy(step=10, size=10)
    a, b = WindowState(aredis, keys, policy, 600), WindowState(aredis, keys, policy, 600)
    now = int(time.time() * 1000)
    closed: list[int] = []
    for i, state in enumerate([a, b, a, a, b, b, a]):  # batches of 7: windows of 10 split across replicas
        entries, _ = _batch(7, now + i)
        result = await state.ingest_predictions(decode_predictions(entries), [e[b"x"] for e in entries])
        assert result.new == 7
        closed += result.closed_windows
    assert int(await aredis.get(series.ingested)) == 49
    assert sorted(closed) == [0, 1, 2, 3]  # 40 of 49 rows fill four windows, each closed once
    assert await aredis.smembers(series.windows_to_report) == {b"0", b"1", b"2", b"3"}
    assert [await aredis.llen(series.window_rows(w)) for w in range(5)] == [10, 10, 10, 10, 9]
    assert [int(w) for w in await aredis.zrange(series.windows_index, 0, -1)] == [0, 1, 2, 3, 4]


async def test_feedback_whose_prediction_window_was_not_read_is_retried(aredis: aioredis.Redis) -> None:
    """The feedback call passes the windows of the predictions it read; a prediction
    filed since (in a window not passed) makes the script write nothing and answer -1."""
    from shared.events import FeedbackBatch

    keys = Keys("race")
    state = WindowState(aredis, keys, WindowPolicy(step=10, size=10), 600)
    entries, _ = _batch(3, int(time.time() * 1000))
    predictions = decode_predictions(entries)
    await state.ingest_predictions(predictions, [e[b"x"] for e in entries])
    labels = FeedbackBatch(ids=predictions.ids, labels=np.array([0, 1, 5]),
                           timestamps_ms=predictions.timestamps_ms + 1_000)
    stale_keys, stale_args = state.feedback_call(labels, windows=[])  # as read before the predictions came
    script = state._ingest_feedback
    assert await script(keys=stale_keys, args=stale_args) == -1
    series = keys.for_version("1")
    assert not await aredis.exists(keys.feedback_counts, series.confusion(0))
    assert await state.ingest_feedback(labels) == 3  # reads the windows again
    assert await aredis.hgetall(series.confusion(0)) == {b"0:0": b"1", b"1:1": b"1", b"5:2": b"1"}
    assert await aredis.hgetall(series.version_confusion_total) == await aredis.hgetall(keys.confusion_total)
