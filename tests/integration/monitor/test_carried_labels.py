"""Labels that carry their prediction's class and time, against a real redis-server.

Such a label is counted without reading join state: its window comes from its
prediction's time (time windows: the slot; count windows: the window whose
recorded first..last prediction time covers it, totals only when none does),
its version from the label or the current one. Each label id counts once, also
against a label of the same id joined by id. A model registered with
``label_join: carried`` stores no join state at all for its predictions.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import redis.asyncio as aioredis

from monitor.window_state import WindowState
from monitor.windows import WindowPolicy
from shared.events import FeedbackBatch, decode_feedback, decode_predictions, encode_feedback, encode_predictions
from shared.ids import prediction_ids_at
from shared.keys import CONSUMER_GROUP, Keys
from shared.model_metadata import LabelJoin
from shared.registry import FIELD_VERSION

DAY_MS = 86_400_000
CLASSES = 4


def _joins(mode: LabelJoin):  # type: ignore[no-untyped-def]
    async def label_join(version: str) -> LabelJoin:
        return mode

    return label_join


async def _predict(
    client: aioredis.Redis, keys: Keys, state: WindowState, stamps: np.ndarray, classes: np.ndarray, version: str = "1"
) -> tuple[list[str], list[bytes]]:
    """Predictions through the stream, ingested with their ack as the consumer does; their ids and entry ids."""
    n = len(stamps)
    ids = prediction_ids_at(stamps.tolist())
    x = np.zeros((n, 2), dtype=np.float32)
    probs = np.eye(CLASSES, dtype=np.float32)[classes]
    await client.xgroup_create(keys.predictions, CONSUMER_GROUP, id="$", mkstream=True)
    for entry in encode_predictions(ids, stamps, keys.model, version, x, classes, probs):
        await client.xadd(keys.predictions, entry)
    read = (await client.xreadgroup(CONSUMER_GROUP, "c", {keys.predictions: ">"}))[0][1]
    entry_ids = [entry_id for entry_id, _ in read]
    result = await state.ingest_predictions(decode_predictions([f for _, f in read]), [f[b"x"] for _, f in read],
                                            (keys.predictions, CONSUMER_GROUP, entry_ids))
    assert result.new == n
    return ids, entry_ids


def _carried(ids: list[str], labels: np.ndarray, stamps: np.ndarray, classes: np.ndarray, at_ms: int,
             version: str | None = None) -> FeedbackBatch:
    return decode_feedback([
        encode_feedback(pid, int(label), at_ms, int(cls), int(made), version)
        for pid, label, made, cls in zip(ids, labels.tolist(), stamps.tolist(), classes.tolist(), strict=True)
    ])


async def _pairs(client: aioredis.Redis, key: str) -> Counter[str]:
    return Counter({k.decode(): int(v) for k, v in (await client.hgetall(key)).items()})


def _expected(labels: np.ndarray, classes: np.ndarray) -> Counter[str]:
    return Counter(f"{label}:{cls}" for label, cls in zip(labels.tolist(), classes.tolist(), strict=True))


async def test_carried_labels_fill_count_windows_by_their_predictions_time_in_any_order(
    aredis: aioredis.Redis,
) -> None:
    keys, series = Keys("carried-count"), Keys("carried-count", "1")
    rng = np.random.default_rng(1)
    n, step = 50, 10
    t0 = int(time.time() * 1000) - 30 * DAY_MS
    stamps = t0 + np.arange(n, dtype=np.int64) * 1_000
    classes = rng.integers(0, CLASSES, n)
    state = WindowState(aredis, keys, WindowPolicy(step=step, size=step), retention_s=600,
                        label_join=_joins("carried"))
    ids, _ = await _predict(aredis, keys, state, stamps, classes)
    labels = np.where(rng.random(n) < 0.7, classes, (classes + 1) % CLASSES)

    order = rng.permutation(n)  # labels a month after their predictions, in any order, in three batches
    for part in np.array_split(order, 3):
        batch = _carried([ids[i] for i in part], labels[part], stamps[part], classes[part], t0 + 30 * DAY_MS, "1")
        assert await state.ingest_feedback(batch) == len(part)

    for w in range(n // step):
        rows = slice(w * step, (w + 1) * step)
        assert await _pairs(aredis, series.confusion(w)) == _expected(labels[rows], classes[rows])
        delays = await _pairs(aredis, series.window_label_delays(w))
        assert sum(delays.values()) == step and len(delays) <= 2  # 30 days later, to a few seconds
    assert await _pairs(aredis, keys.confusion_total) == _expected(labels, classes)
    assert await _pairs(aredis, series.version_confusion_total) == _expected(labels, classes)
    assert sum((await _pairs(aredis, keys.label_delays_total)).values()) == n
    assert await aredis.keys(keys.join_state_pattern.replace(":*", ":*:spred")) == []

    # A prediction time no window covers (a gap, or a window no longer indexed): totals only.
    stray = prediction_ids_at([t0 - DAY_MS])
    batch = _carried(stray, np.array([2]), np.array([t0 - DAY_MS]), np.array([3]), t0 + 30 * DAY_MS, "1")
    assert await state.ingest_feedback(batch) == 1
    assert (await _pairs(aredis, keys.confusion_total))["2:3"] == _expected(labels, classes)["2:3"] + 1
    per_window = [await _pairs(aredis, series.confusion(w)) for w in range(n // step)]
    assert sum(c["2:3"] for c in per_window) == _expected(labels, classes)["2:3"]


async def test_carried_labels_fill_time_windows_and_count_once_when_sent_again(aredis: aioredis.Redis) -> None:
    keys = Keys("carried-time")
    rng = np.random.default_rng(2)
    n = 60
    t0 = (int(time.time() * 1000) // 60_000 - 100) * 60_000
    stamps = np.sort(t0 + rng.integers(0, 3 * 60_000, n).astype(np.int64))  # three one-minute slots
    classes = rng.integers(0, CLASSES, n)
    state = WindowState(aredis, keys, WindowPolicy("time", seconds=60), retention_s=600)  # by-id: joins stored
    ids, _ = await _predict(aredis, keys, state, stamps, classes)
    labels = rng.integers(0, CLASSES, n)
    await aredis.hset(keys.model_info, FIELD_VERSION, "1")  # labels below name no version: the current one

    batch = _carried(ids, labels, stamps, classes, t0 + 7 * DAY_MS)
    assert await state.ingest_feedback(batch) == n
    assert await state.ingest_feedback(batch) == 0  # replayed
    resent = _carried(ids[:5], labels[:5], stamps[:5], classes[:5], t0 + 8 * DAY_MS, version="1")
    assert await state.ingest_feedback(resent) == 0  # re-sent in a new request

    series = keys.for_version("1")
    slots = stamps // 60_000
    for slot in np.unique(slots).tolist():
        rows = slots == slot
        assert await _pairs(aredis, series.confusion(slot)) == _expected(labels[rows], classes[rows])
    assert await _pairs(aredis, keys.confusion_total) == _expected(labels, classes)
    counts = await aredis.hgetall(keys.feedback_counts)
    assert int(counts[b"received"]) == n and int(counts[b"duplicate"]) == n + 5


async def test_a_label_sent_both_carried_and_by_id_counts_once(aredis: aioredis.Redis) -> None:
    """By id first then carried, carried then by id, and carried before its prediction arrives:
    each id's label is counted once, and a carried label is not joined when its prediction comes."""
    keys = Keys("carried-mixed")
    t0 = int(time.time() * 1000) - DAY_MS
    state = WindowState(aredis, keys, WindowPolicy(step=100, size=100), retention_s=600)
    stamps = t0 + np.arange(6, dtype=np.int64) * 1_000
    classes = np.array([0, 1, 2, 3, 0, 1])
    labels = np.array([1, 1, 2, 2, 3, 3])
    ids = prediction_ids_at(stamps.tolist())
    later = t0 + DAY_MS

    early = _carried(ids[4:], labels[4:], stamps[4:], classes[4:], later, version="1")
    assert await state.ingest_feedback(early) == 2  # before their predictions: counted at once (totals)
    x = np.zeros((6, 2), dtype=np.float32)
    entries = encode_predictions(ids, stamps, keys.model, "1", x, classes, np.eye(CLASSES, dtype=np.float32)[classes])
    assert (await state.ingest_predictions(decode_predictions(entries), [e[b"x"] for e in entries])).new == 6

    by_id = FeedbackBatch(ids[:4], labels[:4], np.full(4, later, dtype=np.int64))
    assert await state.ingest_feedback(by_id) == 4  # joined: 0..3
    assert await state.ingest_feedback(_carried(ids[:2], labels[:2], stamps[:2], classes[:2], later, "1")) == 0
    assert await state.ingest_feedback(FeedbackBatch(ids[4:], labels[4:], np.full(2, later, dtype=np.int64))) == 0

    assert await _pairs(aredis, keys.confusion_total) == _expected(labels, classes)
    assert await _pairs(aredis, keys.for_version("1").confusion(0)) == _expected(labels[:4], classes[:4])


async def test_a_carried_model_stores_no_join_state_and_counts_each_prediction_once(aredis: aioredis.Redis) -> None:
    keys, series = Keys("carried-memory"), Keys("carried-memory", "1")
    rng = np.random.default_rng(3)
    n, step = 2_000, 500
    t0 = int(time.time() * 1000) - DAY_MS
    stamps = t0 + np.arange(n, dtype=np.int64) * 10
    classes = rng.integers(0, CLASSES, n)
    state = WindowState(aredis, keys, WindowPolicy(step=step, size=step), retention_s=600,
                        label_join=_joins("carried"))
    ids, entry_ids = await _predict(aredis, keys, state, stamps, classes)

    # Every join key but the model's one setting (its shard count, pinned once): none per prediction.
    join_keys = [k async for k in aredis.scan_iter(match=keys.join_state_pattern) if k != keys.join_shards.encode()]
    join_bytes = sum([await aredis.memory_usage(k, samples=0) for k in join_keys])
    print(f"\njoin state after {n:,} predictions of a 'carried' model: {len(join_keys)} keys, "
          f"{join_bytes / n:.1f} bytes/prediction")
    assert join_keys == [] and join_bytes == 0

    # A redelivery (the consumer died after the script, or another replica claimed the entries)
    # counts nothing: the script counts only the entries it acks itself.
    again = await aredis.xrange(keys.predictions)
    redo = await state.ingest_predictions(decode_predictions([f for _, f in again]), [f[b"x"] for _, f in again],
                                          (keys.predictions, CONSUMER_GROUP, entry_ids))
    assert redo.new == 0 and int(await aredis.get(series.ingested)) == n

    labels = np.where(rng.random(n) < 0.8, classes, (classes + 2) % CLASSES)
    assert await state.ingest_feedback(_carried(ids, labels, stamps, classes, t0 + DAY_MS, "1")) == n
    markers = [k async for k in aredis.scan_iter(match=keys.join_state_pattern) if k != keys.join_shards.encode()]
    marker_bytes = sum([await aredis.memory_usage(k, samples=0) for k in markers])
    print(f"per-label dedup markers: {marker_bytes / n:.1f} bytes/label ({len(markers)} keys, all labels:label)")
    assert all(k.endswith(b":label") for k in markers) and marker_bytes / n < 24  # per label, expiring with its bucket
    accuracy = sum(v for k, v in (await _pairs(aredis, keys.confusion_total)).items()
                   if k.split(":")[0] == k.split(":")[1]) / n
    assert accuracy == float(np.mean(labels == classes))
    for w in range(n // step):
        rows = slice(w * step, (w + 1) * step)
        assert await _pairs(aredis, series.confusion(w)) == _expected(labels[rows], classes[rows])
