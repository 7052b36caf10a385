"""Background publisher: requests hand events over in memory, a task writes them in batches.

An awaited XADD per request cost 43% of throughput here; a queue drained by
one task into batched XADDs costs about 11%. ``submit`` and
``submit_predictions`` never wait and never touch Redis or the disk, so
neither a dead nor a slow Redis can fail or slow a prediction. Predictions are
queued as the model's arrays and encoded per batch by the writer
(:mod:`model_service.stream_writes`), so a request pays almost nothing for
its event.

Fault handling, in order of the events' age:

- **Spill.** When a write fails (Redis unreachable, a timeout) or the queue
  passes its high-water mark (Redis too slow), the publisher stops waiting on
  Redis: the batch in hand and everything queued go, in order, to a local
  append-only file (:mod:`model_service.spill`), and new events follow them
  there while Redis stays away. It probes Redis with backoff; when Redis
  answers, the file is replayed, oldest batch first, before anything newer in
  memory, and truncated only once every batch in it is in Redis. A file left
  by a stopped or crashed process is replayed first at the next start.
- **Exactly once.** A batch is written by one Lua script, in one round trip:
  it sets the batch's marker key (``SET NX PX``) and XADDs the entries only if
  the marker was new, atomically. A batch id is fixed when the batch leaves
  the queue and travels with it into the spill file, so every retry of an
  ambiguous write (the connection dropped after the script was sent; the
  process died before moving the file's cursor) lands at most once while the
  marker lives (``dedup_ttl_s``).
- **Bounded.** Past ``queue_max`` in memory or ``spill.max_bytes`` on disk
  events are dropped and counted (metric ``driftwatch.events.dropped`` with a
  reason, and ``/readyz``), never silently.
- **Shutdown** (``close``): the queue and the file drain to Redis while it
  answers, within a deadline; whatever is left goes to the spill file.
- **Supervised.** The writer task runs under :func:`shared.supervision.supervise`:
  if it raises (a script error, a bug), the failure is logged with its
  traceback, counted, shown in ``/readyz`` (``publisher.task_error``) and the
  writer starts again with backoff, the batch in hand still first in line.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from model_service.spill import SpillCorruptError, SpillFile, encode_batch
from model_service.stream_writes import (
    PredictionBlock,
    StreamEntry,
    entries_script_args,
    predictions_script_args,
)
from shared.keys import Keys, hash_tag_prefix
from shared.redis_scripts import register_script
from shared.supervision import FailureListener, TaskHealth, supervise
from shared.telemetry import ModelServiceMetrics

log = logging.getLogger(__name__)

_RETRYABLE = (RedisConnectionError, RedisTimeoutError, OSError)

WRITER_TASK = "event-publisher"


@dataclass(slots=True)
class PublisherStats:
    published: int = 0
    dropped: int = 0
    dropped_queue_full: int = 0
    dropped_spill_full: int = 0
    failed_writes: int = 0
    duplicate_batches: int = 0  # replays Redis had already (marker present)
    spilled: int = 0
    replayed: int = 0
    spilling: bool = False
    last_error: str | None = None


@dataclass(slots=True)
class _Batch:
    """What one script call writes: generic entries, or prediction blocks of one shape."""

    id: bytes
    entries: list[StreamEntry]
    blocks: list[PredictionBlock] = field(default_factory=list)
    # Set when the batch was read from a spill file: (file, cursor after it).
    source: tuple[SpillFile, int] | None = field(default=None)

    @property
    def size(self) -> int:
        return len(self.entries) + sum(len(b) for b in self.blocks)

    def as_entries(self) -> list[StreamEntry]:
        """Every event as a generic entry (for the spill file)."""
        return self.entries + [e for b in self.blocks for e in b.entries()]


QueueItem = StreamEntry | PredictionBlock


class EventPublisher:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        maxlen: int,
        metrics: ModelServiceMetrics | None = None,
        batch_size: int = 256,
        queue_max: int = 100_000,
        high_water: int | None = None,
        spill: SpillFile | None = None,
        orphan_spills: Sequence[SpillFile] = (),
        dedup_ttl_s: int = 3_600,
        backoff_initial_s: float = 0.05,
        backoff_max_s: float = 2.0,
        spill_interval_s: float = 0.05,
        linger_s: float = 0.0,
        on_failure: FailureListener | None = None,
    ) -> None:
        """``linger_s``: after a write that left less than a batch queued, wait this
        long before the next one, so light traffic still leaves in batches: a
        write costs ~100 us of the server's CPU whether it carries 2 events or 200."""
        self._client = client
        self._linger_s = linger_s
        self._maxlen = maxlen
        self._batch_size = batch_size
        self._queue_max = queue_max
        self._high_water = min(high_water or queue_max // 2, queue_max)
        self._queue: collections.deque[QueueItem] = collections.deque()
        self._queue_events = 0  # events in _queue (a block holds several)
        self._inflight: _Batch | None = None
        self._spill = spill
        # Files to replay, oldest first: those of dead processes, then our own.
        self._replay_files: list[SpillFile] = [*orphan_spills, *([spill] if spill else [])]
        self._dedup_ttl_ms = dedup_ttl_s * 1000
        self._wakeup = asyncio.Event()
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._spill_interval_s = spill_interval_s
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()  # ends the writer's restart backoff at shutdown
        self._on_failure = on_failure
        self.health = TaskHealth(WRITER_TASK)
        self.stats = PublisherStats()
        self._metrics = metrics
        self._write_entries = register_script(client, "model_service", "write_entries.lua")
        self._write_predictions = register_script(client, "model_service", "write_predictions.lua")

    # -- the request side -----------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queue_events + (self._inflight.size if self._inflight else 0)

    @property
    def spill_pending(self) -> int:
        """Events in spill files, not replayed to Redis yet."""
        return sum(f.pending_events for f in self._replay_files)

    @property
    def spill_bytes(self) -> int:
        return sum(f.size_bytes for f in self._replay_files)

    def submit(self, entries: list[StreamEntry]) -> int:
        """Queue entries (of any model's streams) without waiting; returns how many were
        dropped for lack of room."""
        room = self._queue_max - self._queue_events
        accepted = entries if len(entries) <= room else entries[: max(room, 0)]
        self._queue.extend(accepted)
        self._queue_events += len(accepted)
        if len(accepted) < len(entries):
            self._count_drop(_per_stream(entries[len(accepted):]), "queue_full")
        self._wakeup.set()
        return len(entries) - len(accepted)

    def submit_predictions(self, block: PredictionBlock) -> int:
        """Queue a block of predictions as it is (encoded later, per batch); returns the rows dropped."""
        rows = len(block)
        room = max(self._queue_max - self._queue_events, 0)
        dropped = rows - room if rows > room else 0
        if dropped:
            self._count_drop({(block.header.stream, block.header.version): dropped}, "queue_full")
            block, rows = block.head(room), room
        if rows:
            self._queue.append(block)
            self._queue_events += rows
        self._wakeup.set()
        return dropped

    def _count_drop(self, counts: dict[tuple[str, str | None], int], reason: str) -> None:
        """Count lost events by stream (and model version, where known) for the metrics."""
        n = sum(counts.values())
        self.stats.dropped += n
        if reason == "queue_full":
            self.stats.dropped_queue_full += n
        else:
            self.stats.dropped_spill_full += n
        if self._metrics is not None:
            for (stream, version), count in counts.items():
                model, kind = _model_and_kind(stream)
                self._metrics.dropped(count, reason, kind, model=model, model_version=version)
        log.warning("publisher: dropped %d events (%s)", n, reason)

    # -- lifecycle --------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(
            supervise(WRITER_TASK, self._run, stop=self._closed, health=self.health, on_failure=self._on_failure,
                      backoff_initial_s=self._backoff_initial_s, backoff_max_s=self._backoff_max_s),
            name=WRITER_TASK,
        )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and self.health.running

    async def close(self, timeout_s: float = 10.0) -> None:
        """Flush to Redis within ``timeout_s``; spill what is left (if a spill file is set), then stop."""
        self._closing = True
        self._closed.set()
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            except Exception:
                log.exception("publisher task failed")
        left = self.queued
        if left and self._spill is not None:
            self._spill_all_sync()
            left = self.queued
        if left:
            log.error("publisher: %d events not flushed at shutdown", left)
        for spill in self._replay_files:
            if spill.has_pending:
                log.warning("publisher: %d events stay in %s for the next start", spill.pending_events, spill.path)
            spill.close(remove_if_empty=spill is not self._spill)

    # -- the writer task -----------------------------------------------------------
    async def _run(self) -> None:
        backoff = self._backoff_initial_s
        next_probe = 0.0
        while True:
            if self._spill is not None and self.stats.spilling:
                await self._spill_memory()
                if self._closing:
                    return  # Redis is away: what was queued is on disk
                now = time.monotonic()
                if now >= next_probe:
                    if await self._probe():
                        self._set_spilling(False, "Redis answers again")
                        backoff = self._backoff_initial_s
                        continue
                    backoff = min(backoff * 2, self._backoff_max_s)
                    next_probe = now + backoff
                await self._sleep(min(self._spill_interval_s, max(next_probe - time.monotonic(), 0.0)))
                continue
            if self._spill is not None and self._queue_events > self._high_water:
                self._set_spilling(True, f"queue above its high-water mark ({self._high_water})")
                next_probe = time.monotonic() + self._backoff_initial_s
                continue
            batch = self._next_batch()
            if batch is None:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                written = await self._write(batch)
            except _RETRYABLE as exc:
                self.stats.failed_writes += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if self._spill is not None:
                    self._set_spilling(True, f"write failed ({exc})")
                    backoff = self._backoff_initial_s
                    next_probe = time.monotonic() + backoff
                else:
                    log.warning("publisher: Redis write failed (%s); retrying in %.2fs", exc, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self._backoff_max_s)
                continue
            self._done(batch, written)
            backoff = self._backoff_initial_s
            if self._linger_s > 0 and self._queue_events < self._batch_size and not self._closing:
                await asyncio.sleep(self._linger_s)  # not _sleep: a submit must not cut it short

    def _next_batch(self) -> _Batch | None:
        """The oldest unwritten batch: spill files first, then the batch in hand, then the queue."""
        for spill in self._replay_files:
            if not spill.has_pending:
                continue
            try:
                found = spill.peek()
            except SpillCorruptError:
                log.exception("publisher: unreadable spill file")
                spill.skip_corrupt()
                continue
            if found is not None:
                batch_id, entries, next_offset = found
                return _Batch(batch_id, entries, source=(spill, next_offset))
        if self._inflight is None and self._queue:
            self._inflight = self._take()
        return self._inflight

    def _take(self) -> _Batch:
        """Fix the next batch (and its id) from the queue: one script call's worth.

        Prediction blocks of one shape go together; other entries go together
        if they are of one cluster slot.
        """
        # A backlog leaves in larger batches: a write costs the same CPU for 2
        # events or 200, and under overload that CPU is what the requests need.
        limit = self._batch_size if self._queue_events < 4 * self._batch_size else 8 * self._batch_size
        first = self._queue.popleft()
        if isinstance(first, PredictionBlock):
            blocks, size = [first], len(first)
            while self._queue and size < limit:
                nxt = self._queue[0]
                if not isinstance(nxt, PredictionBlock) or not first.joins(nxt):
                    break
                blocks.append(nxt)
                self._queue.popleft()
                size += len(nxt)
            self._queue_events -= size
            return _Batch(os.urandom(16), [], blocks)
        entries = [first]
        stream, tag = first[0], hash_tag_prefix(first[0])
        while self._queue and len(entries) < limit:
            nxt = self._queue[0]
            if isinstance(nxt, PredictionBlock):
                break
            if nxt[0] != stream:
                if hash_tag_prefix(nxt[0]) != tag:
                    break
                stream = nxt[0]
            entries.append(nxt)
            self._queue.popleft()
        self._queue_events -= len(entries)
        return _Batch(os.urandom(16), entries)

    def _done(self, batch: _Batch, written: bool) -> None:
        n = batch.size
        if batch.source is not None:
            spill, next_offset = batch.source
            spill.advance(next_offset, n)
            self.stats.replayed += n
        else:
            self._inflight = None
        if not written:
            self.stats.duplicate_batches += 1
            return
        self.stats.published += n
        if self._metrics is not None:
            for (stream, version), count in _batch_counts(batch).items():
                model, kind = _model_and_kind(stream)
                self._metrics.published(count, kind, model=model, model_version=version)

    async def _write(self, batch: _Batch) -> bool:
        """Write a batch once: True if written now, False if Redis already had it."""
        head = batch.blocks[0].header.stream if batch.blocks else batch.entries[0][0]
        marker = Keys.of_stream(head).publish_batch(batch.id.hex())
        limits = [self._dedup_ttl_ms, self._maxlen]
        if batch.blocks:
            columns = predictions_script_args(batch.blocks)
            return bool(await self._write_predictions(keys=[marker, head], args=[*limits, *columns]))
        streams, packed = entries_script_args(batch.entries)
        return bool(await self._write_entries(keys=[marker, *streams], args=[*limits, packed]))

    async def _probe(self) -> bool:
        try:
            return bool(await self._client.ping())
        except _RETRYABLE as exc:
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            return False

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once for a shutdown (only: a submit must not cut a backoff or a
        spill round short, or every event would make its own Redis attempt or spill record)."""
        if seconds <= 0 or self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), seconds)

    def _set_spilling(self, on: bool, why: str) -> None:
        if on != self.stats.spilling:
            log.warning("publisher: %s; %s", why, "spilling to disk" if on else "replaying the spill file")
        self.stats.spilling = on

    # -- spilling ----------------------------------------------------------------------
    async def _spill_memory(self) -> None:
        """Move the batch in hand, then the queue, batch by batch, to the spill file (in a thread).

        Only what is queued when it starts: events that arrive during the
        appends wait for the next round (``spill_interval_s`` later, or at
        shutdown). Chasing them made one record per fsync, a few events each
        (~1.8 under load), and the replay pays one Redis round trip per record:
        5,000 events spilled that way took over 30 s to replay on a loaded
        machine. Waiting gathers a round's arrivals into one record.
        """
        left = self.queued
        while (self._inflight is not None or self._queue) and (left > 0 or self._closing):
            if self._inflight is None:
                self._inflight = self._take()
            batch = self._inflight
            left -= batch.size
            record = encode_batch(batch.id, batch.as_entries())
            assert self._spill is not None
            try:
                stored = await asyncio.to_thread(self._spill.append, record, batch.size)
            except OSError:
                log.exception("publisher: cannot write the spill file")
                stored = False
            self._after_spill(batch, stored)

    def _spill_all_sync(self) -> None:
        """At shutdown, past the deadline: the rest goes to disk from the event loop's thread."""
        assert self._spill is not None
        while self._inflight is not None or self._queue:
            if self._inflight is None:
                self._inflight = self._take()
            batch = self._inflight
            try:
                stored = self._spill.append(encode_batch(batch.id, batch.as_entries()), batch.size)
            except OSError:
                log.exception("publisher: cannot write the spill file")
                stored = False
            self._after_spill(batch, stored)

    def _after_spill(self, batch: _Batch, stored: bool) -> None:
        if stored:
            self.stats.spilled += batch.size
        else:
            self._count_drop(_batch_counts(batch), "spill_full")
        self._inflight = None


def _model_and_kind(stream: str) -> tuple[str | None, str]:
    """The model and the kind (``predictions``, ``feedback``) of a stream key, for metric attributes."""
    try:
        model: str | None = Keys.of_stream(stream).model
    except ValueError:
        model = None
    return model, stream.rsplit(":", 1)[-1]


def _per_stream(entries: Sequence[StreamEntry]) -> dict[tuple[str, str | None], int]:
    """Entries by stream; their model version is the one a prediction entry names (``mv``), if any."""
    counts: collections.Counter[tuple[str, str | None]] = collections.Counter()
    for stream, fields in entries:
        version = fields.get(b"mv")
        counts[stream, version.decode() if version is not None else None] += 1
    return dict(counts)


def _batch_counts(batch: _Batch) -> dict[tuple[str, str | None], int]:
    counts = _per_stream(batch.entries)
    for block in batch.blocks:
        key = (block.header.stream, block.header.version)
        counts[key] = counts.get(key, 0) + len(block)
    return counts
