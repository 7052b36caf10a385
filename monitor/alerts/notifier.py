"""Sends alert notifications: exactly one replica, in order, never blocking evaluation.

Why a leader lease plus a consumer group on the history stream (and not "the
replica whose transaction recorded the transition sends it"):

- Evaluation records each transition once, in the same ``MULTI`` as the state
  change (see ``store``). Sending is then a separate, durable step: if the
  recording replica died before sending, a send-by-recorder scheme would lose
  the notification; here the entry waits in the stream for whoever leads.
- One leader (``SET NX PX`` lease, renewed) reads the stream through the
  consumer group ``notifier``: a firing and its resolution reach receivers in
  the order they happened, and the Alertmanager re-send loop runs once, not
  once per replica.
- An entry is acknowledged only after its delivery finished (or gave up after
  bounded retries). Entries a dead leader had read but not acknowledged stay
  pending and are claimed (``XAUTOCLAIM``) by the next leader once idle longer
  than one delivery can take, so an old leader still sending is not doubled.

One leader for every model: it reads each model's history stream (one
group per stream, read without blocking, in one pipelined round per second,
or at once when this replica records a transition), so N models hold no
blocking connection and need no lease of their own. The models are those the
monitor knows (every registered one, whichever replica watches it), so a
replica restricted to some models (``DRIFTWATCH_MODELS``) still sends the
others' notifications when it leads.

The guarantee: every recorded transition is sent by one replica; a duplicate
needs a leader to die (or stall past ``claim_idle_s``) between its POST and
its ``XACK``. Each POST carries ``X-Driftwatch-Notification-Id`` (the stream
id) so a receiver can drop such a duplicate. Exactly-once over HTTP needs the
receiver's help; this is as close as the sender can get.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor.alerts.instances import AlertStatus
from monitor.alerts.lease import LeaderLease
from monitor.alerts.payloads import postable_alert, webhook_payload
from monitor.alerts.store import AlertStore, HistoryEntry
from monitor.monitor_settings import AlertSettings
from shared.keys import ALERT_LEADER
from shared.outage_log import OutageLog

log = logging.getLogger(__name__)


def _log_failure(what: str, exc: BaseException) -> None:
    """Redis away (restarting, a stale pooled connection) is expected and retried: one line.
    Anything else (a script error, a bug) keeps its traceback."""
    unavailable = isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))
    log.log(logging.WARNING if unavailable else logging.ERROR, "%s (%s: %s); retrying", what, type(exc).__name__,
            exc, exc_info=None if unavailable else exc)

GROUP = "notifier"
ID_HEADER = "X-Driftwatch-Notification-Id"
_RETRY_STATUS = frozenset({408, 425, 429})
READ_COUNT = 100

Entry = tuple[bytes, Mapping[bytes | str, bytes | str]]

# The stores of every model whose notifications this replica sends when it leads.
StoreSource = Callable[[], Sequence[AlertStore]]


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed.

    On Python 3.11, ``asyncio.wait_for`` (used inside redis-py) returns the
    inner result and drops the cancel when both land in the same step: a loop
    around Redis calls would then ignore ``stop()``. The task still counts the
    request (``cancelling()``), so each loop checks it once per round.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class HttpSender:
    """POSTs JSON with a timeout per attempt and bounded, jittered exponential backoff."""

    def __init__(self, client: httpx.AsyncClient, settings: AlertSettings) -> None:
        self.client = client
        self.settings = settings

    def _delay(self, attempt: int) -> float:
        base = min(self.settings.backoff_initial_s * 2**attempt, self.settings.backoff_max_s)
        return base / 2 + random.uniform(0, base / 2)

    async def post(self, url: str, body: Any, headers: Mapping[str, str] | None = None) -> bool:
        """True once the receiver answered 2xx; False after the last attempt or a final 4xx."""
        s = self.settings
        for attempt in range(s.max_attempts):
            try:
                response = await self.client.post(url, json=body, headers=headers, timeout=s.request_timeout_s)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.is_client_error and response.status_code not in _RETRY_STATUS:
                    log.error("alert notification to %s rejected (%s); not retrying", url, problem)
                    return False
            if attempt + 1 < s.max_attempts:
                delay = self._delay(attempt)
                log.warning("alert notification to %s failed (%s); retry in %.2fs", url, problem, delay)
                await asyncio.sleep(delay)
        log.error("alert notification to %s failed %d times; giving up", url, s.max_attempts)
        return False


class Notifier:
    """The background loop: hold the lease, deliver recorded transitions of every model, keep Alertmanager current."""

    def __init__(
        self,
        stores: StoreSource,
        settings: AlertSettings,
        client: httpx.AsyncClient,
        redis: aioredis.Redis,
        *,
        lease_key: str = ALERT_LEADER,
        lease_redis: aioredis.Redis | None = None,
    ) -> None:
        """``lease_redis`` (default ``redis``): a client whose pool the HTTP reads do not use, so
        2,000 concurrent reads cannot make the leader miss its renewals and leadership flap."""
        self.stores = stores
        self.redis = redis
        self.settings = settings
        self.sender = HttpSender(client, settings)
        self.lease = LeaderLease(lease_redis or redis, lease_key, settings.leader_ttl_s)
        self.leader = asyncio.Event()
        # Set when this replica recorded a transition: the leader's wait ends at once.
        self.recorded = asyncio.Event()
        self._grouped: set[str] = set()
        self._last_am_push = float("-inf")
        self._lease_outage = OutageLog(log, "alert leader lease")
        self._deliver_outage = OutageLog(log, "alert notifications")

    @property
    def consumer(self) -> str:
        return self.lease.owner

    @property
    def has_targets(self) -> bool:
        return bool(self.settings.webhook_urls or self.settings.alertmanager_url)

    async def ensure_group(self, store: AlertStore | None = None) -> None:
        """Create the consumer group of one model's history (every model's by default) at the
        stream's end: history from before it existed is not sent."""
        for one in [store] if store is not None else self.stores():
            key = one.keys.alert_history
            try:
                await self.redis.xgroup_create(key, GROUP, id="$", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._grouped.add(key)

    async def run(self) -> None:
        """Run until cancelled. Errors are logged and retried; cancellation is never caught."""
        while True:
            raise_if_cancelling()
            try:
                await self.ensure_group()
                break
            except RedisError as exc:
                _log_failure("cannot create the alert notifier groups yet", exc)
                await asyncio.sleep(1.0)
        raise_if_cancelling()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._hold_lease(), name="alerts-lease")
            tasks.create_task(self._deliver_forever(), name="alerts-deliver")

    async def close(self) -> None:
        """Give the lease up so another replica leads at once rather than after a TTL."""
        self.leader.clear()
        try:
            await self.lease.release()
        except RedisError as exc:  # Redis stopping with us (a terminal's Ctrl-C reaches both): expected
            log.warning("could not release the alert leader lease (%s); it expires by itself", exc)

    # -- leadership -----------------------------------------------------------------
    async def _hold_lease(self) -> None:
        while True:
            raise_if_cancelling()
            try:
                held = await self.lease.acquire_or_renew()
                self._lease_outage.answered()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._lease_outage.failed(exc)  # said once per outage, not every third of a TTL
                held = False  # unsure is not leader: better late than twice
            except RedisError as exc:
                _log_failure("alert leader lease check failed", exc)
                held = False
            if held and not self.leader.is_set():
                log.info("alert notifier %s is the leader", self.consumer)
                self._last_am_push = float("-inf")  # a new leader re-sends the active alerts at once
            raise_if_cancelling()
            (self.leader.set if held else self.leader.clear)()
            await asyncio.sleep(self.settings.leader_ttl_s / 3)

    # -- delivery ---------------------------------------------------------------------
    async def _deliver_forever(self) -> None:
        while True:
            raise_if_cancelling()
            await self.leader.wait()
            try:
                await self.deliver_once()
                self._deliver_outage.answered()
            except (RedisError, OSError) as exc:
                if isinstance(exc, ResponseError) and "NOGROUP" in str(exc):
                    # A stream was deleted under us: start over at its (new) end.
                    log.warning("an alert history group vanished; recreating it")
                    self._grouped.clear()
                    await self._retry_later(self.ensure_group)
                    continue
                if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
                    self._deliver_outage.failed(exc, "retrying in 1s")  # said once per outage
                else:
                    _log_failure("alert notification round failed", exc)
                await asyncio.sleep(1.0)

    @staticmethod
    async def _retry_later(step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except RedisError as exc:
            _log_failure("alert notifier step failed", exc)
            await asyncio.sleep(1.0)

    async def _read(self, stores: Sequence[AlertStore]) -> list[list[Entry]]:
        """Each store's abandoned entries (idle past ``claim_idle_s``), else its new ones: one pipelined round."""
        claim_idle_ms = int(self.settings.claim_idle_s * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for store in stores:
                pipe.xautoclaim(store.keys.alert_history, GROUP, self.consumer, claim_idle_ms, start_id="0-0",
                                count=READ_COUNT)
                pipe.xreadgroup(GROUP, self.consumer, {store.keys.alert_history: ">"}, count=READ_COUNT)
            replies = await pipe.execute()
        # Claimed entries first: they are older than any entry read new in the same round.
        return [
            [*claimed[1], *(fresh[0][1] if fresh else [])]
            for claimed, fresh in zip(replies[0::2], replies[1::2], strict=True)
        ]

    async def deliver_once(self, block_ms: int | None = None) -> int:
        """Deliver abandoned entries, else new ones, of every model; with nothing to deliver,
        wait up to ``block_ms`` (or until this replica records a transition); returns how many."""
        stores = list(self.stores())
        for store in stores:
            if store.keys.alert_history not in self._grouped:
                await self.ensure_group(store)
        self.recorded.clear()
        batches = await self._read(stores) if stores else []
        delivered = 0
        now = await self._server_time()
        for store, entries in zip(stores, batches, strict=True):
            delivered += await self._deliver_batch(store, entries, now)
        if delivered or now - self._last_am_push >= self.settings.resend_interval_s:
            await self._push_alertmanager(now)
        if not delivered:
            if block_ms is None:
                block_ms = int(min(1.0, self.settings.resend_interval_s) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.recorded.wait(), block_ms / 1000)
        return delivered

    async def _deliver_batch(
        self, store: AlertStore, entries: Sequence[Entry], now: float
    ) -> int:
        delivered = 0
        for entry_id, fields in entries:
            raise_if_cancelling()
            if not self.leader.is_set():
                break  # lost the lease: the rest stays pending for the next leader
            if fields:  # trimmed entries come back empty; nothing left to send
                try:
                    entry = store.history_entry(entry_id, fields)
                except ValueError:
                    log.exception("skipping unreadable alert history entry %r", entry_id)
                else:
                    await self._deliver(entry, now)
            await self.redis.xack(store.keys.alert_history, GROUP, entry_id)
            delivered += 1
        return delivered

    async def _server_time(self) -> float:
        seconds, micros = await self.redis.time()
        return float(seconds) + micros / 1e6

    async def _deliver(self, entry: HistoryEntry, now: float) -> None:
        if not entry.notifies or not self.settings.webhook_urls:
            return
        recorded_at = int(entry.id.split("-")[0]) / 1000
        if now - recorded_at > self.settings.max_notification_age_s:
            log.warning("dropping alert notification %s recorded %.0fs ago", entry.id, now - recorded_at)
            return
        body = webhook_payload(entry, receiver=self.settings.receiver, external_url=self.settings.external_url)
        headers = {ID_HEADER: entry.id}
        await asyncio.gather(*(self.sender.post(url, body, headers) for url in self.settings.webhook_urls))

    async def _push_alertmanager(self, now: float) -> None:
        """Send every firing (and recently resolved) alert; Alertmanager needs them re-sent to stay active."""
        self._last_am_push = now
        if self.settings.alertmanager_url is None:
            return
        valid_for = 4 * self.settings.resend_interval_s
        alerts = [
            postable_alert(s, now=now, valid_for_s=valid_for, external_url=self.settings.external_url)
            for store in self.stores()
            for s in await store.states()
            if s.state in (AlertStatus.firing, AlertStatus.resolved)
        ]
        if alerts:
            await self.sender.post(f"{self.settings.alertmanager_url}/api/v2/alerts", alerts)
