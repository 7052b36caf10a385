"""Window and join state, updated atomically inside Redis.

Every change to the monitor's counts happens in one of two Lua scripts, each
run once per batch of stream entries:

- a prediction is counted only if its id was never seen (``HMGET`` on its join
  hash), so a redelivered entry changes nothing;
- a label is kept only the first time (``HSETNX``), and joined to its
  prediction whichever arrives second.

Because the state lives in Redis and the scripts are atomic, any number of
monitor replicas in one consumer group build one set of windows: replica A's
events and replica B's events land in the same window counter. A monitor
killed between two batches loses nothing: it acked only what the scripts had
stored, and the rest is redelivered.

Join state is filed by the prediction's time bucket (read from the id) with a
TTL, so it is bounded by the retention, not by traffic since the start. Within
a bucket it is split into shards (:func:`join_slots`) small enough that each
hash stays listpack-encoded (``hash-max-listpack-entries``, 128 by default),
and a field holds only the id's bytes its key does not imply: 13 bytes of
binary id and ``window * radix + class`` as one integer, about 20 bytes a prediction in all (the README
has the sizing table, ``tests/integration/monitor/test_join_memory.py``
measures it).

The scripts are ``ingest_predictions.lua`` and ``ingest_feedback.lua`` beside
this module. Python decides every key and index they use: the join buckets
(from the ids), the windows (from :class:`monitor.windows.WindowPolicy`), and
the widths and offsets of the packed columns (below, passed as arguments).
Count windows depend on the ingest counter, which the script advances: the
call carries the counter value it expects and the windows that value leads
to, and a replica that lost the race to another gets the new value back and
retries (:meth:`WindowState.ingest_predictions`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from monitor.windows import INDEX_KEEP, WindowPolicy
from shared.events import FeedbackBatch, PredictionBatch
from shared.ids import prediction_id_bytes, prediction_times_ms
from shared.keys import Keys
from shared.redis_scripts import register_script

logger = logging.getLogger(__name__)

JOIN_BUCKET_MS = 3_600_000
# A join field is the id's bytes from here on: the low 3 bytes of its millisecond
# stamp (2**24 ms is longer than a bucket, so with the bucket they give the stamp
# back) and its 10 random bytes. Key and field together are the id, losslessly.
JOIN_FIELD_START = 3
JOIN_FIELD_WIDTH = 16 - JOIN_FIELD_START
# A bucket's shards are time slices of it, each split JOIN_FAN ways by the id's
# random bytes: a batch (consecutive times) touches few hashes, and a burst of
# ids sharing one millisecond spreads over JOIN_FAN of them.
JOIN_FAN = 16
# A prediction's join value is window * JOIN_CLASS_RADIX + class, one listpack
# integer; a class past it is stored as text "window:class".
JOIN_CLASS_RADIX = 1_024
DEFAULT_JOIN_SHARDS = 4_096
# A script call that lost the race for the ingest counter this many times in a row fails
# (its entries stay pending and come back): replicas contend, they do not starve.
MAX_COUNTER_RACES = 100

CONFIDENCE_BUCKETS = 100
# The packed columns' widths, and offsets that make every value that wide: the
# scripts slice by position and receive these as arguments. The timestamp
# offset holds for prediction times from 1970 to 2286; a confidence is its
# bucket plus 100 (the script drops the leading 1); positions index the
# buckets and windows of one call.
TS_WIDTH, TS_OFFSET = 14, 10**13
CLASS_WIDTH, CLASS_OFFSET = 6, 100_000
CONF_WIDTH, CONF_OFFSET = 3, 100
POS_WIDTH, POS_OFFSET = 6, 100_000

Column = npt.NDArray[np.int64]
ScriptCall = tuple[list[str], list[bytes | str | int]]


@dataclass(frozen=True, slots=True)
class JoinSlots:
    """Where a batch's ids are filed: the distinct (bucket, shard) pairs, each id's
    position among them, and each id's field bytes (``JOIN_FIELD_WIDTH`` each)."""

    buckets: list[int]
    shards: list[int]
    position: Column
    fields: bytes

    def field(self, i: int) -> bytes:
        return self.fields[i * JOIN_FIELD_WIDTH : (i + 1) * JOIN_FIELD_WIDTH]


def join_window(tag: bytes) -> int:
    """The window of a stored join value (``window * JOIN_CLASS_RADIX + class`` or ``window:class``).

    >>> join_window(str(7 * JOIN_CLASS_RADIX + 3).encode()), join_window(b"7:2000")
    (7, 7)
    """
    return int(tag.split(b":", 1)[0]) if b":" in tag else int(tag) // JOIN_CLASS_RADIX


def join_slots(ids: list[str], shards: int) -> JoinSlots:
    """File ids by time bucket and shard, vectorised.

    A shard is the id's time slice within its bucket (``shards / JOIN_FAN``
    slices) times ``JOIN_FAN`` plus its random bytes modulo ``JOIN_FAN``.

    >>> s = join_slots(["0000000000ff" + "00" * 9 + "0a", "0000000000ff" + "00" * 9 + "0b"], 32)
    >>> s.buckets, s.shards, s.position.tolist(), len(s.fields)
    ([0, 0], [10, 11], [0, 1], 26)
    """
    if shards < JOIN_FAN or shards % JOIN_FAN:
        raise ValueError(f"join shards must be a positive multiple of {JOIN_FAN}")
    stamps = prediction_times_ms(ids)  # first: it names what a bad id lacks
    raw = prediction_id_bytes(ids)
    slice_ms = -(-JOIN_BUCKET_MS * JOIN_FAN // shards)
    fan = raw[:, -4:].copy().view(">u4").ravel().astype(np.int64) % JOIN_FAN
    shard = (stamps % JOIN_BUCKET_MS) // slice_ms * JOIN_FAN + fan
    slots, position = np.unique(stamps // JOIN_BUCKET_MS * shards + shard, return_inverse=True)
    return JoinSlots((slots // shards).tolist(), (slots % shards).tolist(), position,
                     raw[:, JOIN_FIELD_START:].tobytes())


def packed(values: Column, offset: int, width: int) -> bytes:
    """Integers as one fixed-width text column, built by numpy in C."""
    if len(values) and (values.min() < -offset or values.max() >= 10**width - offset):
        raise ValueError(f"values must lie in [{-offset}, {10**width - offset})")
    return (values + offset).astype(f"S{width}").tobytes()


NO_CONFIDENCE = CONFIDENCE_BUCKETS
"""The bucket of a prediction without probabilities (K = 0): packed as 2xx, which the script does not count."""


def confidence_buckets(probabilities: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """Top-class probability in percent buckets (0..99; 1.0 joins 99): what the
    label-free accuracy estimate reads, kept per window as a 100-field histogram.
    A model without probabilities (K = 0) gets ``NO_CONFIDENCE``: no histogram.

    >>> confidence_buckets(np.zeros((2, 0), dtype=np.float32)).tolist()
    [100, 100]
    """
    if probabilities.shape[1] == 0:
        return np.full(probabilities.shape[0], NO_CONFIDENCE, dtype=np.int64)
    top = probabilities.max(axis=1)
    return np.minimum((top * CONFIDENCE_BUCKETS).astype(np.int64), CONFIDENCE_BUCKETS - 1)


def delay_bucket_bounds_s(bucket: int) -> tuple[float, float]:
    """The delay range (seconds) of a label-delay bucket, as the Lua counts it."""
    return 2 ** (bucket / 4) - 1, 2 ** ((bucket + 1) / 4) - 1


def _packed_versions(versions: list[str]) -> str:
    """Each version ended by the unit separator; one for the whole batch when all agree."""
    distinct = set(versions)
    if len(distinct) == 1:
        return f"{versions[0]}\x1f"
    return "".join(v + "\x1f" for v in versions)


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: int
    closed_windows: list[int]


class WindowState:
    """The ingest scripts, bound to one model's keys and window policy."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, policy: WindowPolicy, retention_s: int,
        join_shards: int = DEFAULT_JOIN_SHARDS,
    ) -> None:
        self.client = client
        self.keys = keys
        self.policy = policy
        self.retention_s = retention_s
        self.join_shards = join_shards  # the configured value until pinned by ``_pin_join_shards``
        self._join_shards_pinned = False
        self._counter = 0  # the ingest counter as this replica last saw it (count windows)
        self._ingest_predictions = register_script(client, "monitor", "ingest_predictions.lua")
        self._ingest_feedback = register_script(client, "monitor", "ingest_feedback.lua")

    async def _pin_join_shards(self) -> None:
        """Use the shard count the model's first monitor fixed in Redis: an id must map
        to the same hash for every replica and restart, or a redelivery would count twice."""
        if self._join_shards_pinned:
            return
        stored = await self.client.set(self.keys.join_shards, self.join_shards, nx=True, get=True)
        if stored is not None and int(stored) != self.join_shards:
            logger.warning("join shards: %s configured, %s fixed in Redis by the first monitor; using %s",
                           self.join_shards, int(stored), int(stored))
            self.join_shards = int(stored)
        self._join_shards_pinned = True

    # -- predictions ------------------------------------------------------------
    def _windows(self, batch: PredictionBatch, counter: int) -> tuple[list[int], list[int], bytes]:
        """The windows the batch can fill, their count ends, and (time) each event's window position."""
        if self.policy.timed:
            slots, position = np.unique(self.policy.slots_of(batch.timestamps_ms), return_inverse=True)
            return slots.tolist(), [], packed(position + 1, POS_OFFSET, POS_WIDTH)
        windows = self.policy.count_windows(counter, len(batch))
        return windows, self.policy.count_ends(windows), b""

    def prediction_call(
        self,
        batch: PredictionBatch,
        raw_features: list[bytes],
        ack: tuple[str, str, list[bytes]] | None = None,
        counter: int = 0,
    ) -> ScriptCall:
        """KEYS and ARGV of ``ingest_predictions.lua`` (ARGV in its ``read_args`` order)."""
        if (batch.classes < 0).any() or (batch.classes >= 10**CLASS_WIDTH - CLASS_OFFSET).any():
            raise ValueError(f"class indexes must lie in [0, {10**CLASS_WIDTH - CLASS_OFFSET})")
        slots = join_slots(batch.ids, self.join_shards)
        windows, ends, window_positions = self._windows(batch, counter)
        k = self.keys
        keys = [ack[0] if ack else k.predictions, k.ingested, k.windows_to_report, k.windows_open,
                k.windows_closed_upto, k.windows_late, k.windows_index, k.confusion_total, k.label_delays_total]
        for b, shard in zip(slots.buckets, slots.shards, strict=True):
            keys += [k.joined_predictions(b, shard), k.joined_labels(b, shard), k.waiting_labels(b)]
        for w in windows:
            keys += [k.window_rows(w), k.window_classes(w), k.window_confidence(w), k.confusion(w),
                     k.window_label_delays(w), k.window_meta(w)]
        args: list[bytes | str | int] = [
            "time" if self.policy.timed else "count", len(batch), len(slots.buckets), len(windows),
            -1 if self.policy.timed else counter, self.retention_s, INDEX_KEEP,
            JOIN_FIELD_WIDTH, TS_WIDTH, TS_OFFSET, CLASS_WIDTH, CLASS_OFFSET, CONF_WIDTH, POS_WIDTH, POS_OFFSET,
            ",".join(map(str, windows)), ",".join(map(str, ends)),
            packed(slots.position + 1, POS_OFFSET, POS_WIDTH), window_positions,
            slots.fields,
            packed(batch.timestamps_ms, TS_OFFSET, TS_WIDTH),
            packed(batch.classes, CLASS_OFFSET, CLASS_WIDTH),
            packed(confidence_buckets(batch.probabilities), CONF_OFFSET, CONF_WIDTH),
            _packed_versions(batch.model_versions),
            b"".join(raw_features),
            *(("", "") if ack is None else (ack[1], b",".join(ack[2]))),
            JOIN_CLASS_RADIX,
        ]
        return keys, args

    async def ingest_predictions(
        self, batch: PredictionBatch, raw_features: list[bytes], ack: tuple[str, str, list[bytes]] | None = None
    ) -> IngestResult:
        """Store the batch's state; with ``ack`` = (stream, group, entry ids), ack those
        entries in the same atomic script, so state and ack can never part.

        Count windows: the call expects the ingest counter this replica saw
        last; when another replica moved it, the script writes nothing and
        answers the counter's value, and the call is made again with it.
        """
        await self._pin_join_shards()
        for _ in range(MAX_COUNTER_RACES):
            keys, args = self.prediction_call(batch, raw_features, ack, self._counter)
            new, closed, counter = await self._ingest_predictions(keys=keys, args=args)
            self._counter = int(counter)
            if int(new) >= 0:
                return IngestResult(int(new), [int(w) for w in closed])
        raise RuntimeError(f"lost the race for the ingest counter {MAX_COUNTER_RACES} times")

    # -- feedback -----------------------------------------------------------------
    async def _prediction_windows(self, slots: JoinSlots) -> list[int]:
        """The windows of the predictions already joined (read before the script, which checks them)."""
        by_slot: list[list[bytes]] = [[] for _ in slots.buckets]
        for i, j in enumerate(slots.position.tolist()):
            by_slot[j].append(slots.field(i))
        async with self.client.pipeline(transaction=False) as pipe:
            for b, shard, members in zip(slots.buckets, slots.shards, by_slot, strict=True):
                pipe.hmget(self.keys.joined_predictions(b, shard), members)
            found = await pipe.execute()
        return sorted({join_window(tag) for tags in found for tag in tags if tag is not None})

    def feedback_call(self, batch: FeedbackBatch, windows: list[int], slots: JoinSlots | None = None) -> ScriptCall:
        """KEYS and ARGV of ``ingest_feedback.lua`` for the predictions' ``windows``."""
        slots = slots or join_slots(batch.ids, self.join_shards)
        k = self.keys
        keys = [k.feedback_counts, k.confusion_total, k.label_delays_total]
        for b, shard in zip(slots.buckets, slots.shards, strict=True):
            keys += [k.joined_labels(b, shard), k.joined_predictions(b, shard), k.waiting_labels(b)]
        for w in windows:
            keys += [k.confusion(w), k.window_label_delays(w)]
        args: list[bytes | str | int] = [len(batch), len(slots.buckets), len(windows), self.retention_s,
                                         ",".join(map(str, windows)), JOIN_CLASS_RADIX]
        rows = zip(batch.labels.tolist(), batch.timestamps_ms.tolist(), prediction_times_ms(batch.ids).tolist(),
                   (slots.position + 1).tolist(), strict=True)
        for i, (label, feedback_ts, predicted_ts, position) in enumerate(rows):
            args.extend((slots.field(i), label, feedback_ts, predicted_ts, position))
        return keys, args

    async def ingest_feedback(self, batch: FeedbackBatch) -> int:
        """Keep each label once and join it; returns the labels new to Redis."""
        await self._pin_join_shards()
        slots = join_slots(batch.ids, self.join_shards)
        for _ in range(MAX_COUNTER_RACES):
            windows = await self._prediction_windows(slots)
            keys, args = self.feedback_call(batch, windows, slots)
            new = int(await self._ingest_feedback(keys=keys, args=args))
            if new >= 0:
                return new
        raise RuntimeError(f"predictions kept arriving during {MAX_COUNTER_RACES} reads of their windows")
