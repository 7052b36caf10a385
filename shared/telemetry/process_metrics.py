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
from typing import Final

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation

PROCESS_CPU_TIME: Final = "process.cpu.time"
"""
Total CPU seconds broken down by CPU mode (attribute ``cpu.mode``: user, system)
Instrument: counter (observable)
Unit: s
"""

PROCESS_CPU_UTILIZATION: Final = "process.cpu.utilization"
"""
CPU time used since the previous export, over elapsed time and available CPUs
Instrument: gauge (observable)
Unit: 1
"""

PROCESS_MEMORY_USAGE: Final = "process.memory.usage"
"""
Resident set size
Instrument: updowncounter (observable)
Unit: By
"""

PROCESS_MEMORY_VIRTUAL: Final = "process.memory.virtual"
"""
Virtual memory size
Instrument: updowncounter (observable)
Unit: By
"""

PROCESS_THREAD_COUNT: Final = "process.thread.count"
"""
Threads of the process
Instrument: updowncounter (observable)
Unit: {thread}
"""

PROCESS_OPEN_FILE_DESCRIPTOR_COUNT: Final = "process.open_file_descriptor.count"
"""
Open file descriptors (sockets included): a leak shows here first
Instrument: updowncounter (observable)
Unit: {file_descriptor}
"""

CPU_MODE: Final = "cpu.mode"


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
        meter.create_observable_counter(
            PROCESS_CPU_TIME,
            callbacks=[self._cpu_time],
            unit="s",
            description="Total CPU seconds broken down by different CPU modes.",
        )
        meter.create_observable_gauge(
            PROCESS_CPU_UTILIZATION,
            callbacks=[self._cpu_utilization],
            unit="1",
            description="CPU time since the last measurement over elapsed time and CPUs.",
        )
        meter.create_observable_up_down_counter(
            PROCESS_MEMORY_USAGE,
            callbacks=[self._memory_usage],
            unit="By",
            description="The amount of physical memory in use.",
        )
        meter.create_observable_up_down_counter(
            PROCESS_MEMORY_VIRTUAL,
            callbacks=[self._memory_virtual],
            unit="By",
            description="The amount of committed virtual memory.",
        )
        meter.create_observable_up_down_counter(
            PROCESS_THREAD_COUNT,
            callbacks=[self._thread_count],
            unit="{thread}",
            description="Process threads count.",
        )
        meter.create_observable_up_down_counter(
            PROCESS_OPEN_FILE_DESCRIPTOR_COUNT,
            callbacks=[self._open_fds],
            unit="{file_descriptor}",
            description="Number of file descriptors in use by the process.",
        )

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
