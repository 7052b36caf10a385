"""Process CPU and memory metrics under their semantic-convention names.

Why not ``opentelemetry-instrumentation-system-metrics``: its instrumentor is a
process-wide singleton that captures the pid when built, records
``process.cpu.time`` with a ``type`` attribute where the semantic conventions
say ``cpu.mode``, and registers dozens of ``system.*`` series a sidecar has no
use for. Six observable instruments over :mod:`psutil` are simpler and exact.

All values are read at export time, so a service pays nothing per request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

from shared.telemetry.attributes import CPU_MODE
from shared.telemetry.catalogue import (
    PROCESS_CPU_TIME,
    PROCESS_CPU_UTILIZATION,
    PROCESS_MEMORY_USAGE,
    PROCESS_MEMORY_VIRTUAL,
    PROCESS_OPEN_FILE_DESCRIPTOR_COUNT,
    PROCESS_THREAD_COUNT,
    create_instrument,
)


def _available_cpus() -> int:
    """CPUs this process may run on (affinity), which is what utilization is relative to."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, psutil.cpu_count() or 1)


class ProcessMetrics:
    """Registers the process metrics on ``meter``; keep the object alive with the provider."""

    def __init__(self, meter: Meter) -> None:
        self._proc = psutil.Process(os.getpid())
        self._cpus = _available_cpus()
        # cpu_percent(None) measures from the previous call; prime it so the
        # first export is not a meaningless 0.
        self._proc.cpu_percent(None)
        create_instrument(meter, PROCESS_CPU_TIME, [self._cpu_time])
        create_instrument(meter, PROCESS_CPU_UTILIZATION, [self._cpu_utilization])
        create_instrument(meter, PROCESS_MEMORY_USAGE, [self._memory_usage])
        create_instrument(meter, PROCESS_MEMORY_VIRTUAL, [self._memory_virtual])
        create_instrument(meter, PROCESS_THREAD_COUNT, [self._thread_count])
        create_instrument(meter, PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, [self._open_fds])

    def _cpu_time(self, _options: CallbackOptions) -> Iterable[Observation]:
        times = self._proc.cpu_times()
        yield Observation(times.user, {CPU_MODE: "user"})
        yield Observation(times.system, {CPU_MODE: "system"})

    def _cpu_utilization(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.cpu_percent(None) / 100.0 / self._cpus)

    def _memory_usage(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.memory_info().rss)

    def _memory_virtual(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.memory_info().vms)

    def _thread_count(self, _options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.num_threads())

    def _open_fds(self, _options: CallbackOptions) -> Iterable[Observation]:
        try:
            yield Observation(self._proc.num_fds())
        except (AttributeError, psutil.Error):  # not on Windows; nothing to report
            return
