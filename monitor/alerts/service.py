"""What the monitor app holds: the shared rules, one store per model, one notifier for them all.

``evaluate`` only reads and writes Redis (one optimistic transaction), so a
slow or dead webhook never delays the monitor's report loop; the notifier
runs as a supervised background task (restarted with backoff if it raises,
see :mod:`shared.supervision`) started by ``start`` and ended by ``stop``.
A monitor watching many models adds each (:meth:`AlertService.add_model`)
and hands each model's report listener its :class:`ModelAlerts`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from monitor.alerts.notifier import Notifier
from monitor.alerts.rules import default_rules
from monitor.alerts.snapshot import MetricSnapshot
from monitor.alerts.store import AlertStore, HistoryEntry
from monitor.monitor_settings import AlertSettings
from shared.keys import Keys
from shared.log_context import bound_model
from shared.supervision import FailureListener, TaskSupervisor

log = logging.getLogger(__name__)

NOTIFIER_TASK = "alerts-notifier"


@dataclass(frozen=True, slots=True)
class ModelAlerts:
    """One model's side of the alert service: what that model's report listener holds."""

    service: AlertService
    model: str

    @property
    def settings(self) -> AlertSettings:
        return self.service.settings

    @property
    def store(self) -> AlertStore:
        return self.service.store_for(self.model)

    async def evaluate(self, snapshot: MetricSnapshot) -> list[HistoryEntry]:
        return await self.service.evaluate(snapshot, model=self.model)


class AlertService:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: AlertSettings,
        *,
        default_model: str | None,
        client: httpx.AsyncClient | None = None,
        on_failure: FailureListener | None = None,
        lease_redis: aioredis.Redis | None = None,
    ) -> None:
        """``default_model``: the model of :attr:`store` and of ``evaluate`` without a model (None: a
        monitor of registered models only); ``lease_redis``: the client of the leader lease (see :class:`Notifier`)."""
        self.redis = redis
        self.settings = settings
        self.default_model = default_model
        self._stores: dict[str, AlertStore] = {}
        # With no default model, the shared rules are read and written through a store of no model,
        # kept out of :meth:`stores` (no notifications, no history group): only its rule methods are used.
        self._rules_only = AlertStore(redis, Keys(""), history_maxlen=settings.history_maxlen)
        self._own_client = client is None
        self.client = client or httpx.AsyncClient()
        self.notifier = Notifier(self.stores, settings, self.client, redis, lease_redis=lease_redis)
        self.tasks = TaskSupervisor(on_failure=on_failure)
        self._started = False

    @classmethod
    def create(
        cls,
        redis: aioredis.Redis,
        keys: Keys,
        settings: AlertSettings,
        on_failure: FailureListener | None = None,
        lease_redis: aioredis.Redis | None = None,
    ) -> AlertService:
        """A service whose default model is ``keys.model``, with the settings' retention and history cap."""
        return cls(redis, settings, default_model=keys.model, on_failure=on_failure, lease_redis=lease_redis)

    @property
    def store(self) -> AlertStore:
        """The default model's store (rules are shared: any store reads and writes all of them);
        with no default model, one for the rules alone."""
        return self.store_for(self.default_model) if self.default_model is not None else self._rules_only

    def store_for(self, model: str) -> AlertStore:
        """The store of one model's alert states and history (made on first use)."""
        store = self._stores.get(model)
        if store is None:
            store = AlertStore(
                self.redis,
                Keys(model),
                history_maxlen=self.settings.history_maxlen,
                resolved_retention_s=self.settings.resolved_retention_s,
            )
            self._stores[model] = store
        return store

    def stores(self) -> list[AlertStore]:
        """Every model's store this process knows: whose notifications it sends when it leads."""
        return list(self._stores.values())

    def for_model(self, model: str) -> ModelAlerts:
        self.store_for(model)
        return ModelAlerts(self, model)

    async def add_model(self, model: str) -> None:
        """Know ``model`` from now on: its notification group exists before its first evaluation
        (when Redis fails here, the notifier creates the group at its next round)."""
        store = self.store_for(model)
        if self._started:
            try:
                await self.notifier.ensure_group(store)
            except RedisError as exc:
                log.warning("alert history group of %s not created yet (%s); the notifier retries", model, exc)

    async def resolve_model(self, model: str) -> list[HistoryEntry]:
        """End every alert of ``model`` (no longer watched): each version's instances and its
        service ones become orphans, so firing ones resolve (and are notified) and pending ones end."""
        store = self.store_for(model)
        at = time.time()
        transitions = []
        for version in sorted(await store.alerted_versions()):
            snapshot = MetricSnapshot(at=at, model_version=version, version_retired=True)
            transitions += await self.evaluate(snapshot, model=model)
        return transitions + await self.evaluate(MetricSnapshot(at=at, version_retired=True), model=model)

    async def evaluate(self, snapshot: MetricSnapshot, model: str | None = None) -> list[HistoryEntry]:
        """Evaluate ``model``'s rules (default: the default model's) on ``snapshot``;
        returns the transitions this call recorded."""
        model = model or self.default_model
        if model is None:
            raise ValueError("no model to evaluate: this service has no default model")
        transitions = await self.store_for(model).apply(snapshot)
        with bound_model(model, snapshot.model_version):  # the line names them as every model's line does
            for t in transitions:
                log.info("alert %s %s: %s -> %s", t.alertname, t.fingerprint, t.from_state, t.to_state)
        if transitions:
            self.notifier.recorded.set()
        return transitions

    async def start(self, *, install_defaults: bool = True) -> None:
        """Install the default rules on a fresh Redis and start the notifier in the background."""
        store = self.store
        if self.default_model is not None and await store.adopt_model_rules():
            log.info("alert rules of %s now apply to every model (rules without a 'model')", self.default_model)
        rules = default_rules(per_feature=self.settings.per_feature)
        if install_defaults and await store.ensure_defaults(rules):
            log.info("installed the default alert rules")
        # Create the groups before any evaluation this process makes, so none is skipped.
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
