"""Supervised background tasks: a failure is logged with its traceback, counted, kept for
/readyz, and the task restarts with backoff; stop and cancellation still end it."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.supervision import TaskHealth, TaskSupervisor, supervise
from shared.telemetry.task_metrics import DRIFTWATCH_TASK_FAILURES, TaskFailureCounter


async def test_a_task_that_raises_is_logged_counted_and_restarted_with_backoff(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)  # the suite disables the SDK by default
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    count = TaskFailureCounter(provider.get_meter("t"), model="m")
    starts: list[float] = []

    async def fails_twice() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 2:
            raise ValueError(f"cannot reshape array (run {len(starts)})")

    health = TaskHealth("worker")
    with caplog.at_level(logging.ERROR, logger="shared.supervision"):
        await supervise("worker", fails_twice, stop=asyncio.Event(), health=health, on_failure=count,
                        backoff_initial_s=0.05, backoff_max_s=1.0)

    assert len(starts) == 3 and health.failures == 2
    assert health.last_error == "ValueError: cannot reshape array (run 2)"
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # the backoff doubles
    logged = [r for r in caplog.records if "background task worker failed" in r.getMessage()]
    assert len(logged) == 2 and all(r.exc_info and r.exc_info[0] is ValueError for r in logged)
    (metric,) = [m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics if m.name == DRIFTWATCH_TASK_FAILURES]
    (point,) = metric.data.data_points
    assert point.value == 2
    assert dict(point.attributes or {}) == {"model": "m", "task": "worker", "error.type": "ValueError"}
    provider.shutdown()


async def test_stop_ends_the_backoff_and_a_late_task_is_cancelled() -> None:
    supervisor = TaskSupervisor(backoff_initial_s=60.0)
    ran = asyncio.Event()

    async def always_fails() -> None:
        ran.set()
        raise RuntimeError("boom")

    async def never_returns() -> None:
        await asyncio.Event().wait()

    supervisor.start("failing", always_fails)
    supervisor.start("stuck", never_returns)
    await asyncio.wait_for(ran.wait(), 5)
    assert not supervisor.running("failing")  # in its backoff, not running
    assert supervisor.last_error == "failing: RuntimeError: boom" and supervisor.failures == 1
    started = time.monotonic()
    await supervisor.stop(timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert not supervisor.running("failing") and not supervisor.running("stuck")


async def test_a_stop_that_cancels_at_once_logs_no_error(caplog: pytest.LogCaptureFixture) -> None:
    supervisor = TaskSupervisor()
    started = asyncio.Event()

    async def waits_forever() -> None:
        started.set()
        await asyncio.Event().wait()

    supervisor.start("notifier", waits_forever)
    await asyncio.wait_for(started.wait(), 5)
    with caplog.at_level(logging.DEBUG, logger="shared.supervision"):
        await supervisor.stop(timeout_s=0)
    assert not supervisor.running("notifier")
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_cancellation_is_never_caught() -> None:
    entered = asyncio.Event()

    async def waits() -> None:
        entered.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervise("w", waits, stop=asyncio.Event()))
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
