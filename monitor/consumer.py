"""The consumer-group loop: read both streams, update state, ack.

Order of work per batch: decode (vectorised), update state in Redis (atomic,
idempotent scripts), then XACK. A crash anywhere before the ack leaves the
entries pending; they come back to this consumer on restart (it reads its own
pending entries first) or to another one through XAUTOCLAIM, and the scripts
make the second delivery a no-op. An entry that cannot be decoded, or keeps
failing, goes to the dead-letter stream with its reason, so one bad event
never stalls the rest.

A batch of predictions is split by model version first: each version has its
own window series and may have its own feature count (a canary, or a v1
straggler after v2 began), so each version's entries are decoded, checked
against that version's metadata, stored and acked on their own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.window_state import WindowState, version_groups
from shared.events import (
    EventDecodeError,
    FeedbackBatch,
    Fields,
    PredictionBatch,
    decode_feedback,
    decode_predictions,
)
from shared.keys import CONSUMER_GROUP, Keys
from shared.log_context import bound_model
from shared.outage_log import OutageLog
from shared.redis_scripts import register_script

log = logging.getLogger(__name__)

Decoded = TypeVar("Decoded", PredictionBatch, FeedbackBatch)

Entry = tuple[bytes, dict[bytes, bytes]]
WindowsClosed = Callable[[list[int]], Awaitable[None]]
ExpectedFeatures = Callable[[str], Awaitable[int | None]]

HEARTBEAT_TTL_MS = 15_000
# Written at most this often: once per step cost a SET per read, 1,000 a second with 50 models.
HEARTBEAT_EVERY_S = 2.0

_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


def _stream_id_order(entry_id: bytes) -> tuple[int, int]:
    ms, seq = entry_id.split(b"-")
    return int(ms), int(seq)


def default_consumer_name() -> str:
    """``<host>-<pid>``: the name of a consumer when ``DRIFTWATCH_CONSUMER_NAME`` is unset."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(slots=True)
class ConsumerStats:
    predictions: int = 0
    feedback: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    claimed: int = 0
    failed: int = 0  # entries whose processing raised; left pending, redelivered, dead-lettered after N
    trimmed: int = 0  # pending entries trimmed from the stream (MAXLEN) before they were processed


class StreamConsumer:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        state: WindowState,
        *,
        consumer: str,
        read_count: int,
        block_ms: int,
        claim_idle_ms: int,
        max_deliveries: int,
        dlq_maxlen: int = 100_000,
        stats: ConsumerStats | None = None,
        on_windows_closed: WindowsClosed | None = None,
        expected_features: ExpectedFeatures | None = None,
        linger_ms: int = 0,
        slow_linger_ms: int = 0,
    ) -> None:
        """``linger_ms``: after a read that was not full (fewer than ``read_count`` entries), the
        next read waits this long, so a slow stream is read in batches, not one entry at a time.
        ``slow_linger_ms``: after a read of fewer than a tenth of ``read_count``, the next waits
        this long instead (if longer): a stream that slow (one of many models) still leaves in
        batches worth their fixed cost (round trips, scripts, task wake-ups)."""
        self.client = client
        self.keys = keys
        self.state = state
        self.consumer = consumer
        self.read_count = read_count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.dlq_maxlen = dlq_maxlen
        self.on_windows_closed = on_windows_closed
        self.expected_features = expected_features
        # Passed in when others read it too (stream health, readiness, metrics).
        self.stats = stats if stats is not None else ConsumerStats()
        self._streams = (keys.predictions, keys.feedback)
        self._dead_letter_script = register_script(client, "monitor", "dead_letter.lua")
        self._last_claim = 0.0
        # Last processing error per entry id, for the dead-letter reason (bounded).
        self._errors: dict[bytes, str] = {}
        self._resync = False
        self._read_ahead: asyncio.Future[list[tuple[bytes, list[Entry]]]] | None = None
        self.linger_s = linger_ms / 1000
        self.slow_linger_s = max(slow_linger_ms / 1000, self.linger_s)
        self._slow_read = max(read_count // 10, 1)
        self._last_heartbeat = float("-inf")
        # An outage is said once, and its end once, however many retries it takes.
        self._outage = OutageLog(log, "monitor")

    async def ensure_groups(self) -> None:
        """Create the group at the start of each stream, so events published before
        the first monitor started are consumed too."""
        for stream in self._streams:
            try:
                await self.client.xgroup_create(stream, CONSUMER_GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set. Redis outages are waited out, not fatal."""
        backoff = 0.1
        await self._drain_own_pending(stop)
        try:
            while not stop.is_set():
                try:
                    if self._resync:
                        # Entries read before an outage and not acked come back first, in order.
                        self._resync = False
                        await self.drop_read_ahead()
                        await self._drain_own_pending(stop)
                    await self.heartbeat()
                    await self.claim_abandoned()
                    await self.step()
                    self._outage.answered()
                    backoff = 0.1
                except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                    self._outage.failed(exc, f"retrying in {backoff:.1f}s")
                    self._resync = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    await self.drop_read_ahead()
                    await self.ensure_groups()  # the stream was deleted under us
        finally:
            await self.drop_read_ahead()

    async def _drain_own_pending(self, stop: asyncio.Event) -> None:
        """After a restart, entries this consumer name read but never acked come first.

        Reading from id 0 walks this consumer's pending entries list; the cursor
        moves past each batch, so an entry left pending (its processing failed)
        is not read again in this pass. Each read counts as a delivery, so an
        entry that keeps killing the process goes to the DLQ after N restarts.
        """
        cursors: dict[str, bytes | str] = dict.fromkeys(self._streams, "0")
        while cursors and not stop.is_set():
            try:
                await self._drain_pending_batch(cursors)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._outage.failed(exc, "reading pending entries again in 0.5s")
                await asyncio.sleep(0.5)

    async def _drain_pending_batch(self, cursors: dict[str, bytes | str]) -> None:
        response = await self.client.xreadgroup(CONSUMER_GROUP, self.consumer, cursors, count=self.read_count)
        done = set(cursors)
        for stream_name, entries in response or []:
            stream = stream_name.decode()
            if not entries:
                continue
            trimmed = [entry_id for entry_id, fields in entries if not fields]
            if trimmed:  # trimmed (MAXLEN) before anyone processed them: nothing left to process
                self.stats.trimmed += len(trimmed)
                await self._ack(stream, trimmed)
                log.warning("monitor: %d pending entries of %s were trimmed unprocessed", len(trimmed), stream)
            live = [e for e in entries if e[1]]
            if live:
                await self._process_redelivered(stream, live)
            cursors[stream] = entries[-1][0]
            if len(entries) >= self.read_count:
                done.discard(stream)
        for stream in done:
            cursors.pop(stream, None)

    async def step(self) -> int:
        """Read and process one batch of new entries from both streams; returns entries handled.

        After a batch that was not empty, the next read is sent at once, before
        this batch is processed: Redis serves it first, then runs this batch's
        ingest script while this process parses the entries read ahead, so the
        two overlap instead of taking turns (ingest 0.42-0.45 -> 0.61-0.66 of the raw
        read+ack rate in ``benchmarks/ingest.py``). Entries read ahead are
        delivered, not yet processed: if this consumer stops or loses Redis
        first, they stay in its pending list and come back like any other.
        """
        read, self._read_ahead = self._read_ahead, None
        response = await (read if read is not None else self._read_new())
        if response:
            self._read_ahead = asyncio.ensure_future(self._read_new(self._linger_after(response)))
            # A hint, not a condition of correctness: a few loop turns let redis-py
            # take a connection and write the read before this batch's script goes.
            for _ in range(3):
                await asyncio.sleep(0)
        handled = 0
        for stream_name, entries in response or []:
            if entries:
                await self.process_safely(stream_name.decode(), entries)
                handled += len(entries)
        return handled

    def _linger_after(self, response: list[tuple[bytes, list[Entry]]]) -> float:
        """How long the next read waits: not at all after a full read, longer after a thin one."""
        if any(len(entries) >= self.read_count for _, entries in response):
            return 0.0
        if sum(len(entries) for _, entries in response) < self._slow_read:
            return self.slow_linger_s
        return self.linger_s

    async def _read_new(self, linger_s: float = 0.0) -> list[tuple[bytes, list[Entry]]]:
        if linger_s > 0:
            # Entries arriving meanwhile wait in the stream (not delivered yet): a stop or an
            # outage during the wait loses nothing.
            await asyncio.sleep(linger_s)
        response: list[tuple[bytes, list[Entry]]] = await self.client.xreadgroup(
            CONSUMER_GROUP,
            self.consumer,
            dict.fromkeys(self._streams, ">"),
            count=self.read_count,
            block=self.block_ms,
        )
        return response or []

    async def drop_read_ahead(self) -> None:
        """Forget a read sent ahead (stopping, or resyncing after an outage): what it
        delivered is in this consumer's pending list, read again from there."""
        read, self._read_ahead = self._read_ahead, None
        if read is not None:
            read.cancel()
            await asyncio.gather(read, return_exceptions=True)

    async def process_safely(self, stream: str, entries: Sequence[Entry]) -> None:
        """Process a batch; if it raises, process its entries one by one so one bad
        entry holds back only itself. A failing entry stays pending (not acked): it
        is redelivered through XAUTOCLAIM and dead-lettered after ``max_deliveries``."""
        try:
            await self.process(stream, entries)
            return
        except _TRANSIENT:
            raise
        except Exception as exc:  # processing bugs and script errors, not cancellation
            if len(entries) == 1:
                self._failed(entries[0][0], exc)
                return
            log.warning("monitor: a batch of %d entries of %s failed (%r); retrying one by one",
                        len(entries), stream, exc)
        for entry in entries:
            try:
                await self.process(stream, [entry])
            except _TRANSIENT:
                raise
            except Exception as exc:
                self._failed(entry[0], exc)

    def _failed(self, entry_id: bytes, exc: Exception) -> None:
        self.stats.failed += 1
        if len(self._errors) >= 10_000:
            self._errors.pop(next(iter(self._errors)))
        self._errors[entry_id] = f"{type(exc).__name__}: {exc}"[:500]
        log.error("monitor: processing entry %s failed: %r (left pending for redelivery)", entry_id, exc)

    async def process(self, stream: str, entries: Sequence[Entry]) -> None:
        if stream == self.keys.predictions:
            await self._process_predictions(entries)
        else:
            await self._process_feedback(entries)

    async def _process_predictions(self, entries: Sequence[Entry]) -> None:
        versions = [f.get(b"mv", b"") for _, f in entries]
        closed: list[int] = []
        for version, rows in version_groups(versions):
            group = entries if len(rows) == len(entries) else [entries[i] for i in rows.tolist()]
            with bound_model(self.keys.model, version.decode(errors="replace") or None):
                closed += await self._process_version(group)
        if closed and self.on_windows_closed is not None:
            try:
                await self.on_windows_closed(closed)
            except _TRANSIENT:
                raise
            except Exception:
                # The entries are acked and the window stays in the to-report set:
                # the next closed window (or a restart) reports it again.
                log.exception("monitor: reporting windows %s failed", closed)

    async def _process_version(self, entries: Sequence[Entry]) -> list[int]:
        """Entries of one model version (one width): decode, store and ack, dead-letter
        the undecodable; returns the windows the batch closed."""
        good, bad, decoded = await self._split_decodable(entries, self._check_prediction)
        closed: list[int] = []
        if good:
            fields = [f for _, f in good]
            batch = decoded if decoded is not None else decode_predictions(fields)
            ack = (self.keys.predictions, CONSUMER_GROUP, [i for i, _ in good])
            result = await self.state.ingest_predictions(batch, [f[b"x"] for f in fields], ack)
            self.stats.predictions += result.new
            self.stats.duplicates += len(good) - result.new
            closed = result.closed_windows
        await self._dead_letter(self.keys.predictions, bad)
        return closed

    async def _process_feedback(self, entries: Sequence[Entry]) -> None:
        good, bad, _ = await self._split_decodable(entries, self._check_feedback)
        if good:
            batch = decode_feedback([f for _, f in good])
            new = await self.state.ingest_feedback(batch)
            self.stats.feedback += new
            self.stats.duplicates += len(good) - new
            await self._ack(self.keys.feedback, [i for i, _ in good])
        await self._dead_letter(self.keys.feedback, bad)

    async def _check_prediction(self, fields: Sequence[Fields]) -> PredictionBatch:
        batch = decode_predictions(fields)
        if self.expected_features is not None:
            for version in set(batch.model_versions):
                expected = await self.expected_features(version)
                if expected is not None and batch.features.shape[1] != expected:
                    raise EventDecodeError(
                        f"{batch.features.shape[1]} features, model version {version} has {expected}"
                    )
        return batch

    async def _check_feedback(self, fields: Sequence[Fields]) -> FeedbackBatch:
        return decode_feedback(fields)

    async def _split_decodable(
        self, entries: Sequence[Entry], check: Callable[[Sequence[Fields]], Awaitable[Decoded]]
    ) -> tuple[list[Entry], list[tuple[Entry, str]], Decoded | None]:
        """The whole batch decodes in one go in the normal case (and that decoding is
        returned, to be used, not repeated); only a failing batch is decoded entry by
        entry to find the bad ones."""
        try:
            return list(entries), [], await check([f for _, f in entries])
        except EventDecodeError:
            pass
        good: list[Entry] = []
        bad: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                await check([entry[1]])
                good.append(entry)
            except EventDecodeError as exc:
                bad.append((entry, str(exc)))
        if good:
            # Entries can decode alone yet disagree with each other (feature counts).
            try:
                await check([f for _, f in good])
            except EventDecodeError as exc:
                width = len(good[0][1].get(b"x", b""))
                bad += [(e, str(exc)) for e in good if len(e[1].get(b"x", b"")) != width]
                good = [e for e in good if len(e[1].get(b"x", b"")) == width]
        return good, bad, None

    async def _ack(self, stream: str, ids: list[bytes]) -> None:
        if ids:
            await self.client.xack(stream, CONSUMER_GROUP, *ids)

    async def _dead_letter(self, stream: str, bad: list[tuple[Entry, str]]) -> None:
        """Move ``bad`` to the DLQ with their reasons, each entry at most once (``dead_letter.lua``
        writes only the entries its XACK took out of the pending list)."""
        if not bad:
            return
        args: list[bytes | str | int] = [CONSUMER_GROUP, self.dlq_maxlen]
        for (entry_id, fields), reason in bad:
            record: list[bytes | str] = ["stream", stream, "entry_id", entry_id, "reason", reason]
            for k, v in fields.items():
                record += [b"f:" + k, v]
            args += [entry_id, len(record), *record]
        written = int(await self._dead_letter_script(keys=[stream, self.keys.dlq], args=args))
        if written:
            self.stats.dead_lettered += written
            log.warning("monitor: %d entries of %s dead-lettered: %s", written, stream, bad[0][1])

    async def heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat < HEARTBEAT_EVERY_S:
            return
        await self.client.set(self.keys.heartbeat(self.consumer), str(time.time()), px=HEARTBEAT_TTL_MS)
        self._last_heartbeat = now

    async def claim_abandoned(self) -> None:
        """Take over entries a dead consumer read but never acked (XAUTOCLAIM),
        dead-lettering those delivered too often: an entry that kills every
        consumer that reads it must not kill them forever."""
        now = time.monotonic()
        if now - self._last_claim < self.claim_idle_ms / 2000:
            return
        self._last_claim = now
        for stream in self._streams:
            cursor = "0-0"
            while True:
                cursor, claimed, *deleted = await self.client.xautoclaim(
                    stream, CONSUMER_GROUP, self.consumer, self.claim_idle_ms, start_id=cursor, count=self.read_count
                )
                if deleted and deleted[0]:  # trimmed before processing; Redis 7 drops them from the PEL
                    self.stats.trimmed += len(deleted[0])
                claimed = [e for e in claimed if e[1]]
                if claimed:
                    self.stats.claimed += len(claimed)
                    await self._process_claimed(stream, claimed)
                if cursor in (b"0-0", "0-0"):
                    break

    async def _process_claimed(self, stream: str, claimed: list[Entry]) -> None:
        await self._process_redelivered(stream, claimed)

    async def _process_redelivered(self, stream: str, entries: list[Entry]) -> None:
        """Entries delivered before (claimed, or this consumer's own pending): those
        delivered more than ``max_deliveries`` times go to the DLQ with their reason,
        the rest are processed. XAUTOCLAIM and XREADGROUP from id 0 both count a
        delivery, so the count read here includes this one: an entry is processed
        at most ``max_deliveries`` times."""
        ids = sorted((entry_id for entry_id, _ in entries), key=_stream_id_order)
        pending = await self.client.xpending_range(
            stream, CONSUMER_GROUP, min=ids[0], max=ids[-1], count=len(ids) + 1_000, consumername=self.consumer
        )
        deliveries = {p["message_id"]: p["times_delivered"] for p in pending}
        poison: list[tuple[Entry, str]] = []
        healthy: list[Entry] = []
        for entry in entries:
            times = deliveries.get(entry[0], 0)
            if times > self.max_deliveries:
                last = self._errors.pop(entry[0], "unknown (the consumer died or stopped while processing it)")
                poison.append((entry, f"delivered {times} times without being processed; last error: {last}"))
            else:
                healthy.append(entry)
        await self._dead_letter(stream, poison)
        if healthy:
            await self.process_safely(stream, healthy)
