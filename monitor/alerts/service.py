"""What the monitor app holds: store + evaluator + notifier behind three calls.

``evaluate`` only reads and writes Redis (one optimistic transaction), so a
slow or dead webhook never delays the monitor's report loop; the notifier
runs as a supervised background task (restarted with backoff if it raises,
see :mod:`shared.supervision`) started by ``start`` and ended by ``stop``.
"""

from __future__ import annotations

import logging

import httpx
import redis.asyncio as aioredis

from monitor.alerts.notifier import Notifier
from monitor.alerts.rules import default_rules
from monitor.alerts.snapshot import MetricSnapshot
from monitor.alerts.store import AlertStore, HistoryEntry
from monitor.monitor_settings import AlertSettings
from shared.keys import Keys
from shared.supervision import FailureListener, TaskSupervisor

log = logging.getLogger(__name__)

NOTIFIER_TASK = "alerts-notifier"


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        settings: AlertSettings,
        *,
        client: httpx.AsyncClient | None = None,
        on_failure: FailureListener | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self._own_client = client is None
        self.client = client or httpx.AsyncClient()
        self.notifier = Notifier(store, self.settings, self.client)
        self.tasks = TaskSupervisor(on_failure=on_failure)
        self._started = False

    @classmethod
    def create(
        cls,
        redis: aioredis.Redis,
        keys: Keys,
        settings: AlertSettings,
        on_failure: FailureListener | None = None,
    ) -> AlertService:
        """A service whose store uses the settings' retention and history cap."""
        store = AlertStore(
            redis, keys, history_maxlen=settings.history_maxlen, resolved_retention_s=settings.resolved_retention_s
        )
        return cls(store, settings, on_failure=on_failure)

    async def evaluate(self, snapshot: MetricSnapshot) -> list[HistoryEntry]:
        """Evaluate every rule on ``snapshot``; returns the transitions this call recorded."""
        transitions = await self.store.apply(snapshot)
        for t in transitions:
            log.info("alert %s %s: %s -> %s", t.alertname, t.fingerprint, t.from_state, t.to_state)
        return transitions

    async def start(self, *, install_defaults: bool = True) -> None:
        """Install the default rules on a fresh Redis and start the notifier in the background."""
        rules = default_rules(per_feature=self.settings.per_feature)
        if install_defaults and await self.store.ensure_defaults(rules):
            log.info("installed the default alert rules")
        # Create the group before any evaluation this process makes, so none is skipped.
        await self.notifier.ensure_group()
        if not self._started:
            self._started = True
            self.tasks.start(NOTIFIER_TASK, self.notifier.run)

    async def stop(self) -> None:
        """Stop the notifier (cancelled at once: it holds nothing half-done that a
        cancel would lose), give up the leader lease, close the HTTP client."""
        try:
            await self.tasks.stop(timeout_s=0)
        finally:
            await self.notifier.close()
            if self._own_client:
                await self.client.aclose()
