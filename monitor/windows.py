"""Drift windows: which ingest windows make up a drift window, and when their rows go.

Every model version has its own series of windows (``Keys(model, version)``):
numbering starts at 0 for each version, a window holds rows of one version
only, and it is tested against that version's reference. Everything below
happens within one series; the reads take a version and default to the
model's current one (``model_info`` field ``version``).

The ingest script (:mod:`monitor.window_state`) files each prediction's row into an
*ingest window* and marks the window for reporting when it closes. A drift
window is built from those:

- ``count`` (default): tumbling windows of ``DRIFTWATCH_WINDOW_SIZE``
  predictions; one ingest window is one drift window. They are numbered
  from the series' :class:`CountEpoch`, which the ingest script begins anew
  when the size or mode changes (the window in progress is closed short).
- ``sliding``: the ingest windows are the *steps* (``DRIFTWATCH_WINDOW_SIZE``
  rows each) and drift window ``w`` is the last ``span = SLIDING_SIZE / STEP``
  steps ``w - span + 1 .. w`` (fewer while the stream is young: those windows
  are smaller, and below the minimum size they report ``insufficient_data``).
  A step's rows are needed by ``span`` drift windows, so they are deleted when
  the last of those is stored, not before: every report records, inside one
  script, which steps it used (``used-by`` sets; idempotent, so two replicas
  reporting the same window change nothing), and a step whose set is complete
  loses its rows.
- ``time``: tumbling windows of ``DRIFTWATCH_WINDOW_SECONDS`` of prediction
  time. The ingest call files rows by ``slots_of(timestamps)`` and closes
  a window once a later one has received data, or once its time (plus a
  grace period) is over; the reporter side is the same as ``count``, with
  the window's bounds read from its index.
- ``sliding-time``: the ingest windows are time slots as in ``time``, and
  drift window ``w`` is the slots ``w - span + 1 .. w`` (``span =
  SLIDING_SECONDS / WINDOW_SECONDS``), reported when slot ``w`` closes with
  rows in it. Slots without predictions have no rows and no report, so the
  ``used-by`` count of ``sliding`` would never complete; instead a reported
  slot is *retained*, and its rows go once every slot that could still use
  them is closed and none of those is waiting for its report (checked in the
  script that stores each report).

Why the reporter composes sliding windows instead of the ingest script
copying each row into ``span`` windows: memory and ingest cost stay those of
one tumbling window per step, and the incremental KS (:class:`SlidingKS`)
needs exactly one new step per report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from monitor.monitor_settings import MonitorSettings
from shared.keys import Keys
from shared.redis_scripts import register_script
from shared.registry import read_current_version

__all__ = [
    "NO_WINDOW", "CountEpoch", "WindowBounds", "WindowIndex", "WindowMode", "WindowPolicy", "WindowProgress",
    "WindowStore", "of_current_mode", "read_count_position",
]

WindowMode = Literal["count", "time", "sliding", "sliding-time"]
TIME_MODES = ("time", "sliding-time")


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    """How drift windows are made from ingest windows.

    ``step`` is the ingest window size in rows (``DRIFTWATCH_WINDOW_SIZE``);
    ``size`` the drift window size in rows (``DRIFTWATCH_SLIDING_SIZE`` for
    sliding windows, else ``step``); ``seconds`` the time slot length and
    ``sliding_seconds`` the drift window length of ``sliding-time``.
    """

    mode: WindowMode = "count"
    step: int = 1_000
    size: int = 1_000
    seconds: int = 300
    min_size: int = 30
    sliding_seconds: int = 3_600

    def __post_init__(self) -> None:
        if min(self.step, self.size, self.seconds, self.min_size, self.sliding_seconds) < 1:
            raise ValueError("window sizes must be positive")
        if self.mode == "sliding-time" and (
            self.sliding_seconds % self.seconds or self.sliding_seconds < self.seconds
        ):
            raise ValueError(
                f"sliding window of {self.sliding_seconds} s must be a multiple of its step of {self.seconds} s"
            )
        if self.mode == "sliding":
            if self.size % self.step or self.size < self.step:
                raise ValueError(
                    f"sliding window of {self.size} rows must be a multiple of its step of {self.step} rows"
                )
        elif self.size != self.step:
            raise ValueError("only sliding windows differ in size from their ingest windows")

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> WindowPolicy:
        mode = settings.window_mode
        return cls(
            mode=mode,
            step=settings.window_size,
            size=settings.sliding_size if mode == "sliding" else settings.window_size,
            seconds=settings.window_seconds,
            min_size=settings.min_window_size,
            sliding_seconds=settings.sliding_seconds,
        )

    @property
    def timed(self) -> bool:
        """Whether ingest windows are slots of prediction time (``time``, ``sliding-time``)."""
        return self.mode in TIME_MODES

    @property
    def window_ms(self) -> int:
        """Length of a time slot in ms; 0 when windows are counted, not timed."""
        return self.seconds * 1000 if self.timed else 0

    @property
    def span(self) -> int:
        """Ingest windows per drift window."""
        if self.mode == "sliding":
            return self.size // self.step
        if self.mode == "sliding-time":
            return self.sliding_seconds // self.seconds
        return 1

    def members(self, window: int) -> list[int]:
        """The ingest windows of drift window ``window``, oldest first."""
        return list(range(max(0, window - self.span + 1), window + 1))

    def time_bounds(self, window: int) -> tuple[datetime, datetime]:
        """Start and end of a time window (the span of slots ending at ``window``)."""
        return self.slot_bounds(window - self.span + 1, window)

    def slot_bounds(self, first: int, last: int) -> tuple[datetime, datetime]:
        """Start of time slot ``first`` and end of slot ``last``."""
        ms = self.seconds * 1000
        return (
            datetime.fromtimestamp(first * ms / 1000, tz=UTC),
            datetime.fromtimestamp((last + 1) * ms / 1000, tz=UTC),
        )

    # -- ingest windows: the one place their indexes are computed -------------
    def slots_of(self, timestamps_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Time modes: the ingest window (time slot) of each prediction time."""
        return np.floor_divide(timestamps_ms, self.seconds * 1000)

    def slot_at(self, at_ms: int) -> int:
        """Time modes: the slot of one instant."""
        return at_ms // (self.seconds * 1000)

    def last_elapsed_slot(self, now_ms: int, grace_ms: int) -> int:
        """Time modes: the newest slot whose time and grace period are over at ``now_ms``."""
        return self.slot_at(now_ms - grace_ms) - 1

    def count_window(self, ingested: int, epoch: CountEpoch | None = None) -> tuple[int, int]:
        """Count modes: the window the next prediction fills, and the rows it has, after ``ingested``
        (numbered from ``epoch``, the series' stored one; default: this policy's from 0).

        An epoch of time windows, or of another size not yet replaced (no prediction since the
        monitor restarted with this size), tells where the next count window starts, as the
        ingest script will begin it: at the time epoch's ``first``, or after the other size's
        window in progress (which that prediction closes short), empty.

        >>> p = WindowPolicy(step=300, size=300)
        >>> p.count_window(600, CountEpoch(size=300)), p.count_window(600, CountEpoch(size=1000))
        ((2, 0), (1, 0))
        >>> p.count_window(1000, CountEpoch(size=1000)), p.count_window(7, CountEpoch("time", 0, 5, 4))
        ((1, 0), (4, 0))
        """
        epoch = epoch or CountEpoch(size=self.step)
        if epoch.mode != "count":
            return epoch.first, 0
        done, filled = divmod(ingested - epoch.start, epoch.size)
        if epoch.size != self.step:
            return epoch.first + done + (1 if filled else 0), 0
        return epoch.first + done, filled

    def count_windows(self, ingested: int, new: int, epoch: CountEpoch | None = None) -> list[int]:
        """Count modes: the windows that ``new`` more predictions after ``ingested`` can fill,
        in ``epoch`` (of this policy's size: the ingest script begins it before filing)."""
        if new <= 0:
            return []
        epoch = epoch or CountEpoch(size=self.step)
        done = ingested - epoch.start
        return list(range(epoch.first + done // self.step, epoch.first + (done + new - 1) // self.step + 1))

    def count_ends(self, windows: list[int], epoch: CountEpoch | None = None) -> list[int]:
        """Count modes: the ingest count at which each window of ``epoch`` is full."""
        epoch = epoch or CountEpoch(size=self.step)
        return [epoch.start + (w - epoch.first + 1) * self.step for w in windows]

    def windows_at(self, at_ms: npt.NDArray[np.int64], bounds: WindowBounds | None = None) -> npt.NDArray[np.int64]:
        """The ingest window of a prediction made at each of ``at_ms``, known from its time alone (a label
        that carries its prediction: no per-prediction state says where the prediction went).

        Time modes: its slot. Count modes: the window whose recorded first..last prediction time
        (``bounds``) covers it, the lowest such window if several do (predictions out of time order
        make neighbours overlap); ``NO_WINDOW`` where none does: a time in a gap between windows, in
        a window no longer indexed (:data:`INDEX_KEEP`), or of a prediction not ingested yet.

        >>> p = WindowPolicy(step=2, size=2)
        >>> bounds = WindowBounds(np.array([0, 1]), np.array([10, 30]), np.array([20, 40]))
        >>> p.windows_at(np.array([10, 25, 30, 40, 41]), bounds).tolist()
        [0, -1, 1, 1, -1]
        """
        if self.timed:
            return self.slots_of(at_ms)
        if bounds is None or not len(bounds.windows) or not len(at_ms):
            return np.full(len(at_ms), NO_WINDOW, dtype=np.int64)
        order = np.argsort(bounds.windows, kind="stable")
        windows, first, last = bounds.windows[order], bounds.first_ms[order], bounds.last_ms[order]
        covers = (first[None, :] <= at_ms[:, None]) & (at_ms[:, None] <= last[None, :])
        found = covers.any(axis=1)
        return np.where(found, windows[covers.argmax(axis=1)], NO_WINDOW).astype(np.int64)


@dataclass(frozen=True, slots=True)
class CountEpoch:
    """A series' window epoch (``Keys.windows_epoch``, written by the ingest script): count
    windows of ``size`` rows numbered from ``first`` at ingest count ``start``; in a ``time``
    epoch, ``first`` is where the next count epoch starts numbering.

    Why not ``counter // size``: the counter outlives a change of ``DRIFTWATCH_WINDOW_SIZE`` or
    of mode on the same Redis, and dividing it by another size renumbers every window (numbers
    of reported windows reused, rows of the window in progress never tested) and counts the
    time windows' predictions into the first count window."""

    mode: str = "count"
    size: int = 1_000
    start: int = 0
    first: int = 0

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes], policy: WindowPolicy) -> CountEpoch:
        """The stored epoch; a series without one (new, or filed before epochs) numbers
        ``policy``'s windows from 0, as the ingest script will record on its next call."""
        if not raw:
            return cls(size=policy.step)
        return cls(raw[b"mode"].decode(), int(raw[b"size"]), int(raw[b"start"]), int(raw[b"first"]))


async def read_count_position(client: aioredis.Redis, keys: Keys, policy: WindowPolicy) -> tuple[int, int]:
    """The count window the next prediction of ``keys``' series fills and the rows it holds (one round trip)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.get(keys.ingested)
        pipe.hgetall(keys.windows_epoch)
        ingested, epoch = await pipe.execute()
    return policy.count_window(int(ingested or 0), CountEpoch.from_hash(epoch, policy))


NO_WINDOW = -1
""":meth:`WindowPolicy.windows_at` of a time no indexed count window covers."""


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """Count windows of a series and the first and last prediction time each holds (its meta)."""

    windows: npt.NDArray[np.int64]
    first_ms: npt.NDArray[np.int64]
    last_ms: npt.NDArray[np.int64]


class WindowProgress(BaseModel):
    """How far one ingest window is: rows filed, bounds, whether its report is stored."""

    window: int = Field(description="Index of the window (count: its number; time: its slot of prediction time)")
    filled: int = Field(description="Predictions filed into it")
    size: int | None = Field(description="Rows that fill it (count windows); None for time windows")
    mode: WindowMode
    start: datetime | None = Field(default=None, description="Start of its time slot (time windows)")
    end: datetime | None = Field(default=None, description="End of its time slot (time windows)")
    reported: bool = Field(description="Whether a drift report of this window is stored")
    model_version: str | None = Field(default=None, description="The version whose window series this is")


def of_current_mode(policy: WindowPolicy, window: int, kind: bytes | None, first_ts: bytes | None,
                    filling: int) -> bool:
    """Whether ingest window ``window`` of a series, whose meta has ``mode`` ``kind`` and
    ``first_ts``, is a window of ``policy``'s mode (``filling``: the count window being filled).

    The ingest script writes ``mode`` (``count`` or ``time``); meta written before it did has
    none, and then the index itself tells: a time slot of ``policy`` holds its first
    prediction's time (which also tells slots of another ``DRIFTWATCH_WINDOW_SECONDS`` apart),
    and no count window lies past the one being filled. A window without meta is taken as
    of the current mode (as every window was before modes could differ).

    >>> p = WindowPolicy("time", seconds=60)
    >>> of_current_mode(p, 3, b"count", b"200", 0), of_current_mode(p, 3, b"time", b"200000", 0)
    (False, True)
    >>> of_current_mode(p, 3, None, b"1764000000000", 0), of_current_mode(p, 29400000, None, b"1764000000000", 0)
    (False, True)
    >>> of_current_mode(WindowPolicy(), 29400000, None, b"1764000000000", 5)
    False
    """
    if kind is not None and kind.decode() != ("time" if policy.timed else "count"):
        return False
    if policy.timed:
        return first_ts is None or int(first_ts) // policy.window_ms == window
    return kind is not None or first_ts is None or window <= filling


# The index keeps this many of the newest ingest windows (reads ask for at most 100).
INDEX_KEEP = 1_000


async def series_keys(client: aioredis.Redis, keys: Keys, version: str | None = None) -> Keys | None:
    """The keys of ``version``'s series; by default of the model's current version (None while
    no version is registered). ``keys`` bound to a version already answer for that one."""
    if version is None:
        version = keys.version or await read_current_version(client, Keys(keys.model))
    return keys.for_version(version) if version is not None else None


class WindowIndex:
    """The read side: which ingest windows of a series exist, and how full each one is, in every mode.

    The ingest script records each window it files rows into in
    ``Keys.windows_index`` (a sorted set by index, trimmed to the newest
    :data:`INDEX_KEEP`), so reads list the windows that really hold
    predictions, whatever the mode: counted windows are consecutive, time
    slots need not be. ``version`` defaults to the model's current version
    (or the one ``keys`` are bound to).
    """

    def __init__(self, client: aioredis.Redis, keys: Keys, policy: WindowPolicy) -> None:
        self.client = client
        self.keys = keys
        self.policy = policy

    async def recent(self, last: int, version: str | None = None) -> list[int]:
        """Up to ``last`` windows of the current mode holding predictions, newest first."""
        keys = await series_keys(self.client, self.keys, version)
        if keys is None:
            return []
        return await self.newest(keys, keys.windows_index, last)

    async def newest(self, keys: Keys, index: str, last: int) -> list[int]:
        """Up to ``last`` members of ``index`` (a sorted set of window indexes of ``keys``' series:
        ``windows_index`` or ``drift_index``) that are windows of the current mode, newest first.

        Why a filter: the series outlives a change of ``DRIFTWATCH_WINDOW_MODE``, and count
        windows (0, 1, 2 ...) and time slots (prediction time / slot length) share its indexes.
        Ordered by index, the other kind's windows would pass for the newest: count windows
        before the first time slot (a window in progress starting on 1970-01-01), time slots
        above every later count window. Each window's meta says which kind it is
        (:func:`of_current_mode`); usually the first page is all of the current mode.
        """
        found: list[int] = []
        page = max(last, 32)
        start = 0
        while len(found) < last:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zrevrange(index, start, start + page - 1)
                pipe.get(keys.ingested)
                pipe.hgetall(keys.windows_epoch)
                raw, ingested, epoch = await pipe.execute()
            if not raw:
                break
            windows = [int(w) for w in raw]
            async with self.client.pipeline(transaction=False) as pipe:
                for w in windows:
                    pipe.hmget(keys.window_meta(w), "mode", "first_ts")
                metas = await pipe.execute()
            filling, _ = self.policy.count_window(int(ingested or 0), CountEpoch.from_hash(epoch, self.policy))
            found += [w for w, (kind, first) in zip(windows, metas, strict=True)
                      if of_current_mode(self.policy, w, kind, first, filling)]
            start += page
        return found[:last]

    async def progress(self, window: int | None = None, version: str | None = None) -> WindowProgress:
        """One window's progress; by default the window being filled.

        That is, for count windows, the one the next prediction goes to (empty
        when the last one just filled); for time windows, the newest slot
        holding predictions, or the current slot while none does (right after
        a switch from count windows, whose indexes are no time slots).
        """
        policy = self.policy
        keys = await series_keys(self.client, self.keys, version)
        if keys is None:
            keys = self.keys.for_version("")  # no version registered yet: an empty series
        if window is None and not policy.timed:
            window, _ = await read_count_position(self.client, keys, policy)
        elif window is None:
            newest = await self.recent(1, keys.version)
            window = newest[0] if newest else policy.slot_at(int(time.time() * 1000))
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hvals(keys.window_classes(window))
            pipe.hexists(keys.drift_reports, window)
            counts, reported = await pipe.execute()
        start, end = policy.slot_bounds(window, window) if policy.timed else (None, None)
        return WindowProgress(
            window=window,
            filled=sum(int(n) for n in counts),
            size=None if policy.timed else policy.step,
            mode=policy.mode,
            start=start,
            end=end,
            reported=bool(reported),
            model_version=keys.version or None,
        )


# Sliding time windows: stores that found a slot retained after their read of the
# retained set retry with it (another replica stored a report in between).
MAX_STORE_RACES = 100


class WindowStore:
    """The reporter's side of one series' window state (``keys`` bound to a version):
    read members, store a report."""

    def __init__(self, client: aioredis.Redis, keys: Keys, policy: WindowPolicy) -> None:
        self.client = client
        self.keys = keys
        self.policy = policy
        self._store = register_script(client, "monitor", "store_report.lua")
        self._store_sliding_time = register_script(client, "monitor", "store_sliding_time_report.lua")
        self._close_elapsed = register_script(client, "monitor", "close_elapsed.lua")

    @property
    def open_windows(self) -> str:
        """Sorted set (time mode): windows holding rows and not closed yet, scored by index."""
        return self.keys.windows_open

    @property
    def closed_upto(self) -> str:
        """String (time mode): every window up to this index is closed; later rows for them are late."""
        return self.keys.windows_closed_upto

    async def close_elapsed(self, now_ms: int, grace_ms: int = 0) -> list[int]:
        """Time mode: mark for reporting the open windows that ended before ``now - grace``."""
        if not self.policy.timed:
            return []
        last = self.policy.last_elapsed_slot(now_ms, grace_ms)
        done = await self._close_elapsed(keys=[self.open_windows, self.keys.windows_to_report, self.closed_upto],
                                         args=[last])
        return [int(w) for w in done]

    def used_by(self, window: int) -> str:
        """Set: drift windows stored that used this ingest window's rows (sliding)."""
        return self.keys.window_used_by(window)

    async def read(
        self, windows: list[int], with_rows: bool = True
    ) -> list[tuple[list[bytes], dict[bytes, bytes], dict[bytes, bytes]]]:
        """Rows (or ``[]`` when not asked), class counts and meta of each window, in one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            for w in windows:
                if with_rows:
                    pipe.lrange(self.keys.window_rows(w), 0, -1)
                else:
                    pipe.llen(self.keys.window_rows(w))
                pipe.hgetall(self.keys.window_classes(w))
                pipe.hgetall(self.keys.window_meta(w))
            raw = await pipe.execute()
        out = []
        for i in range(len(windows)):
            rows, classes, meta = raw[3 * i : 3 * i + 3]
            out.append((rows if with_rows else [b""] * int(rows), classes, meta))
        return out

    async def read_unreported(
        self, window: int, members: list[int]
    ) -> list[tuple[list[bytes], dict[bytes, bytes], dict[bytes, bytes]]] | None:
        """The members' rows, class counts and meta; None if ``window`` has a report.

        One transaction: a report stored by another replica releases rows in
        the same script, so rows read here belong to an unreported window.
        """
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hexists(self.keys.drift_reports, window)
            for w in members:
                pipe.lrange(self.keys.window_rows(w), 0, -1)
                pipe.hgetall(self.keys.window_classes(w))
                pipe.hgetall(self.keys.window_meta(w))
            reported, *raw = await pipe.execute()
        if reported:
            return None
        return [(raw[3 * i], raw[3 * i + 1], raw[3 * i + 2]) for i in range(len(members))]

    async def store(self, window: int, first_member: int, report_json: str) -> list[int]:
        """Store the report of ``window`` (members ``first_member .. window``); return released windows."""
        k = self.keys
        head = [k.drift_reports, k.drift_index, k.windows_to_report]
        if self.policy.mode == "sliding-time":
            return await self._store_time_sliding(window, report_json, head)
        members = list(range(first_member, window + 1))
        keys = head + [key for j in members for key in (k.window_used_by(j), k.window_rows(j))]
        released = await self._store(keys=keys, args=[window, self.policy.span, report_json])
        return [members[int(position) - 1] for position in released]

    async def _store_time_sliding(self, window: int, report_json: str, head: list[str]) -> list[int]:
        """The retained slots are read first: the script may release only slots whose keys it was given."""
        k = self.keys
        for _ in range(MAX_STORE_RACES):
            slots = sorted({window, *(int(j) for j in await self.client.zrange(k.windows_retained, 0, -1))})
            keys = [*head, k.windows_retained, k.windows_closed_upto, *(k.window_rows(j) for j in slots)]
            status, released = await self._store_sliding_time(
                keys=keys, args=[window, self.policy.span, report_json, ",".join(map(str, slots))]
            )
            if int(status) > 0:
                return [int(j) for j in released]
        raise RuntimeError(f"slots kept being retained during {MAX_STORE_RACES} stores of window {window}")

    async def skip(self, window: int) -> None:
        """Drop a window that gets no report (its rows went into a production reference)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.srem(self.keys.windows_to_report, window)
            pipe.delete(self.keys.window_rows(window))
            await pipe.execute()


class CountWindowBounds:
    """Count modes: the first and last prediction time of each indexed window of a series, read
    from Redis for a label that carries its prediction (:meth:`WindowPolicy.windows_at`).

    A full window's bounds never change, so they are kept here and only the window being filled
    (and windows new since the last read) are read again: two round trips per version a batch.
    """

    def __init__(self, client: aioredis.Redis, policy: WindowPolicy) -> None:
        self.client = client
        self.policy = policy
        self._full: dict[str, dict[int, tuple[int, int]]] = {}  # series prefix -> window -> bounds

    async def read(self, keys: Keys) -> WindowBounds:
        """``keys`` bound to the series' version."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.windows_index, 0, -1)
            pipe.get(keys.ingested)
            pipe.hgetall(keys.windows_epoch)
            indexed, ingested, epoch = await pipe.execute()
        windows = [int(w) for w in indexed]
        filling, _ = self.policy.count_window(int(ingested or 0), CountEpoch.from_hash(epoch, self.policy))
        known = self._full.setdefault(keys.series_prefix, {})
        unread = [w for w in windows if w not in known]
        read: dict[int, tuple[int, int]] = {}
        if unread:
            async with self.client.pipeline(transaction=False) as pipe:
                for w in unread:
                    pipe.hmget(keys.window_meta(w), "first_ts", "last_ts")
                for w, (first, last) in zip(unread, await pipe.execute(), strict=True):
                    if first is not None and last is not None:
                        read[w] = (int(first), int(last))
        kept = set(windows)
        self._full[keys.series_prefix] = known = {
            w: b for w, b in (*known.items(), *read.items()) if w in kept and w < filling}
        found = {**known, **read}
        ordered = sorted(found)
        return WindowBounds(
            np.array(ordered, dtype=np.int64),
            np.array([found[w][0] for w in ordered], dtype=np.int64),
            np.array([found[w][1] for w in ordered], dtype=np.int64),
        )
