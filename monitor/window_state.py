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

One script call stores predictions of one model version: each version has
its own window series (``Keys(model, version)``: counter, windows, reports),
so a new version starts at window 0 against its own reference and no window
mixes rows of two versions. :meth:`WindowState.ingest_predictions` splits a
batch by version (one call per version, each acking its own entries).

Join state is filed by the prediction's time bucket (read from the id) with a
TTL, so it is bounded by the retention, not by traffic since the start. Within
a bucket it is split into shards (:func:`join_slots`) small enough that each
hash stays listpack-encoded (``hash-max-listpack-entries``, 128 by default),
and a field holds only the id's bytes its key does not imply: 13 bytes of
binary id and :func:`join_value` (series, window and class as one integer),
about 21 bytes a prediction in all (the README has the sizing table,
``tests/integration/monitor/test_join_memory.py`` measures it). Feedback
carries no version: the join value's series ordinal (:mod:`shared.series`)
tells which series a label's prediction belongs to.

A label that carries its prediction's class and time (``FeedbackBatch.predicted``)
is counted by ``ingest_carried_feedback.lua`` without reading join state: its
window comes from the prediction's time (:meth:`WindowPolicy.windows_at`), and
only a per-label marker in its bucket's label hash keeps it from counting twice.
A version registered with ``label_join: carried`` takes only such labels, so
its predictions write no join state at all (the script then counts an event
when its own XACK of the entry succeeds).

The scripts are ``ingest_predictions.lua``, ``ingest_feedback.lua`` and
``ingest_carried_feedback.lua`` beside this module. Python decides every key and index they use: the join buckets
(from the ids), the windows (from :class:`monitor.windows.WindowPolicy`), and
the widths and offsets of the packed columns (below, passed as arguments).
Count windows depend on the ingest counter, which the script advances: the
call carries the counter value it expects and the windows that value leads
to, and a replica that lost the race to another gets the new value back and
retries (:meth:`WindowState.ingest_predictions`).

A window keeps each event's row (:func:`window_rows`: its features and, as one
more float32 column, its predicted class) until its drift report is stored;
the report's label-free estimate pairs the two (:mod:`monitor.agreement`). The
class column costs 4 bytes a row held, and no Lua: rows are opaque to it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from monitor.windows import INDEX_KEEP, NO_WINDOW, CountEpoch, CountWindowBounds, WindowPolicy
from shared.events import FLOAT, NOT_CARRIED, FeedbackBatch, PredictionBatch
from shared.ids import MAX_EVENT_MS, prediction_id_bytes, prediction_times_ms
from shared.keys import Keys
from shared.model_metadata import LabelJoin
from shared.redis_scripts import register_script
from shared.registry import read_current_version
from shared.series import SeriesOrdinals

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
# A prediction's join value is (window * JOIN_SERIES_RADIX + ordinal) * JOIN_CLASS_RADIX
# + class, one listpack integer (24-bit for a series' first 128 windows, 32-bit for its
# first 32,768: a byte more than without the series for part of that range); a class or
# series ordinal past its radix is stored as text "window:class:ordinal".
JOIN_CLASS_RADIX = 1_024
JOIN_SERIES_RADIX = 64
DEFAULT_JOIN_SHARDS = 4_096
# A script call that lost the race for the ingest counter this many times in a row fails
# (its entries stay pending and come back): replicas contend, they do not starve.
MAX_COUNTER_RACES = 100

CONFIDENCE_BUCKETS = 100
# The packed columns' widths, and offsets that make every value that wide: the
# scripts slice by position and receive these as arguments. The timestamp
# columns hold prediction times up to shared.ids.MAX_EVENT_MS (the year 4821,
# the latest the model service accepts; 14 digits also print exactly from
# Lua's numbers, as first_ts/last_ts are stored); a confidence is its
# bucket plus 100 (the script drops the leading 1); positions index the
# buckets and windows of one call.
TS_WIDTH, TS_OFFSET = 14, 10**13
assert MAX_EVENT_MS + TS_OFFSET < 10**TS_WIDTH
CLASS_WIDTH, CLASS_OFFSET = 6, 100_000
CONF_WIDTH, CONF_OFFSET = 3, 100
POS_WIDTH, POS_OFFSET = 6, 100_000
ROW_CLASS_BYTES = FLOAT.itemsize  # a window row's last column: its predicted class (window_rows)

Column = npt.NDArray[np.int64]
V = TypeVar("V", str, bytes)
ScriptCall = tuple[list[str], list[bytes | str | int]]
LabelJoinOf = Callable[[str], Awaitable[LabelJoin | None]]


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


def join_value(ordinal: int, window: int, cls: int) -> bytes:
    """A prediction's join value as ``ingest_predictions.lua`` writes it.

    >>> join_value(1, 7, 3), join_value(70, 7, 3), join_value(1, 7, 2000)
    (b'459779', b'7:3:70', b'7:2000:1')
    """
    if ordinal < JOIN_SERIES_RADIX and cls < JOIN_CLASS_RADIX:
        return str((window * JOIN_SERIES_RADIX + ordinal) * JOIN_CLASS_RADIX + cls).encode()
    return f"{window}:{cls}:{ordinal}".encode()


def join_series_window(tag: bytes) -> tuple[int, int]:
    """The (series ordinal, window) of a stored join value (:func:`join_value`).

    >>> [join_series_window(join_value(o, w, c)) for o, w, c in [(1, 7, 3), (70, 7, 3), (2, 9, 2000)]]
    [(1, 7), (70, 7), (2, 9)]
    """
    if b":" in tag:
        window_text, _, ordinal_text = tag.split(b":")
        return int(ordinal_text), int(window_text)
    window, ordinal = divmod(int(tag) // JOIN_CLASS_RADIX, JOIN_SERIES_RADIX)
    return ordinal, window


def series_window_id(ordinal: int, window: int) -> str:
    """How ``ingest_feedback.lua`` names a window of a series: ``ordinal/window``."""
    return f"{ordinal}/{window}"


NO_SLOTS = JoinSlots([], [], np.zeros(0, dtype=np.int64), b"")
"""A call without join state (labels carried): no buckets."""


@dataclass(frozen=True, slots=True)
class SeriesWindow:
    """A window of one version's series, as the feedback script receives it."""

    version: str
    ordinal: int
    window: int


def version_groups(versions: Sequence[V]) -> list[tuple[V, npt.NDArray[np.intp]]]:
    """Rows of each model version in a batch, in order of first appearance (vectorised).

    >>> [(v, rows.tolist()) for v, rows in version_groups(["2", "1", "2"])]
    [('2', [0, 2]), ('1', [1])]
    """
    if len(set(versions)) <= 1:
        return [(versions[0], np.arange(len(versions)))] if versions else []
    distinct, first, inverse = np.unique(np.array(versions, dtype=object), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    return [(distinct[g], np.flatnonzero(inverse == g)) for g in order.tolist()]


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


def window_rows(raw_features: Sequence[bytes], classes: Column) -> bytes:
    """The rows a window keeps, one per event: its features' float32 bytes as the stream carried
    them, then its predicted class as one more float32 (exact below 2**24; classes stop below
    10**CLASS_WIDTH - CLASS_OFFSET). The Lua slices them by width and stores them opaque; the
    drift report splits them again (:func:`split_window_rows`), so the label-free estimate can pair
    each row's features with its class (:mod:`monitor.agreement`). Vectorised: one copy of the
    batch, as the join of the features alone was.

    >>> x = np.array([[1.5, 2.0], [3.0, np.nan]], dtype=np.float32)
    >>> batch = window_rows([r.tobytes() for r in x], np.array([4, 7]))
    >>> features, cls = split_window_rows([batch[:12], batch[12:]], 2)  # as the Lua slices them
    >>> features.tolist()[0], cls.tolist()
    ([1.5, 2.0], [4, 7])
    """
    n = len(raw_features)
    if n == 0 or len(classes) != n or len(set(map(len, raw_features))) != 1:  # map/set: C loops
        raise ValueError("raw features must be one row of one width per class")
    joined = b"".join(raw_features)
    packed_rows = np.empty((n, len(joined) // n + ROW_CLASS_BYTES), dtype=np.uint8)
    packed_rows[:, :-ROW_CLASS_BYTES] = np.frombuffer(joined, dtype=np.uint8).reshape(n, -1)
    packed_rows[:, -ROW_CLASS_BYTES:] = classes.astype(FLOAT).view(np.uint8).reshape(n, ROW_CLASS_BYTES)
    return packed_rows.tobytes()


def split_window_rows(
    rows: Sequence[bytes], n_features: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64] | None]:
    """A window's stored rows as (features, each row's predicted class). Rows filed by a monitor
    older than :func:`window_rows` hold the features alone: then the classes are None (the
    window's class counts still give its class mix). Raises ValueError for rows of another width
    (they do not fit the version's metadata)."""
    if not rows:
        return np.zeros((0, n_features), dtype=FLOAT), np.zeros(0, dtype=np.int64)
    plain, with_class = n_features * FLOAT.itemsize, n_features * FLOAT.itemsize + ROW_CLASS_BYTES
    widths = set(map(len, rows))  # map/set: C loops
    joined = b"".join(rows)
    if widths == {with_class}:
        matrix = np.frombuffer(joined, dtype=FLOAT).reshape(len(rows), n_features + 1)
        return matrix[:, :n_features], matrix[:, n_features].astype(np.int64)
    if widths == {plain}:
        return np.frombuffer(joined, dtype=FLOAT).reshape(len(rows), n_features), None
    if widths == {plain, with_class}:  # filed across an upgrade: the features of each
        features = b"".join(r[:plain] for r in rows)
        return np.frombuffer(features, dtype=FLOAT).reshape(len(rows), n_features), None
    raise ValueError(f"window rows of {sorted(widths)} bytes do not hold {n_features} float32 features")


def delay_bucket_bounds_s(bucket: int) -> tuple[float, float]:
    """The delay range (seconds) of a label-delay bucket, as the Lua counts it."""
    return 2 ** (bucket / 4) - 1, 2 ** ((bucket + 1) / 4) - 1


def sub_batch(batch: PredictionBatch, rows: npt.NDArray[np.intp]) -> PredictionBatch:
    """The batch's ``rows`` (numpy indexing; the whole batch when it is all of them)."""
    if len(rows) == len(batch):
        return batch
    picked = rows.tolist()
    return PredictionBatch(
        ids=[batch.ids[i] for i in picked], timestamps_ms=batch.timestamps_ms[rows],
        model_versions=[batch.model_versions[i] for i in picked], features=batch.features[rows],
        classes=batch.classes[rows], probabilities=batch.probabilities[rows],
    )


@dataclass(frozen=True, slots=True)
class IngestResult:
    new: int
    closed_windows: list[int]  # of every version (see ``closed`` for which series each belongs to)
    closed: dict[str, list[int]] = field(default_factory=dict)  # version -> windows this batch closed


class WindowState:
    """The ingest scripts, bound to one model's keys and window policy; one series per version."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, policy: WindowPolicy, retention_s: int,
        join_shards: int = DEFAULT_JOIN_SHARDS, ordinals: SeriesOrdinals | None = None,
        label_join: LabelJoinOf | None = None,
    ) -> None:
        """``label_join``: a version's registered ``label_join`` (default: every version "by-id");
        a "carried" version's predictions store no join state."""
        self.client = client
        self.keys = Keys(keys.model)
        self.policy = policy
        self.retention_s = retention_s
        self.join_shards = join_shards  # the configured value until pinned by ``_pin_join_shards``
        self._join_shards_pinned = False
        self.ordinals = ordinals if ordinals is not None else SeriesOrdinals(client, self.keys)
        # Per version: the ingest counter and window epoch as this replica last saw them (count windows).
        self._counters: dict[str, int] = {}
        self._epochs: dict[str, CountEpoch] = {}
        self._ingest_predictions = register_script(client, "monitor", "ingest_predictions.lua")
        self._ingest_feedback = register_script(client, "monitor", "ingest_feedback.lua")
        self._carried_script = register_script(client, "monitor", "ingest_carried_feedback.lua")
        self.label_join = label_join
        self.count_bounds = CountWindowBounds(client, policy)

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
    def _windows(self, batch: PredictionBatch, counter: int, epoch: CountEpoch) -> tuple[list[int], list[int], bytes]:
        """The windows the batch can fill, their count ends, and (time) each event's window position."""
        if self.policy.timed:
            slots, position = np.unique(self.policy.slots_of(batch.timestamps_ms), return_inverse=True)
            return slots.tolist(), [], packed(position + 1, POS_OFFSET, POS_WIDTH)
        windows = self.policy.count_windows(counter, len(batch), epoch)
        return windows, self.policy.count_ends(windows, epoch), b""

    def prediction_call(
        self,
        batch: PredictionBatch,
        raw_features: list[bytes],
        ack: tuple[str, str, list[bytes]] | None = None,
        counter: int = 0,
        *,
        ordinal: int,
        join: bool = True,
        epoch: CountEpoch | None = None,
    ) -> ScriptCall:
        """KEYS and ARGV of ``ingest_predictions.lua`` (ARGV in its ``read_args`` order) for a
        batch of one model version, whose series has ``ordinal``; without ``join`` (a model whose
        labels carry their prediction) no join state: no buckets, ids or bucket positions.
        ``epoch``: the series' window epoch the caller expects with ``counter`` (default: this
        policy's windows from 0)."""
        versions = set(batch.model_versions)
        if len(versions) != 1:
            raise ValueError(f"one script call stores one model version's predictions, got {sorted(versions)}")
        if (batch.classes < 0).any() or (batch.classes >= 10**CLASS_WIDTH - CLASS_OFFSET).any():
            raise ValueError(f"class indexes must lie in [0, {10**CLASS_WIDTH - CLASS_OFFSET})")
        version = batch.model_versions[0]
        slots = join_slots(batch.ids, self.join_shards) if join else NO_SLOTS
        epoch = epoch or CountEpoch(size=self.policy.step)
        windows, ends, window_positions = self._windows(batch, counter, epoch)
        k, s = self.keys, self.keys.for_version(version)
        keys = [ack[0] if ack else k.predictions, s.ingested, s.windows_to_report, s.windows_open,
                s.windows_closed_upto, s.windows_late, s.windows_index, k.confusion_total, k.label_delays_total,
                s.version_confusion_total, s.version_label_delays_total, s.windows_epoch]
        for b, shard in zip(slots.buckets, slots.shards, strict=True):
            keys += [k.joined_predictions(b, shard), k.joined_labels(b, shard), k.waiting_labels(b)]
        for w in windows:
            keys += [s.window_rows(w), s.window_classes(w), s.window_confidence(w), s.confusion(w),
                     s.window_label_delays(w), s.window_meta(w)]
        args: list[bytes | str | int] = [
            "time" if self.policy.timed else "count", len(batch), len(slots.buckets), len(windows),
            -1 if self.policy.timed else counter, self.retention_s, INDEX_KEEP,
            JOIN_FIELD_WIDTH, TS_WIDTH, TS_OFFSET, CLASS_WIDTH, CLASS_OFFSET, CONF_WIDTH, POS_WIDTH, POS_OFFSET,
            ",".join(map(str, windows)), ",".join(map(str, ends)),
            packed(slots.position + 1, POS_OFFSET, POS_WIDTH) if join else b"", window_positions,
            slots.fields,
            packed(batch.timestamps_ms, TS_OFFSET, TS_WIDTH),
            packed(batch.classes, CLASS_OFFSET, CLASS_WIDTH),
            packed(confidence_buckets(batch.probabilities), CONF_OFFSET, CONF_WIDTH),
            version,
            window_rows(raw_features, batch.classes),
            *(("", "") if ack is None else (ack[1], b",".join(ack[2]))),
            JOIN_CLASS_RADIX, ordinal, JOIN_SERIES_RADIX, self.policy.step, epoch.start, epoch.first,
        ]
        return keys, args

    async def ingest_predictions(
        self, batch: PredictionBatch, raw_features: list[bytes], ack: tuple[str, str, list[bytes]] | None = None
    ) -> IngestResult:
        """Store the batch's state in each of its versions' series; with ``ack`` =
        (stream, group, entry ids), ack each version's entries in the same atomic
        script call that stores them, so state and ack can never part.
        """
        await self._pin_join_shards()
        new, closed = 0, {}
        for version, rows in version_groups(batch.model_versions):
            part = sub_batch(batch, rows)
            picked = rows.tolist()
            part_ack = ack if ack is None or len(rows) == len(batch) else (
                ack[0], ack[1], [ack[2][i] for i in picked])
            part_raw = raw_features if len(rows) == len(batch) else [raw_features[i] for i in picked]
            n, done = await self._ingest_version(version, part, part_raw, part_ack)
            new += n
            if done:
                closed[version] = done
        return IngestResult(new, [w for done in closed.values() for w in done], closed)

    async def _ingest_version(
        self, version: str, batch: PredictionBatch, raw_features: list[bytes],
        ack: tuple[str, str, list[bytes]] | None,
    ) -> tuple[int, list[int]]:
        """One version's call. Count windows: the call expects the ingest counter and window
        epoch this replica saw last; when another replica moved the counter, or the script
        began a new epoch (this monitor's window size or mode differs from the series'), it
        files nothing and answers both, and the call is made again with them (the new epoch is
        recorded, and the window it closes answered, by the call that files the batch)."""
        ordinal = await self.ordinals.ordinal(version)
        join = self.label_join is None or await self.label_join(version) != "carried"
        for _ in range(MAX_COUNTER_RACES):
            epoch = self._epochs.get(version) or CountEpoch(size=self.policy.step)
            keys, args = self.prediction_call(batch, raw_features, ack, self._counters.get(version, 0),
                                              ordinal=ordinal, join=join, epoch=epoch)
            new, closed, counter, start, first = await self._ingest_predictions(keys=keys, args=args)
            self._counters[version] = int(counter)
            self._epochs[version] = CountEpoch("count", self.policy.step, int(start), int(first))
            if int(new) >= 0:
                return int(new), [int(w) for w in closed]
        raise RuntimeError(f"lost the race for the ingest counter {MAX_COUNTER_RACES} times")

    # -- feedback -----------------------------------------------------------------
    async def _prediction_windows(self, slots: JoinSlots) -> list[SeriesWindow]:
        """The series windows of the predictions already joined (read before the script, which checks them)."""
        by_slot: list[list[bytes]] = [[] for _ in slots.buckets]
        for i, j in enumerate(slots.position.tolist()):
            by_slot[j].append(slots.field(i))
        async with self.client.pipeline(transaction=False) as pipe:
            for b, shard, members in zip(slots.buckets, slots.shards, by_slot, strict=True):
                pipe.hmget(self.keys.joined_predictions(b, shard), members)
            found = await pipe.execute()
        out = []
        for ordinal, window in sorted({join_series_window(tag) for tags in found for tag in tags if tag is not None}):
            version = await self.ordinals.version(ordinal)
            if version is None:  # written with an ordinal the registry does not hold: a broken state
                raise RuntimeError(f"join state names series ordinal {ordinal}, which no version has")
            out.append(SeriesWindow(version, ordinal, window))
        return out

    def feedback_call(
        self, batch: FeedbackBatch, windows: list[SeriesWindow], slots: JoinSlots | None = None
    ) -> ScriptCall:
        """KEYS and ARGV of ``ingest_feedback.lua`` for the predictions' series ``windows``."""
        slots = slots or join_slots(batch.ids, self.join_shards)
        k = self.keys
        keys = [k.feedback_counts, k.confusion_total, k.label_delays_total]
        for b, shard in zip(slots.buckets, slots.shards, strict=True):
            keys += [k.joined_labels(b, shard), k.joined_predictions(b, shard), k.waiting_labels(b)]
        for sw in windows:
            s = k.for_version(sw.version)
            keys += [s.confusion(sw.window), s.window_label_delays(sw.window), s.version_confusion_total,
                     s.version_label_delays_total]
        args: list[bytes | str | int] = [
            len(batch), len(slots.buckets), len(windows), self.retention_s,
            ",".join(series_window_id(sw.ordinal, sw.window) for sw in windows), JOIN_CLASS_RADIX, JOIN_SERIES_RADIX,
        ]
        rows = zip(batch.labels.tolist(), batch.timestamps_ms.tolist(), prediction_times_ms(batch.ids).tolist(),
                   (slots.position + 1).tolist(), strict=True)
        for i, (label, feedback_ts, predicted_ts, position) in enumerate(rows):
            args.extend((slots.field(i), label, feedback_ts, predicted_ts, position))
        return keys, args

    async def ingest_feedback(self, batch: FeedbackBatch) -> int:
        """Keep each label once and count it: joined by id, or from the prediction it carries;
        returns the labels new to Redis."""
        await self._pin_join_shards()
        if batch.predicted is None:
            return await self._ingest_joined(batch)
        carried = batch.predicted != NOT_CARRIED
        new = await self._ingest_joined(batch.rows(~carried)) if not carried.all() else 0
        return new + (await self._ingest_carried(batch.rows(carried)) if carried.any() else 0)

    async def _ingest_joined(self, batch: FeedbackBatch) -> int:
        """Labels that name only their prediction's id: joined through the join state."""
        slots = join_slots(batch.ids, self.join_shards)
        for _ in range(MAX_COUNTER_RACES):
            windows = await self._prediction_windows(slots)
            keys, args = self.feedback_call(batch, windows, slots)
            new = int(await self._ingest_feedback(keys=keys, args=args))
            if new >= 0:
                return new
        raise RuntimeError(f"predictions kept arriving during {MAX_COUNTER_RACES} reads of their windows")

    # -- feedback that carries its prediction ---------------------------------------
    async def _carried_windows(self, batch: FeedbackBatch) -> tuple[list[str], list[SeriesWindow], Column, Column]:
        """The batch's versions (each row's, or the current one), the series windows its labels fall
        in, and per row the position of its version and of its window (0: totals only)."""
        assert batch.versions is not None and batch.predicted_ms is not None
        given = batch.versions
        if "" in given:
            current = await read_current_version(self.client, self.keys)
            if current is None:
                raise RuntimeError(f"labels of model {self.keys.model!r} name no version and none is registered")
            given = [v or current for v in given]
        version_pos = np.zeros(len(batch), dtype=np.int64)
        window_pos = np.zeros(len(batch), dtype=np.int64)
        windows: list[SeriesWindow] = []
        groups = version_groups(given)
        for g, (version, rows) in enumerate(groups):
            version_pos[rows] = g + 1
            s = self.keys.for_version(version)
            bounds = None if self.policy.timed else await self.count_bounds.read(s)
            found = self.policy.windows_at(batch.predicted_ms[rows], bounds)
            counted = found != NO_WINDOW
            distinct, inverse = np.unique(found[counted], return_inverse=True)
            window_pos[rows[counted]] = len(windows) + 1 + inverse
            windows += [SeriesWindow(version, 0, int(w)) for w in distinct.tolist()]
        return [v for v, _ in groups], windows, version_pos, window_pos

    def carried_feedback_call(
        self, batch: FeedbackBatch, versions: list[str], windows: list[SeriesWindow], version_pos: Column,
        window_pos: Column,
    ) -> ScriptCall:
        """KEYS and ARGV of ``ingest_carried_feedback.lua`` (positions 1-based; window 0: none)."""
        assert batch.predicted is not None and batch.predicted_ms is not None
        slots = join_slots(batch.ids, self.join_shards)
        k = self.keys
        keys = [k.feedback_counts, k.confusion_total, k.label_delays_total]
        keys += [k.joined_labels(b, shard) for b, shard in zip(slots.buckets, slots.shards, strict=True)]
        for v in versions:
            s = k.for_version(v)
            keys += [s.version_confusion_total, s.version_label_delays_total]
        for sw in windows:
            s = k.for_version(sw.version)
            keys += [s.confusion(sw.window), s.window_label_delays(sw.window)]
        args: list[bytes | str | int] = [len(batch), len(slots.buckets), len(versions), len(windows), self.retention_s]
        rows = zip(batch.labels.tolist(), batch.timestamps_ms.tolist(), batch.predicted_ms.tolist(),
                   batch.predicted.tolist(), (slots.position + 1).tolist(), version_pos.tolist(), window_pos.tolist(),
                   strict=True)
        for i, row in enumerate(rows):
            args.extend((slots.field(i), *row))
        return keys, args

    async def _ingest_carried(self, batch: FeedbackBatch) -> int:
        """Labels that carry their prediction's class and time: counted without join state."""
        versions, windows, version_pos, window_pos = await self._carried_windows(batch)
        keys, args = self.carried_feedback_call(batch, versions, windows, version_pos, window_pos)
        return int(await self._carried_script(keys=keys, args=args))
