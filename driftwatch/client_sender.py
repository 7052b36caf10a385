"""The client's background sender: a bounded queue, batches, retries, and failures said once.

Why a thread and not asyncio: the client is called from any code (a Flask
view, a batch job, a FastAPI handler), most of it synchronous; one daemon
thread with a blocking ``httpx.Client`` serves them all, and the caller's
thread only appends to a deque under a lock.

Guarantees and limits:

- ``log`` never blocks on the network: when the queue holds
  ``max_queue_rows`` rows, new rows are dropped and counted
  (``stats.dropped_rows``), never waited for.
- A batch that fails for a reason that may pass (connection refused or
  reset, timeout, 429, 5xx: Redis away, the service restarting) is retried
  with capped exponential backoff and full jitter, honouring ``Retry-After``,
  for as long as the client is open. Retrying a whole batch is safe: the
  ids dedupe in the monitor (CONTRACTS.md).
- A batch the server refuses for good is not retried: an unknown model
  (404), a wrong API key (401/403), rows that do not fit the model (422:
  the rows it accepted are kept, the others counted in
  ``stats.rejected_rows``). A body too large (413) is split in halves.
- Each kind of failure is logged once (with what to do), then counted in
  ``stats`` only, so a monitor that is down does not flood the log.
- ``close`` waits up to its timeout for the queue to drain; what is left
  then is counted in ``stats.abandoned_rows``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
import numpy as np

from driftwatch.client_batches import Block, encode

log = logging.getLogger("driftwatch.client")

__all__ = ["ClientStats", "Sender"]

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class ClientStats:
    """Counters since the client was made (a copy: read it, it does not change under you).

    ``logged_rows``: rows ``log``/``feedback`` queued. ``sent_rows``: rows
    the server accepted. ``rejected_rows``: rows the server refused for good
    (unknown model, wrong key, rows that do not fit). ``dropped_rows``: rows
    not queued because the queue was full. ``abandoned_rows``: rows still
    unsent when ``close`` gave up. ``retries``: batch attempts repeated after
    a failure that may pass. ``queued_rows``: waiting or in flight now.
    ``failures``: count per kind of failure (e.g. ``"http 503"``,
    ``"connection"``).
    """

    logged_rows: int = 0
    sent_rows: int = 0
    rejected_rows: int = 0
    dropped_rows: int = 0
    abandoned_rows: int = 0
    retries: int = 0
    batches: int = 0
    queued_rows: int = 0
    failures: dict[str, int] = field(default_factory=dict)


class _Abandon(Exception):
    """The client is closing and its deadline passed: stop retrying."""


class Sender:
    """The queue and the thread that empties it (one per :class:`driftwatch.Client`)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        max_queue_rows: int,
        batch_rows: int,
        max_body_bytes: int,
        linger_s: float,
        backoff_s: float,
        max_backoff_s: float,
    ) -> None:
        self.http = http
        self.max_queue_rows = max_queue_rows
        self.batch_rows = batch_rows
        self.max_body_bytes = max_body_bytes
        self.linger_s = linger_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._queue: deque[Block] = deque()
        self._cond = threading.Condition()
        self._queued = 0  # rows queued or in flight
        self._flushing = 0
        self._closing = False
        self._abandon = False
        self._stats = ClientStats()
        self._said: set[str] = set()
        self._thread: threading.Thread | None = None

    # -- the caller's side ----------------------------------------------------------
    def put(self, block: Block) -> bool:
        """Queue a block; False (and counted) when the queue is full or the client closed."""
        n = len(block)
        with self._cond:
            if self._closing or self._queued + n > self.max_queue_rows:
                self._stats.dropped_rows += n
                reason = "closed" if self._closing else "queue full"
                self._count_failure(reason)
                self._say_once(reason, "rows dropped: %s (%d rows; the client drops rather than block the caller; "
                               "see client.stats)", reason, n)
                return False
            self._queue.append(block)
            self._queued += n
            self._stats.logged_rows += n
            self._ensure_thread()
            self._cond.notify_all()
        return True

    def stats(self) -> ClientStats:
        with self._cond:
            s = self._stats
            return ClientStats(s.logged_rows, s.sent_rows, s.rejected_rows, s.dropped_rows, s.abandoned_rows,
                               s.retries, s.batches, self._queued, dict(s.failures))

    def flush(self, timeout: float | None) -> bool:
        """Wait until every queued row is sent or refused; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queued:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None) -> bool:
        """Stop taking rows, send what is queued within ``timeout``, then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        flushed = self.flush(timeout)
        with self._cond:
            self._abandon = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=max(self.http.timeout.read or 5.0, 5.0) + 1.0)
        with self._cond:
            self._abandon_queue()
        return flushed

    # -- the thread -----------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="driftwatch-client", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    return
            try:
                self._send(batch)
            except _Abandon:
                with self._cond:
                    self._stats.abandoned_rows += len(batch)
                    self._queued -= len(batch)
                    self._abandon_queue()
                    self._cond.notify_all()
                return
            except Exception:  # a bug here must not kill the thread silently with rows queued
                log.exception("driftwatch client: sending a batch failed; %d rows dropped", len(batch))
                with self._cond:
                    self._stats.rejected_rows += len(batch)
            with self._cond:
                self._queued -= len(batch)
                self._cond.notify_all()

    def _next_batch(self) -> Block | None:
        """The next batch (called with the lock held): waits for rows, lingers briefly for a
        fuller batch under light traffic, and joins blocks of the same kind and model."""
        while not self._queue:
            if self._closing or self._abandon:
                return None
            self._cond.wait()
        if self._abandon:
            return None
        deadline = time.monotonic() + self.linger_s
        while (self._queued < self.batch_rows and not self._closing and not self._flushing
               and time.monotonic() < deadline):
            self._cond.wait(max(deadline - time.monotonic(), 0.0))
        head = self._queue.popleft()
        if len(head) > self.batch_rows:
            head, rest = head.split(self.batch_rows)
            self._queue.appendleft(rest)
        parts = [head]
        size = len(head)
        while self._queue and size < self.batch_rows:
            nxt = self._queue[0]
            if nxt.join_key() != head.join_key():
                break
            self._queue.popleft()
            if size + len(nxt) > self.batch_rows:
                nxt, rest = nxt.split(self.batch_rows - size)
                self._queue.appendleft(rest)
            parts.append(nxt)
            size += len(nxt)
        return parts[0] if len(parts) == 1 else _join(parts)

    def _abandon_queue(self) -> None:
        left = sum(len(b) for b in self._queue)
        if left:
            self._stats.abandoned_rows += left
            self._queued -= left
            self._queue.clear()
            self._say_once("abandoned", "client closed with %d rows unsent (see client.stats)", left)
            self._cond.notify_all()

    # -- one batch ------------------------------------------------------------------
    def _send(self, batch: Block) -> None:
        body = encode(batch)
        if len(body) > self.max_body_bytes and len(batch) > 1:
            head, tail = batch.split(len(batch) // 2)
            self._send(head)
            self._send(tail)
            return
        path = f"/models/{batch.model}/{batch.kind}"
        attempt = 0
        while True:
            kind, response = self._post(path, body)
            if response is not None and response.status_code == 413 and len(batch) > 1:
                head, tail = batch.split(len(batch) // 2)
                self._send(head)
                self._send(tail)
                return
            if response is not None and kind is None:
                self._settle(batch, response)
                return
            assert kind is not None
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * random.random()
            if response is not None:
                delay = max(delay, _retry_after(response))
            attempt += 1
            with self._cond:
                self._stats.retries += 1
                self._count_failure(kind)
                self._say_once(kind, "%s to %s: retrying with backoff while the client is open (said once per kind; "
                               "see client.stats)", kind, path)
                deadline = time.monotonic() + delay
                while not self._abandon and time.monotonic() < deadline:
                    self._cond.wait(deadline - time.monotonic())
                if self._abandon:
                    raise _Abandon

    def _post(self, path: str, body: bytes) -> tuple[str | None, httpx.Response | None]:
        """One attempt: (kind of retryable failure or None, the response if any)."""
        try:
            response = self.http.post(path, content=body, headers={"content-type": "application/json"})
        except httpx.TimeoutException:
            return "timeout", None
        except httpx.TransportError:
            return "connection", None
        if response.status_code in RETRYABLE_STATUS:
            return f"http {response.status_code}", response
        return None, response

    def _settle(self, batch: Block, response: httpx.Response) -> None:
        """Count a final answer: accepted, accepted in part, or refused."""
        status = response.status_code
        n = len(batch)
        accepted = n if 200 <= status < 300 else 0
        if status == 422:
            try:
                accepted = int(response.json().get("accepted", 0))
            except (ValueError, AttributeError):
                accepted = 0
        with self._cond:
            self._stats.batches += 1
            self._stats.sent_rows += accepted
            self._stats.rejected_rows += n - accepted
            if accepted == n:
                return
            kind = _refusal(status, batch.model)
            self._count_failure(kind)
            self._say_once(kind, "%s: %d of %d rows refused for model %r, not retried: %s", kind, n - accepted, n,
                           batch.model, _detail(response))

    # -- failures, said once ----------------------------------------------------------
    def _count_failure(self, kind: str) -> None:
        self._stats.failures[kind] = self._stats.failures.get(kind, 0) + 1

    def _say_once(self, kind: str, message: str, *args: object) -> None:
        if kind not in self._said:
            self._said.add(kind)
            log.warning("driftwatch client: " + message, *args)


def _join(parts: list[Block]) -> Block:
    first = parts[0]

    def cat(name: str) -> object:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    return Block(
        first.kind, first.model, [i for p in parts for i in p.ids], cat("timestamps_ms"),  # type: ignore[arg-type]
        cat("values"), cat("predictions"), cat("probabilities"), cat("prediction_timestamps_ms"),  # type: ignore[arg-type]
        feature_names=first.feature_names,
    )


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("retry-after", 0)), 300.0)
    except ValueError:
        return 0.0


def _refusal(status: int, model: str) -> str:
    if status == 404:
        return f"unknown model {model}"
    if status in (401, 403):
        return f"http {status} (API key)"
    if status == 422:
        return f"rows refused for {model}"
    return f"http {status}"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, dict):
            return f"{first.get('msg')} at {first.get('loc')} ({len(detail)} error(s) shown)"
    if response.status_code == 404:
        return f"{detail}; register it first (driftwatch register)"
    return str(detail)[:300]
