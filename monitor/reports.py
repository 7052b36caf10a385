"""Drift reports per window: computed when a window fills, stored in Redis.

Each model version has its own window series (:mod:`monitor.windows`): the
reporter walks every series with windows waiting, and tests each window
against its own version's reference. Reports carry ``model_version``.

Reports are keyed by (series, window index), so computing one twice (two replicas, or a
retry after a crash) writes the same report again instead of a second one.
A window's raw rows are deleted only after its report is stored (for sliding
windows, after the last report that needs them: see :mod:`monitor.windows`).

The reference is the training sample registered with the model (default) or,
with ``DRIFTWATCH_REFERENCE=production``, the first
``DRIFTWATCH_REFERENCE_SIZE`` predictions each model version served (rounded
up to whole ingest windows, whose class counts are kept exactly). It is
stored in Redis per model version, one hash field per window (written with
``HSETNX``, so replicas and retries agree), and those windows get no report:
a sample is not tested against itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from monitor import agreement, class_mix
from monitor.agreement import Surrogate
from monitor.class_mix import ClassMixBound
from monitor.drift import DriftConfig, DriftDetector, DriftReport
from monitor.drift.sliding import SlidingKS, incremental_pays
from monitor.histograms import FeatureBins, HistogramStore
from monitor.model_kinds import detector_metadata, detector_reference
from monitor.monitor_settings import MonitorSettings
from monitor.window_state import split_window_rows
from monitor.windows import WindowMode, WindowPolicy, WindowStore
from shared.events import FLOAT
from shared.keys import Keys
from shared.log_context import bound_model
from shared.model_metadata import LabelJoin, ModelMetadata
from shared.registry import read_current_version, read_registered_model
from shared.series import SeriesOrdinals

log = logging.getLogger(__name__)


class WindowDriftReport(DriftReport):
    """A detector's report plus where it came from.

    ``window`` is the drift window's index (for sliding windows, the index of
    its newest step or time slot); ``window_first`` the oldest ingest window it
    covers. ``window_step`` is the step in rows of a sliding window by count.
    ``window_mode``, ``window_step`` and ``reference_source`` say how the
    window and the reference were made; ``ks_method`` and ``min_window_size``
    complete the thresholds (``alpha``, ``correction``, ``per_test_level``,
    ``min_effect_size``) and sample sizes (``reference_size``,
    ``window_size``) of the :class:`DriftReport`.
    """

    window: int
    model: str
    model_version: str
    window_start: datetime
    window_end: datetime
    computed_at: datetime
    window_mode: WindowMode = "count"
    window_first: int | None = None
    window_step: int | None = None
    ks_method: str = "auto"
    min_window_size: int | None = None
    reference_source: Literal["training", "production"] = "training"
    error: str | None = None
    """Why the window could not be tested (``status="error"``): e.g. rows that do not
    fit the registered metadata of their model version."""
    accuracy_bound: float | None = None
    """Upper bound on the window's accuracy from its predicted class mix against the mix its
    features imply (:mod:`monitor.class_mix`); None without a labelled reference with features."""
    agreement_accuracy: float | None = None
    """Label-free accuracy from the served model's agreement with a kNN vote on the labelled
    reference (:mod:`monitor.agreement`), for a window of one ingest window whose rows carry their
    predicted class; None otherwise (the performance report then falls back to DoC)."""
    agreement_interval: tuple[float, float] | None = None
    """95% interval of ``agreement_accuracy`` (sampling of the window and the reference)."""


class ReportPage(BaseModel):
    reports: list[WindowDriftReport]


def _ms_to_datetime(ms: bytes | None) -> datetime:
    return datetime.fromtimestamp(int(ms or 0) / 1000, tz=UTC)


ReferenceSource = Literal["training", "production"]


@dataclass(frozen=True, slots=True)
class ReferencePolicy:
    """Where the drift reference comes from (``DRIFTWATCH_REFERENCE``, ``..._SIZE``)."""

    source: ReferenceSource = "training"
    size: int = 1_000

    @classmethod
    def from_settings(cls, settings: MonitorSettings) -> ReferencePolicy:
        return cls(source=settings.reference, size=settings.reference_size)


def drift_config(settings: MonitorSettings) -> DriftConfig:
    """The detector configuration the monitor runs, from its settings.

    One place, so ``benchmarks/drift.py`` times exactly what the worker runs.
    Time windows vary in size: their effect floors come from a grid of sizes
    (``floor_sizes="grid"``), not recomputed for every window's own size;
    count and sliding windows have one size, whose floors (and critical values)
    the detector computes when it is built (``window_size``, ``prepare()``).
    """
    policy = WindowPolicy.from_settings(settings)
    return DriftConfig(
        alpha=settings.alpha, correction=settings.correction, min_window_size=settings.min_window_size,
        p_values=settings.p_values, effect_floor=settings.effect_floor, threads=settings.drift_threads,
        floor_sizes="grid" if policy.timed else "exact", window_size=None if policy.timed else policy.size,
    )


class ModelCatalog:
    """Registered model versions and their detectors, built once per version.

    With ``reference.source="production"`` a version's detector exists once
    its first ``reference.size`` predictions are stored (:meth:`add_reference_window`).
    The metadata it gives is what the detector tests (:mod:`monitor.model_kinds`):
    a regressor's has the ``prediction`` column after its features.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        config: DriftConfig,
        reference: ReferencePolicy,
    ) -> None:
        self.client = client
        self.keys = keys
        self.config = config
        self.reference = reference
        self._detectors: dict[str, tuple[ModelMetadata, DriftDetector]] = {}
        # Histogram bins per version, fixed from the same reference as the detector.
        self.bins: dict[str, FeatureBins] = {}
        self._metadata: dict[str, ModelMetadata] = {}
        # The class-mix accuracy bound per version (None: its reference cannot give one).
        self.class_mix: dict[str, ClassMixBound | None] = {}
        # The agreement surrogate per version (None: its reference cannot give one).
        self.agreement: dict[str, Surrogate | None] = {}
        # Production references: the ingest windows they were built from.
        self.reference_windows: dict[str, set[int]] = {}

    def production_key(self, version: str) -> str:
        """Hash: window index -> rows, ``<window>:classes`` -> class counts JSON."""
        return self.keys.production_reference(version)

    async def metadata(self, version: str) -> ModelMetadata | None:
        if version not in self._metadata:
            registered = await read_registered_model(self.client, self.keys, version)
            if registered is None:
                return None
            self._metadata[version] = detector_metadata(registered[0])
        return self._metadata[version]

    async def get(self, version: str) -> tuple[ModelMetadata, DriftDetector] | None:
        if version not in self._detectors:
            registered = await read_registered_model(self.client, self.keys, version)
            if registered is None:
                return None
            registered_metadata, training = registered
            metadata = self._metadata[version] = detector_metadata(registered_metadata)
            self.class_mix[version] = await asyncio.to_thread(
                class_mix.from_reference, training, registered_metadata.n_classes
            )
            self.agreement[version] = await asyncio.to_thread(
                agreement.from_reference, training, registered_metadata.n_classes
            )
            classes: np.ndarray | None
            if self.reference.source == "production":
                built = await self._production_reference(version, metadata)
                if built is None:
                    return None
                features, classes = built
            else:
                features, classes = detector_reference(registered_metadata, training)
            detector = await asyncio.to_thread(
                DriftDetector,
                reference=features,
                feature_names=metadata.feature_names,
                config=self.config,
                categorical=np.array(metadata.categorical, dtype=bool),
                reference_classes=classes,
                n_classes=metadata.n_classes if classes is not None else None,
            )
            await asyncio.to_thread(detector.prepare)  # reference-side state, once per version
            self.bins[version] = await asyncio.to_thread(
                FeatureBins, features, metadata.feature_names, np.array(metadata.categorical, dtype=bool)
            )
            self._detectors[version] = (metadata, detector)
        return self._detectors[version]

    async def _production_reference(
        self, version: str, metadata: ModelMetadata
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The stored production reference of a version, once it has ``size`` rows."""
        stored = await self.client.hgetall(self.production_key(version))
        windows = sorted(int(k) for k in stored if not k.endswith(b":classes"))
        blobs = [stored[str(w).encode()] for w in windows]
        rows = sum(len(b) for b in blobs) // (4 * metadata.n_features)
        if rows < self.reference.size:
            return None
        features = np.frombuffer(b"".join(blobs), dtype=FLOAT).reshape(rows, metadata.n_features)
        if metadata.n_classes == 0:  # a regressor: its prediction is a column of the features
            self.reference_windows[version] = set(windows)
            return features, None
        counts = np.zeros(metadata.n_classes, dtype=np.int64)
        for w in windows:
            for cls, n in json.loads(stored[f"{w}:classes".encode()]).items():
                counts[int(cls)] += int(n)
        self.reference_windows[version] = set(windows)
        return features, np.repeat(np.arange(metadata.n_classes), counts)

    async def add_reference_window(
        self, version: str, window: int, rows: list[bytes], class_counts: dict[bytes, bytes]
    ) -> bool:
        """Offer a window to a production reference still being built.

        Returns True if the window became part of it (then it gets no report).
        Windows are taken whole, oldest first, until the reference holds
        ``size`` rows; a retry or a second replica offering the same window
        changes nothing (``HSETNX``).
        """
        key = self.production_key(version)
        stored = await self.client.hgetall(key)
        have = {int(k) for k in stored if not k.endswith(b":classes")}
        if window in have:
            return True
        metadata = await self.metadata(version)
        if metadata is None:
            return False
        n_rows = sum(len(stored[str(w).encode()]) for w in have) // (4 * metadata.n_features)
        if n_rows >= self.reference.size:
            return False  # complete: later windows are tested
        classes = json.dumps({k.decode(): int(v) for k, v in class_counts.items()})
        features = split_window_rows(rows, metadata.n_features)[0]  # without the rows' classes
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, str(window), features.tobytes())
            pipe.hsetnx(key, f"{window}:classes", classes)
            await pipe.execute()
        return True

    async def latest(self) -> tuple[ModelMetadata, DriftDetector] | None:
        """The version the model service registered last."""
        version = await read_current_version(self.client, self.keys)
        return await self.get(version) if version else None

    async def latest_metadata(self) -> ModelMetadata | None:
        """The metadata of the version served last, whether or not its detector can be
        built yet (a production reference is incomplete until its windows fill)."""
        version = await read_current_version(self.client, self.keys)
        return await self.metadata(version) if version else None

    async def n_features(self, version: str) -> int | None:
        metadata = await self.metadata(version)
        return metadata.n_features if metadata else None

    async def label_join(self, version: str) -> LabelJoin | None:
        """How the version's labels find their predictions (None: not registered, joined by id).
        Read once per version: a version's choice is made when it is registered."""
        metadata = await self.metadata(version)
        return metadata.label_join if metadata else None


@dataclass
class _SlidingState:
    """This replica's incremental state of the last sliding window it reported."""

    version: str
    last: int
    sliding: SlidingKS | None
    # (rows, classes, whether classes[i] is row i's: rows filed before they carried it are not)
    steps: deque[tuple[np.ndarray, np.ndarray, bool]] = field(default_factory=deque)


class DriftReporter:
    """Reports full windows of every version's series (see :mod:`monitor.windows`).

    ``time_grace_ms``: in time modes, how long after a window's end late
    predictions may still arrive before it is closed.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        catalog: ModelCatalog,
        history_max: int,
        windows: WindowPolicy,
        time_grace_ms: int = 5_000,
        ordinals: SeriesOrdinals | None = None,
    ) -> None:
        self.client = client
        self.keys = Keys(keys.model)
        self.catalog = catalog
        self.history_max = history_max
        self.windows = windows
        self.ordinals = ordinals if ordinals is not None else SeriesOrdinals(client, self.keys)
        self._stores: dict[str, WindowStore] = {}
        self.histograms = HistogramStore(client, self.keys)
        self._sliding: dict[str, _SlidingState] = {}  # per version
        self.time_grace_ms = time_grace_ms
        self.incremental_steps = 0  # sliding reports built from the previous one plus one new step (tests, logs)
        self.ks_steps = 0  # of those, KS statistics stepped (SlidingKS) instead of tested whole

    def store(self, version: str) -> WindowStore:
        """The window store of one version's series."""
        if version not in self._stores:
            self._stores[version] = WindowStore(self.client, self.keys.for_version(version), self.windows)
        return self._stores[version]

    async def report_pending(self) -> list[WindowDriftReport]:
        """Report every full window not reported yet, series by series, oldest first.

        In time mode, windows whose time is over are closed first (a quiet
        stream has no later event to close them). Cost: one read per version
        that has a series (a model keeps few).
        """
        versions = sorted((await self.ordinals.versions()).items(), key=lambda item: item[1])
        now_ms = int(time.time() * 1000)
        for version, _ in versions:
            await self.store(version).close_elapsed(now_ms, self.time_grace_ms)
        async with self.client.pipeline(transaction=False) as pipe:
            for version, _ in versions:
                pipe.smembers(self.keys.for_version(version).windows_to_report)
            waiting = await pipe.execute()
        reports = []
        for (version, _), members in zip(versions, waiting, strict=True):
            for window in sorted(int(w) for w in members):
                report = await self._report_safely(window, version)
                if report is not None:
                    reports.append(report)
        return reports

    async def _report_safely(self, window: int, version: str) -> WindowDriftReport | None:
        with bound_model(self.keys.model, version):  # its lines name the model and version
            try:
                return await self.report_window(window, version)
            except (RedisConnectionError, RedisTimeoutError, OSError):
                raise  # Redis is away: every window waits, and is reported when it is back
            except Exception as exc:  # this window cannot be tested; the others still are
                log.exception("window %d: report failed; stored as an error", window)
                return await self.report_error(window, exc, version)

    async def report_error(self, window: int, exc: Exception, version: str) -> WindowDriftReport | None:
        """Store ``status="error"`` with the reason for a window that cannot be tested (its
        rows do not fit its model version's metadata, the reference is unreadable...).

        The window leaves the to-report set and its rows go, as after a report, so
        one bad window neither blocks the windows after it nor fails again forever.
        """
        store = self.store(version)
        ((rows, _, meta),) = await store.read([window], with_rows=False)
        if not rows or b"model_version" not in meta:
            await self.client.srem(store.keys.windows_to_report, window)
            return None
        config = self.catalog.config
        report = WindowDriftReport(
            status="error",
            error=f"{type(exc).__name__}: {exc}"[:1_000],
            dataset_drift=False,
            drifted_share=0.0,
            n_drifted=0,
            n_features=0,
            alpha=config.alpha,
            correction=config.correction,
            reference_size=0,
            window_size=len(rows),
            window=window,
            model=self.keys.model,
            model_version=version,
            window_start=_ms_to_datetime(meta.get(b"first_ts")),
            window_end=_ms_to_datetime(meta.get(b"last_ts")),
            computed_at=datetime.now(UTC),
            window_mode=self.windows.mode,
            window_first=window,
            reference_source=self.catalog.reference.source,
        )
        await store.store(window, window, report.model_dump_json())
        return report

    async def report_window(self, window: int, version: str) -> WindowDriftReport | None:
        """Test one full window of ``version``'s series and store its report; None when there
        is nothing to report (reported already, part of the production reference, or its
        model version not registered yet: then it is retried)."""
        policy = self.windows
        store = self.store(version)
        ((own_rows, own_classes, meta),) = await store.read([window], with_rows=False)
        if not own_rows or b"model_version" not in meta:  # reported already by another replica
            await self.client.srem(store.keys.windows_to_report, window)
            return None
        entry = await self._detector_for(window, version, own_classes)
        if entry is None:
            return None
        metadata, detector = entry
        # A window of the other kind, closed by a switch of mode (the ingest script's new epoch: the
        # count window in progress, or the open time slots): reported alone, with its own bounds
        # and mode (a count window is no time slot of 1970).
        kind = meta.get(b"mode", b"").decode()
        left: WindowMode | None = None
        if kind in ("count", "time") and kind != ("time" if policy.timed else "count"):
            left = "time" if kind == "time" else "count"
        first, first_meta = (window, meta) if left else await self._first_member(window, version)
        members = list(range(first, window + 1))

        state = self._sliding.pop(version, None)  # restored only if this report succeeds
        state = await self._window_steps(window, members, version, metadata, detector, state)
        if state is None:  # reported already (by another replica)
            await self.client.srem(store.keys.windows_to_report, window)
            return None
        features = np.concatenate([s[0] for s in state.steps]) if len(state.steps) > 1 else state.steps[0][0]
        classes = np.concatenate([s[1] for s in state.steps])
        if policy.mode == "sliding" and state.sliding is not None:
            result = await asyncio.to_thread(detector.test_sliding, state.sliding, features, classes)
        else:
            result = await asyncio.to_thread(detector.test, features, classes)
        counts = await asyncio.to_thread(self.catalog.bins[version].counts, features)
        accuracy_bound = await asyncio.to_thread(self._accuracy_bound, version, features, classes)
        estimate = None
        if first == window and all(aligned for _, _, aligned in state.steps):
            estimate = await asyncio.to_thread(
                agreement.window_estimate, self.catalog.agreement.get(version), features, classes, window)
        state.last = window
        if policy.mode == "sliding":
            self._sliding[version] = state

        if policy.timed and not left:
            start, end = policy.slot_bounds(first, window)
        else:
            start, end = _ms_to_datetime(first_meta.get(b"first_ts")), _ms_to_datetime(meta.get(b"last_ts"))
        report = WindowDriftReport(
            **result.model_dump(),
            window=window,
            model=metadata.name,
            model_version=version,
            window_start=start,
            window_end=end,
            computed_at=datetime.now(UTC),
            window_mode=left or policy.mode,
            window_first=first,
            window_step=policy.step if policy.mode == "sliding" else None,
            ks_method=detector.config.ks_method,
            min_window_size=detector.config.min_window_size,
            reference_source=self.catalog.reference.source,
            accuracy_bound=accuracy_bound,
            agreement_accuracy=estimate.value if estimate else None,
            agreement_interval=(estimate.low, estimate.high) if estimate else None,
        )
        # Histograms first: once the report is visible, so are they (a retry rewrites the same counts).
        await self.histograms.store(window, version, self.catalog.bins[version], counts)
        await store.store(window, first, report.model_dump_json())
        await self._trim_history(store.keys)
        log.info("window %d: %s, dataset drift=%s (%.0f%% features) in %.0f ms", window, report.status,
                 report.dataset_drift, 100 * report.drifted_share,
                 (time.time() - report.computed_at.timestamp()) * 1000)
        return report

    def _accuracy_bound(self, version: str, features: np.ndarray, classes: np.ndarray) -> float | None:
        """The window's class-mix accuracy bound (:mod:`monitor.class_mix`), when its version's
        reference gives one and every row has a predicted class the model knows."""
        bound = self.catalog.class_mix.get(version)
        if bound is None or classes.size != len(features) or classes.size == 0:
            return None
        if classes.min() < 0 or classes.max() >= bound.n_classes:
            return None
        return bound.bound(features, np.bincount(classes, minlength=bound.n_classes))

    async def _detector_for(
        self, window: int, version: str, own_classes: dict[bytes, bytes]
    ) -> tuple[ModelMetadata, DriftDetector] | None:
        """The version's detector; while a production reference is being built, the window
        is offered to it first (then it gets no report)."""
        entry = await self.catalog.get(version)
        if entry is None and self.catalog.reference.source == "production":
            store = self.store(version)
            rows = (await store.read([window]))[0][0]
            if await self.catalog.add_reference_window(version, window, rows, own_classes):
                await store.skip(window)
                log.info("window %d: part of the production reference", window)
                return None
            entry = await self.catalog.get(version)
        if entry is None:
            log.warning("window %d: this model version is not registered yet; will retry", window)
        return entry

    async def _first_member(self, window: int, version: str) -> tuple[int, dict[bytes, bytes]]:
        """The oldest ingest window of the drift window, and its metadata.

        Members share the model version and are never windows of the production
        reference; in ``sliding-time`` a slot without predictions is part of the span.
        """
        policy = self.windows
        members = policy.members(window)
        skip = self.catalog.reference_windows.get(version, set())
        metas = await self.store(version).read(members, with_rows=False)
        first = window
        for w, (_, _, m_meta) in zip(reversed(members), reversed(metas), strict=True):
            if policy.mode == "sliding-time" and not m_meta and w not in skip:
                first = w  # a time slot without predictions: part of the span, no rows
                continue
            if w in skip or m_meta.get(b"model_version", b"").decode() != version:
                break
            first = w
        return first, metas[len(metas) - (window - first + 1)][2]

    async def _window_steps(
        self,
        window: int,
        members: list[int],
        version: str,
        metadata: ModelMetadata,
        detector: DriftDetector,
        state: _SlidingState | None,
    ) -> _SlidingState | None:
        """The rows of the drift window, one step per ingest window; None if a member was reported already.

        A sliding window that follows the previous one on this replica only
        reads its newest step, and moves the incremental KS state by it where
        one is kept (:func:`incremental_pays`; else the window is tested whole).
        """
        policy = self.windows
        incremental = (
            policy.mode == "sliding"
            and state is not None
            and state.version == version
            and state.last == window - 1
            and len(state.steps) == policy.span == len(members)
        )
        if incremental:
            assert state is not None
            ((rows, new_classes, _),) = await self.store(version).read([window])
            step = _decode_step(rows, new_classes, metadata.n_features)
            state.steps.popleft()
            state.steps.append(step)
            if state.sliding is not None:
                await asyncio.to_thread(state.sliding.step, detector.numeric_columns(step[0]))
                self.ks_steps += 1
            self.incremental_steps += 1
            return state
        read = await self.store(version).read_unreported(window, members)
        if read is None:  # reported already (by another replica)
            return None
        if policy.mode == "sliding-time":
            read = [r for r in read if r[0]]  # slots without predictions
        elif any(not r for r, _, _ in read):  # a member's rows are gone: reported already
            return None
        steps = deque(_decode_step(r, c, metadata.n_features) for r, c, _ in read)
        sliding = None
        # The KS state is kept only where stepping it beats testing the window whole
        # (incremental_pays: not at the default sizes); the rows are kept either way.
        if (
            policy.mode == "sliding"
            and len(members) == policy.span
            and incremental_pays(detector.reference_size, policy.size, policy.step)
        ):
            sliding = await asyncio.to_thread(detector.sliding, np.concatenate([s[0] for s in steps]))
        return _SlidingState(version, window, sliding, steps)

    async def _trim_history(self, keys: Keys) -> None:
        """Keep the newest ``history_max`` reports of one series."""
        excess = await self.client.zcard(keys.drift_index) - self.history_max
        if excess > 0:
            old = await self.client.zrange(keys.drift_index, 0, excess - 1)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.hdel(keys.drift_reports, *old)
                pipe.zrem(keys.drift_index, *old)
                pipe.hdel(keys.drift_histograms, *old)
                await pipe.execute()


def _decode_step(
    rows: list[bytes], counts: dict[bytes, bytes], n_features: int
) -> tuple[np.ndarray, np.ndarray, bool]:
    """An ingest window's features and predicted classes, and whether the classes are its rows'
    (rows filed by an older monitor carry none: the class counts give the same mix, unpaired)."""
    features, classes = split_window_rows(rows, n_features)
    if classes is not None:
        return features, classes, True
    return features, _decode_classes(counts), False


def _decode_classes(counts: dict[bytes, bytes]) -> np.ndarray:
    return np.repeat(
        np.array([int(k) for k in counts], dtype=np.int64),
        np.array([int(v) for v in counts.values()], dtype=np.int64),
    )
