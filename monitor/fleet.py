"""One monitor process, many models: one set of parts per watched model, found in the registry.

Which models: every name in ``shared.keys.MODELS_INDEX`` (each registration
adds its model's name), restricted to ``DRIFTWATCH_MODELS`` when that is set,
plus the default model (``DRIFTWATCH_MODEL_NAME``), which is always watched.
With ``DRIFTWATCH_NO_DEFAULT_MODEL`` there is no default model (``driftwatch up
--ingest-only``: nobody logs a model of the stack's own): only registered models
are watched, and the unprefixed reads answer 404 (:func:`no_default_model`).
The index is polled every ``DRIFTWATCH_DISCOVERY_INTERVAL_S`` (and at once
when a request names a model not watched yet), so a model registered while
the monitor runs is watched within seconds, without a restart. A model whose
every version is retired (``DELETE /models/{name}/versions/{v}``), or whose
registry entry is gone, is dropped at the next poll (at once by the monitor whose
``DELETE`` retired its last version: that route runs :meth:`Fleet.discover`), also without a restart:
its worker stops (the batch in hand is acked first), its alerts resolve, its
gauges are no longer exported and its reads answer 404; registered again, it
is watched again. The default model is never dropped. At most ``DRIFTWATCH_MAX_MODELS`` are
watched: the default (if any) first, then by name; the rest are listed in ``/readyz``
(``models_not_watched``) and a warning says so.

Each model gets what one model had before (:func:`monitor.assembly.assemble_monitor`):
its consumer in the group ``monitor`` on its own streams, its windows,
reports, performance, alert state and metrics, and a worker under its own
:class:`~shared.supervision.TaskSupervisor`. A model whose loop raises is
restarted alone; the others go on, and ``/readyz`` names it. Replicas share
each model's work through its consumer group, as with one model.

Redis connections: each model's consumer holds up to two connections for its
blocking ``XREADGROUP`` (the read in hand and the one sent ahead). Those, with
the consumers' ingest scripts and acks, use a pool of their own
(``stream_client``, sized ``DRIFTWATCH_REDIS_STREAM_MAX_CONNECTIONS``, by default
2 x ``DRIFTWATCH_MAX_MODELS`` + 4); HTTP reads, reports and alerts use the
other (``DRIFTWATCH_REDIS_MAX_CONNECTIONS``), so 50 models' blocking reads
never make a request wait for a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from monitor.alerts import AlertService
from monitor.assembly import MonitorParts, assemble_monitor
from monitor.monitor_settings import MonitorSettings
from monitor.read_services import MonitorReadiness
from shared.keys import MODELS_INDEX
from shared.log_context import bound_model
from shared.probes import RedisProbe
from shared.registry import active_models
from shared.supervision import TaskSupervisor
from shared.telemetry.recorders import MonitorInstruments
from shared.telemetry.task_metrics import TaskFailureCounter

log = logging.getLogger(__name__)

DISCOVERY_TASK = "model-discovery"
WARM_TASK = "model-warm-up"
# A failure this recent still marks a model as failing in /readyz.
RECENT_FAILURE_S = 60.0


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class ModelHealth(BaseModel):
    """One watched model's worker and counts, as ``/readyz`` lists it under ``models``."""

    worker_running: bool
    worker_error: str | None = None
    worker_failures: int = 0
    predictions_processed: int = 0
    feedback_processed: int = 0
    dead_lettered: int = 0
    lag: int | None = Field(default=None, description="Predictions on the stream not yet read")
    lag_near_cap: bool = False


class Fleet:
    """The watched models' parts, discovery included; what the app and its routes hold."""

    def __init__(
        self,
        client: aioredis.Redis,
        settings: MonitorSettings,
        consumer_name: str,
        *,
        stream_client: aioredis.Redis | None = None,
        control_client: aioredis.Redis | None = None,
        instruments: MonitorInstruments | None = None,
        alerts: AlertService | None = None,
        count_failure: TaskFailureCounter | None = None,
        stats_interval_s: float = 5.0,
    ) -> None:
        """``alerts`` is started by the caller; ``instruments`` (shared by every model) and
        ``count_failure`` are optional (a test may run without telemetry). ``control_client``
        (default ``client``) carries each model's readiness PING (see :func:`assemble_monitor`)."""
        self.client = client
        self.stream_client = stream_client or client
        self.control_client = control_client or client
        self.settings = settings
        self.consumer_name = consumer_name
        self.instruments = instruments
        self.alerts = alerts
        self.count_failure = count_failure
        self.stats_interval_s = stats_interval_s
        self.default = settings.default_model
        # Watched registered or not, never dropped: the default model, if there is one.
        self.pinned = frozenset([self.default] if self.default is not None else [])
        self.allowed = frozenset(settings.models)
        self.parts: dict[str, MonitorParts] = {}
        # Registered models past DRIFTWATCH_MAX_MODELS, and those a model's parts could not be made for.
        self.not_watched: set[str] = set()
        self.failed: dict[str, str] = {}
        self.supervisor = TaskSupervisor(on_failure=count_failure)
        # The warm-up holds nothing half-done (a model not warmed is built at its first report), so
        # a stop cancels it at once: waiting for it made the first Ctrl-C after a start with a cold
        # numba cache take ~10 s and log "did not stop within 10s" as an ERROR.
        self.warm_supervisor = TaskSupervisor(on_failure=count_failure)
        self.redis_probe = RedisProbe(self.control_client)  # readiness with no default model
        self._lock = asyncio.Lock()
        # Models watched but not warmed up yet (their detector and calibration built), oldest first.
        self._cold: asyncio.Queue[str] = asyncio.Queue()

    # -- models ---------------------------------------------------------------------
    @property
    def default_parts(self) -> MonitorParts | None:
        """The default model's parts; None when there is no default model."""
        return self.parts[self.default] if self.default is not None else None

    def get(self, model: str) -> MonitorParts | None:
        return self.parts.get(model)

    async def lookup(self, model: str) -> MonitorParts | None:
        """The parts of ``model``; a registered (or registered again) name not watched yet is
        discovered at once (one ``HKEYS`` first), so a read right after a registration finds its model."""
        found = self.parts.get(model)
        if found is not None or model in self.not_watched or not self.wanted(model):
            return found
        if await active_models(self.client, [model]):
            await self.discover()
        return self.parts.get(model)

    def names(self) -> list[str]:
        """The watched models: the default (if any) first, then by name."""
        return [*self.pinned, *sorted(n for n in self.parts if n not in self.pinned)]

    def wanted(self, name: str) -> bool:
        """Whether this replica should watch ``name`` (``DRIFTWATCH_MODELS``, the default always)."""
        return name in self.pinned or not self.allowed or name in self.allowed

    def watch(self, name: str) -> MonitorParts | None:
        """Assemble and start ``name``'s parts (None past the cap, or when assembling fails)."""
        if name in self.parts:
            return self.parts[name]
        if len(self.parts) >= self.settings.max_models:
            if name not in self.not_watched:
                log.warning("monitor: not watching model %r: %d models are (DRIFTWATCH_MAX_MODELS)",
                            name, len(self.parts))
                self.not_watched.add(name)
            return None
        count_failure = self.count_failure.for_model(name) if self.count_failure is not None else None
        try:
            parts = assemble_monitor(
                self.client,
                self.settings.model_copy(update={"model_name": name}),
                self.consumer_name,
                metrics=self.instruments.model(name) if self.instruments is not None else None,
                alerts=self.alerts,
                stats_interval_s=self.stats_interval_s,
                supervisor=TaskSupervisor(on_failure=count_failure),
                stream_client=self.stream_client,
                probe_client=self.control_client,
            )
        except Exception as exc:  # one model's bad configuration must not stop the others
            log.exception("monitor: cannot watch model %r", name)
            self.failed[name] = f"{type(exc).__name__}: {exc}"[:1_000]
            return None
        self.failed.pop(name, None)
        self.not_watched.discard(name)
        self.parts[name] = parts
        parts.start()
        self._cold.put_nowait(name)
        log.info("monitor: watching model %r (%d watched)", name, len(self.parts))
        return parts

    async def unwatch(self, name: str) -> None:
        """Stop watching ``name``: its worker stops, its alerts resolve, its gauges go.

        It leaves :attr:`parts` last, so a Redis error on the way leaves it there and
        the next discovery tries again (stopping a stopped worker changes nothing)."""
        parts = self.parts.get(name)
        if parts is None:
            return
        await parts.stop()
        if self.instruments is not None:
            self.instruments.forget(name)
        if self.alerts is not None:
            await self.alerts.resolve_model(name)
        del self.parts[name]
        log.info("monitor: model %r dropped: no active version registered (%d watched)", name, len(self.parts))

    async def registered(self) -> set[str]:
        """Every registered model's name (the registry's index)."""
        return {_text(m) for m in await self.client.smembers(MODELS_INDEX)}

    async def discover(self) -> list[str]:
        """Read the registry: watch the active models not watched yet, drop those no longer
        active (the default excepted); returns the names newly watched."""
        async with self._lock:
            names = await self.registered()
            if self.alerts is not None:  # the leader sends every model's notifications, watched here or not
                for name in sorted(names - {s.keys.model for s in self.alerts.stores()}):
                    await self.alerts.add_model(name)
            active = await active_models(self.client, sorted(names)) if names else set()
            for name in sorted(set(self.parts) - active - self.pinned):
                await self.unwatch(name)
            self.not_watched &= active
            self.failed = {n: why for n, why in self.failed.items() if n in active or n in self.pinned}
            added = []
            for name in sorted(active):
                if name not in self.parts and self.wanted(name) and self.watch(name) is not None:
                    added.append(name)
            return added

    async def _discover_forever(self) -> None:
        stop = self.supervisor.stopping
        while not stop.is_set():
            try:
                await self.discover()
            except (aioredis.RedisError, OSError) as exc:
                log.debug("model discovery failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.discovery_interval_s)

    async def _warm_forever(self) -> None:
        """Build each new model's detector and calibration now, one model at a time, rather than
        when its first window closes: 50 models' first windows closing together once took 16 s
        of reports (about 0.3 s each, cold) while their streams waited; warm, 50 take about 1 s."""
        stop = self.warm_supervisor.stopping
        while not stop.is_set():
            try:
                name = await asyncio.wait_for(self._cold.get(), 1.0)
            except TimeoutError:
                continue
            parts = self.parts.get(name)
            if parts is None:
                continue  # dropped meanwhile
            with bound_model(name):
                try:
                    await parts.catalog.latest()
                    await parts.performance.report(last_windows=1)
                except Exception as exc:  # its first report tries again, and says why in its own task
                    log.warning("monitor: warming up failed (%s: %s)", type(exc).__name__, exc)

    # -- lifecycle --------------------------------------------------------------------
    async def start(self, groups_timeout_s: float = 2.0) -> None:
        """Watch the default model at once (it needs no registration), then discover the rest.

        The default model's consumer groups are created first (best effort, within
        ``groups_timeout_s``; its worker retries until Redis answers), so once the app
        answers, that model's streams have their group, as before there were many models.
        With no default model, registered models alone are watched, from the first discovery.
        """
        if self.default is None:
            log.info("monitor: no default model (DRIFTWATCH_NO_DEFAULT_MODEL): watching registered models only")
        else:
            parts = self.watch(self.default)
            if parts is None:
                raise RuntimeError(f"cannot watch the default model {self.default!r}: {self.failed.get(self.default)}")
            try:
                await asyncio.wait_for(parts.consumer.ensure_groups(), groups_timeout_s)
            except (TimeoutError, aioredis.RedisError, OSError) as exc:
                log.warning("monitor: consumer groups of %r not created yet (%s); its worker retries",
                            self.default, exc)
        self.supervisor.start(DISCOVERY_TASK, self._discover_forever)
        self.warm_supervisor.start(WARM_TASK, self._warm_forever)

    async def stop(self) -> None:
        await self.warm_supervisor.stop(timeout_s=0)
        await self.supervisor.stop()
        await asyncio.gather(*(parts.stop() for parts in self.parts.values()))

    # -- health -----------------------------------------------------------------------
    def health(self) -> dict[str, ModelHealth]:
        """Each watched model's worker and counts (no Redis I/O: cached values only)."""
        out: dict[str, ModelHealth] = {}
        for name in self.names():
            parts = self.parts[name]
            supervisor = parts.worker.supervisor
            stats = parts.consumer.stats
            snapshot = parts.stream_health.snapshot
            out[name] = ModelHealth(
                worker_running=parts.worker.running,
                worker_error=supervisor.last_error,
                worker_failures=supervisor.failures,
                predictions_processed=stats.predictions,
                feedback_processed=stats.feedback,
                dead_lettered=stats.dead_lettered,
                lag=parts.stream_health.lag(),
                lag_near_cap=bool(snapshot.get("lag_near_cap")),
            )
        return out

    async def readiness(self) -> MonitorReadiness:
        """Readiness of a monitor with no default model: Redis answers and models are being
        discovered; the counts are the watched models' sums (one failing model is named in
        ``failing_models``, not made the replica's failure, as with a default model)."""
        redis_ok = await self.redis_probe.answers()
        discovering = self.supervisor.running(DISCOVERY_TASK)
        stats = [parts.consumer.stats for parts in self.parts.values()]
        return MonitorReadiness(
            ready=redis_ok and discovering,
            redis=redis_ok,
            worker_running=discovering,
            worker_error=self.supervisor.last_error,
            worker_failures=self.supervisor.failures,
            predictions_processed=sum(s.predictions for s in stats),
            feedback_processed=sum(s.feedback for s in stats),
            duplicates_ignored=sum(s.duplicates for s in stats),
            dead_lettered=sum(s.dead_lettered for s in stats),
            failed_deliveries=sum(s.failed for s in stats),
            claimed=sum(s.claimed for s in stats),
            trimmed_unprocessed=sum(s.trimmed for s in stats),
        )

    def failing(self, now: float | None = None) -> list[str]:
        """Models whose worker is not running, failed in the last minute, or could not be assembled."""
        now = time.time() if now is None else now
        out = sorted(self.failed)
        for name in self.names():
            supervisor = self.parts[name].worker.supervisor
            recent = supervisor.last_error is not None and now - supervisor.last_error_unix < RECENT_FAILURE_S
            if not self.parts[name].worker.running or recent:
                out.append(name)
        return out


def no_default_model(fleet: Fleet) -> str:
    """Why an unprefixed read (``/drift``, ``/alerts`` ...) of a monitor without a default model
    is a 404, and what to do instead."""
    return (
        "this monitor has no default model (DRIFTWATCH_NO_DEFAULT_MODEL, as driftwatch up --ingest-only"
        " runs it), so the routes without /models/{name} read no model: use"
        f" /models/{{name}}/... (watched: {watched_names(fleet) or 'none yet'}), or run the monitor with"
        " DRIFTWATCH_MODEL_NAME set and DRIFTWATCH_NO_DEFAULT_MODEL unset"
    )


def watched_names(fleet: Fleet, extra: Iterable[str] = ()) -> str:
    """The watched models for a message, capped: ``"a, b, c and 47 more"``.

    >>> from types import SimpleNamespace
    >>> watched_names(SimpleNamespace(names=lambda: ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]))
    'm0, m1, m2, m3, m4 and 2 more'
    """
    names = [*fleet.names(), *extra]
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")
